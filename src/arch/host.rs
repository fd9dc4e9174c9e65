//! The CPU this rootrun runs on, found in the table at compile time, and
//! which foreign binaries it runs without an emulator.

use super::row::ElfAbi;
use super::Arch;

/// The row of the CPU this binary was compiled for. A build for a CPU the
/// table has no row for fails to compile: the `panic!` runs at compile time.
const HOST: Arch = match host_row(
    std::env::consts::ARCH,
    usize::BITS,
    cfg!(target_endian = "big"),
    cfg!(target_abi = "eabihf"),
) {
    Some(arch) => arch,
    None => panic!("rootrun is built for a CPU that src/arch/table.rs has no row for"),
};

impl Arch {
    /// The architecture this rootrun binary was compiled for.
    pub const fn host() -> Arch {
        HOST
    }

    /// Whether a binary of `self` runs on a `host` CPU without emulation.
    ///
    /// Only x86_64 -> i386 is assumed: every x86_64 kernel we target has
    /// IA32 emulation. An aarch64 CPU may lack AArch32 (many do), and
    /// ppc64le/mips64el hosts rarely enable their 32-bit ABIs, so those go
    /// through qemu like any foreign binary.
    pub fn runs_natively(self, host: Arch) -> bool {
        self == host || (host == Arch::X86_64 && self == Arch::I386)
    }
}

/// The row for Rust's `target_arch` with this pointer width and byte order.
/// The pointer width tells MIPS n32 (`mips64`, 32-bit pointers) from n64;
/// the float ABI (`target_abi = "eabihf"`) tells armhf from armel.
const fn host_row(
    target_arch: &str,
    pointer_bits: u32,
    big_endian: bool,
    eabihf: bool,
) -> Option<Arch> {
    let mut i = 0;
    while i < Arch::ALL.len() {
        let arch = Arch::ALL[i];
        let row = arch.row();
        if let Some(rust) = row.rust {
            if same(rust, target_arch)
                && row.elf.bits() as u32 == pointer_bits
                && row.elf.big_endian() == big_endian
                && float_fits(row.elf.abi, eabihf)
            {
                return Some(arch);
            }
        }
        i += 1;
    }
    None
}

/// Whether a target with (`eabihf`) or without `target_abi = "eabihf"`
/// builds binaries of this ABI; only 32-bit ARM rows differ in it.
const fn float_fits(abi: ElfAbi, eabihf: bool) -> bool {
    match abi {
        ElfAbi::ArmHardFloat => eabihf,
        ElfAbi::ArmSoftFloat => !eabihf,
        _ => true,
    }
}

/// `a == b`, which is not yet callable in a `const fn`.
const fn same(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn natively() {
        assert!(Arch::I386.runs_natively(Arch::X86_64));
        assert!(Arch::X86_64.runs_natively(Arch::X86_64));
        assert!(!Arch::Arm.runs_natively(Arch::Aarch64));
        assert!(!Arch::X86_64.runs_natively(Arch::I386));
    }

    #[test]
    fn host_rows_for_rust_targets() {
        use Arch::*;
        // (target_arch, pointer width, big-endian, eabihf) as rustc sets
        // them for the Linux targets of each CPU.
        let cases = [
            ("x86_64", 64, false, false, Some(X86_64)),
            ("x86", 32, false, false, Some(I386)),
            ("aarch64", 64, false, false, Some(Aarch64)),
            ("aarch64", 64, true, false, Some(Aarch64Be)),
            ("arm", 32, false, true, Some(Arm)),
            ("arm", 32, false, false, Some(Armel)),
            ("arm", 32, true, false, Some(Armeb)),
            ("arm", 32, true, true, Some(Armeb)),
            ("mips", 32, true, false, Some(Mips)),
            ("mips", 32, false, false, Some(Mipsel)),
            ("mips64", 32, true, false, Some(Mipsn32)),
            ("mips64", 32, false, false, Some(Mipsn32el)),
            ("mips64", 64, true, false, Some(Mips64)),
            ("mips64", 64, false, false, Some(Mips64el)),
            ("powerpc", 32, true, false, Some(Ppc)),
            ("powerpc64", 64, true, false, Some(Ppc64)),
            ("powerpc64", 64, false, false, Some(Ppc64le)),
            ("riscv32", 32, false, false, Some(Riscv32)),
            ("riscv64", 64, false, false, Some(Riscv64)),
            ("s390x", 64, true, false, Some(S390x)),
            ("loongarch64", 64, false, false, Some(Loongarch64)),
            ("sparc", 32, true, false, Some(Sparc)),
            ("sparc64", 64, true, false, Some(Sparc64)),
            ("m68k", 32, true, false, Some(M68k)),
            // x32 and aarch64 ILP32 are ABIs no row describes.
            ("x86_64", 32, false, false, None),
            ("aarch64", 32, false, false, None),
            ("hexagon", 32, false, false, None),
        ];
        for (target, bits, be, hf, want) in cases {
            assert_eq!(
                host_row(target, bits, be, hf),
                want,
                "{target} {bits} {be} {hf}"
            );
        }
    }

    #[test]
    fn same_compares_whole_strings() {
        assert!(same("mips", "mips"));
        assert!(!same("mips", "mips64"));
        assert!(!same("mips64", "mips"));
        assert!(!same("x86", "x64"));
        assert!(same("", ""));
    }
}
