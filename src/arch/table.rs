//! The one table of the CPU architectures rootrun knows: each row says how
//! every tool names the CPU, which ELF headers are its binaries, and how
//! qemu-user's binfmt_misc entry matches them. `names.rs`, `host.rs`,
//! `elf_flags.rs` and `qemu_magic.rs` only read it.
//!
//! Adding an architecture is adding a row here: the macro makes the variant
//! of [`Arch`], its place in `Arch::ALL` and its arm of `Arch::row` (an
//! exhaustive `match`, so no variant can be without a row) from it.

use super::row::{elf, masks, names, ElfAbi, Row};
use super::row::{ABIVERSION_0, ABIVERSION_0_OR_1, ABIVERSION_ANY, OSABI_0_TO_3, OSABI_ANY};
use super::row::{MACHINE_EXACT, MACHINE_LOW_BYTE};
use goblin::elf::header::{
    ELFCLASS32, ELFCLASS64, ELFDATA2LSB, ELFDATA2MSB, EM_386, EM_68K, EM_AARCH64, EM_ARM,
    EM_LOONGARCH, EM_MIPS, EM_PARISC, EM_PPC, EM_PPC64, EM_RISCV, EM_S390, EM_SH, EM_SPARC,
    EM_SPARC32PLUS, EM_SPARCV9, EM_X86_64,
};

/// Hand-written: Alpha has no official EM_ number, so goblin has none; Linux
/// (arch/alpha/include/asm/elf.h) and binutils use 0x9026.
const EM_ALPHA: u16 = 0x9026;

macro_rules! architectures {
    ($($(#[$doc:meta])* $arch:ident => $row:expr;)+) => {
        /// A CPU architecture together with the ABI facts that decide which
        /// emulator, loader and distribution port fit a binary.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Arch {
            $($(#[$doc])* $arch,)+
        }

        impl Arch {
            /// Every architecture, in table order.
            pub(super) const ALL: &'static [Arch] = &[$(Arch::$arch,)+];

            /// This architecture's row of the table.
            pub(super) const fn row(self) -> &'static Row {
                match self {
                    $(Arch::$arch => {
                        const ROW: Row = $row;
                        &ROW
                    })+
                }
            }
        }
    };
}

// LXD names follow LXD's shared/osarch/architectures.go: its "mips" and
// "mips64" are the little-endian ports (aliases mipsel, mips64el).
architectures! {
    X86_64 => Row {
        names: names("x86_64", Some("amd64"), "x86_64", Some("x86_64")),
        aliases: &["x64", "x86-64"],
        elf: elf(EM_X86_64, ELFCLASS64, ELFDATA2LSB, ElfAbi::Any),
        qemu: masks(OSABI_ANY, ABIVERSION_0, MACHINE_EXACT),
        rust: Some("x86_64"),
    };
    I386 => Row {
        names: names("i686", Some("i386"), "i386", Some("i686")),
        aliases: &["i586", "i486", "x86", "386"],
        elf: elf(EM_386, ELFCLASS32, ELFDATA2LSB, ElfAbi::Any),
        qemu: masks(OSABI_ANY, ABIVERSION_0, MACHINE_EXACT),
        rust: Some("x86"),
    };
    Aarch64 => Row {
        names: names("aarch64", Some("arm64"), "aarch64", Some("aarch64")),
        aliases: &["armv8", "arm64-v8a"],
        elf: elf(EM_AARCH64, ELFCLASS64, ELFDATA2LSB, ElfAbi::Any),
        qemu: masks(OSABI_ANY, ABIVERSION_0, MACHINE_EXACT),
        rust: Some("aarch64"),
    };
    Aarch64Be => Row {
        names: names("aarch64_be", None, "aarch64_be", None),
        aliases: &["arm64be"],
        elf: elf(EM_AARCH64, ELFCLASS64, ELFDATA2MSB, ElfAbi::Any),
        qemu: masks(OSABI_ANY, ABIVERSION_0, MACHINE_EXACT),
        rust: Some("aarch64"),
    };
    /// 32-bit ARM, EABI5, hard-float (Debian armhf).
    Arm => Row {
        names: names("armv7l", Some("armhf"), "arm", Some("armv7l")),
        aliases: &["armv7", "armv7hl", "armhfp", "armv8l"],
        elf: elf(EM_ARM, ELFCLASS32, ELFDATA2LSB, ElfAbi::ArmHardFloat),
        qemu: masks(OSABI_ANY, ABIVERSION_0, MACHINE_EXACT),
        rust: Some("arm"),
    };
    /// 32-bit ARM, EABI5, soft-float (Debian armel).
    Armel => Row {
        names: names("armv5tel", Some("armel"), "arm", Some("armv6l")),
        aliases: &["armv6l", "armv5te"],
        elf: elf(EM_ARM, ELFCLASS32, ELFDATA2LSB, ElfAbi::ArmSoftFloat),
        qemu: masks(OSABI_ANY, ABIVERSION_0, MACHINE_EXACT),
        rust: Some("arm"),
    };
    Armeb => Row {
        names: names("armv5teb", Some("armeb"), "armeb", None),
        aliases: &[],
        elf: elf(EM_ARM, ELFCLASS32, ELFDATA2MSB, ElfAbi::Any),
        qemu: masks(OSABI_ANY, ABIVERSION_0, MACHINE_EXACT),
        rust: Some("arm"),
    };
    /// MIPS o32, big-endian.
    Mips => Row {
        names: names("mips", Some("mips"), "mips", None),
        aliases: &[],
        elf: elf(EM_MIPS, ELFCLASS32, ELFDATA2MSB, ElfAbi::MipsO32),
        qemu: masks(OSABI_ANY, ABIVERSION_0_OR_1, MACHINE_EXACT),
        rust: Some("mips"),
    };
    /// MIPS o32, little-endian.
    Mipsel => Row {
        names: names("mips", Some("mipsel"), "mipsel", Some("mips")),
        aliases: &["mipsle", "mips32el"],
        elf: elf(EM_MIPS, ELFCLASS32, ELFDATA2LSB, ElfAbi::MipsO32),
        qemu: masks(OSABI_ANY, ABIVERSION_0_OR_1, MACHINE_EXACT),
        rust: Some("mips"),
    };
    /// MIPS n32 (64-bit CPU, 32-bit pointers), big-endian.
    Mipsn32 => Row {
        names: names("mips64", Some("mipsn32"), "mipsn32", None),
        aliases: &[],
        elf: elf(EM_MIPS, ELFCLASS32, ELFDATA2MSB, ElfAbi::MipsN32),
        qemu: masks(OSABI_ANY, ABIVERSION_0_OR_1, MACHINE_EXACT),
        rust: Some("mips64"),
    };
    Mipsn32el => Row {
        names: names("mips64", Some("mipsn32el"), "mipsn32el", None),
        aliases: &[],
        elf: elf(EM_MIPS, ELFCLASS32, ELFDATA2LSB, ElfAbi::MipsN32),
        qemu: masks(OSABI_ANY, ABIVERSION_0_OR_1, MACHINE_EXACT),
        rust: Some("mips64"),
    };
    Mips64 => Row {
        names: names("mips64", Some("mips64"), "mips64", None),
        aliases: &[],
        elf: elf(EM_MIPS, ELFCLASS64, ELFDATA2MSB, ElfAbi::Any),
        qemu: masks(OSABI_ANY, ABIVERSION_0_OR_1, MACHINE_EXACT),
        rust: Some("mips64"),
    };
    Mips64el => Row {
        names: names("mips64", Some("mips64el"), "mips64el", Some("mips64")),
        aliases: &["mips64le"],
        elf: elf(EM_MIPS, ELFCLASS64, ELFDATA2LSB, ElfAbi::Any),
        qemu: masks(OSABI_ANY, ABIVERSION_0_OR_1, MACHINE_EXACT),
        rust: Some("mips64"),
    };
    Ppc => Row {
        names: names("ppc", Some("powerpc"), "ppc", Some("ppc")),
        aliases: &[],
        elf: elf(EM_PPC, ELFCLASS32, ELFDATA2MSB, ElfAbi::Any),
        qemu: masks(OSABI_0_TO_3, ABIVERSION_0, MACHINE_EXACT),
        rust: Some("powerpc"),
    };
    /// 64-bit PowerPC, big-endian (ELFv1).
    Ppc64 => Row {
        names: names("ppc64", Some("ppc64"), "ppc64", Some("ppc64")),
        aliases: &["powerpc64"],
        elf: elf(EM_PPC64, ELFCLASS64, ELFDATA2MSB, ElfAbi::Any),
        qemu: masks(OSABI_0_TO_3, ABIVERSION_0, MACHINE_EXACT),
        rust: Some("powerpc64"),
    };
    /// 64-bit PowerPC, little-endian (ELFv2).
    Ppc64le => Row {
        names: names("ppc64le", Some("ppc64el"), "ppc64le", Some("ppc64le")),
        aliases: &["powerpc64le"],
        elf: elf(EM_PPC64, ELFCLASS64, ELFDATA2LSB, ElfAbi::Any),
        qemu: masks(OSABI_0_TO_3, ABIVERSION_0, MACHINE_LOW_BYTE),
        rust: Some("powerpc64"),
    };
    Riscv32 => Row {
        names: names("riscv32", None, "riscv32", Some("riscv32")),
        aliases: &[],
        elf: elf(EM_RISCV, ELFCLASS32, ELFDATA2LSB, ElfAbi::Any),
        qemu: masks(OSABI_ANY, ABIVERSION_0, MACHINE_EXACT),
        rust: Some("riscv32"),
    };
    Riscv64 => Row {
        names: names("riscv64", Some("riscv64"), "riscv64", Some("riscv64")),
        aliases: &[],
        elf: elf(EM_RISCV, ELFCLASS64, ELFDATA2LSB, ElfAbi::Any),
        qemu: masks(OSABI_ANY, ABIVERSION_0, MACHINE_EXACT),
        rust: Some("riscv64"),
    };
    S390x => Row {
        names: names("s390x", Some("s390x"), "s390x", Some("s390x")),
        aliases: &[],
        elf: elf(EM_S390, ELFCLASS64, ELFDATA2MSB, ElfAbi::Any),
        qemu: masks(OSABI_0_TO_3, ABIVERSION_0, MACHINE_EXACT),
        rust: Some("s390x"),
    };
    Loongarch64 => Row {
        names: names("loongarch64", Some("loong64"), "loongarch64", Some("loongarch64")),
        aliases: &[],
        elf: elf(EM_LOONGARCH, ELFCLASS64, ELFDATA2LSB, ElfAbi::Any),
        qemu: masks(OSABI_0_TO_3, ABIVERSION_ANY, MACHINE_EXACT),
        rust: Some("loongarch64"),
    };
    Sparc => Row {
        names: names("sparc", Some("sparc"), "sparc", None),
        aliases: &[],
        elf: elf(EM_SPARC, ELFCLASS32, ELFDATA2MSB, ElfAbi::Any),
        qemu: masks(OSABI_0_TO_3, ABIVERSION_0, MACHINE_EXACT),
        rust: Some("sparc"),
    };
    Sparc32plus => Row {
        names: names("sparc", None, "sparc32plus", None),
        aliases: &[],
        elf: elf(EM_SPARC32PLUS, ELFCLASS32, ELFDATA2MSB, ElfAbi::Any),
        qemu: masks(OSABI_0_TO_3, ABIVERSION_0, MACHINE_EXACT),
        rust: None,
    };
    Sparc64 => Row {
        names: names("sparc64", Some("sparc64"), "sparc64", None),
        aliases: &[],
        elf: elf(EM_SPARCV9, ELFCLASS64, ELFDATA2MSB, ElfAbi::Any),
        qemu: masks(OSABI_0_TO_3, ABIVERSION_0, MACHINE_EXACT),
        rust: Some("sparc64"),
    };
    Alpha => Row {
        names: names("alpha", Some("alpha"), "alpha", None),
        aliases: &[],
        elf: elf(EM_ALPHA, ELFCLASS64, ELFDATA2LSB, ElfAbi::Any),
        qemu: masks(OSABI_ANY, ABIVERSION_0, MACHINE_EXACT),
        rust: None,
    };
    Sh4 => Row {
        names: names("sh4", Some("sh4"), "sh4", None),
        aliases: &[],
        elf: elf(EM_SH, ELFCLASS32, ELFDATA2LSB, ElfAbi::Any),
        qemu: masks(OSABI_0_TO_3, ABIVERSION_0, MACHINE_EXACT),
        rust: None,
    };
    Sh4eb => Row {
        names: names("sh4eb", None, "sh4eb", None),
        aliases: &[],
        elf: elf(EM_SH, ELFCLASS32, ELFDATA2MSB, ElfAbi::Any),
        qemu: masks(OSABI_0_TO_3, ABIVERSION_0, MACHINE_EXACT),
        rust: None,
    };
    M68k => Row {
        names: names("m68k", Some("m68k"), "m68k", None),
        aliases: &[],
        elf: elf(EM_68K, ELFCLASS32, ELFDATA2MSB, ElfAbi::Any),
        qemu: masks(OSABI_ANY, ABIVERSION_0, MACHINE_EXACT),
        rust: Some("m68k"),
    };
    Hppa => Row {
        names: names("parisc", Some("hppa"), "hppa", None),
        aliases: &["parisc32"],
        elf: elf(EM_PARISC, ELFCLASS32, ELFDATA2MSB, ElfAbi::Any),
        qemu: masks(OSABI_ANY, ABIVERSION_0, MACHINE_EXACT),
        rust: None,
    };
}

/// Two rows the ELF header cannot tell apart would make `identify` depend on
/// row order: refuse them when compiling. Rows may share e_machine, class
/// and byte order only when each names a different e_flags ABI. A class or
/// byte order that is not an ELF one would match nothing: refuse it too.
const _: () = {
    let all = Arch::ALL;
    let mut i = 0;
    while i < all.len() {
        let elf = &all[i].row().elf;
        assert!(
            (elf.class == ELFCLASS32 || elf.class == ELFCLASS64)
                && (elf.data == ELFDATA2LSB || elf.data == ELFDATA2MSB),
            "a row of the architecture table has no valid EI_CLASS or EI_DATA"
        );
        let mut j = i + 1;
        while j < all.len() {
            let (a, b) = (&all[i].row().elf, &all[j].row().elf);
            if a.machine == b.machine && a.class == b.class && a.data == b.data {
                assert!(
                    !matches!(a.abi, ElfAbi::Any)
                        && !matches!(b.abi, ElfAbi::Any)
                        && a.abi as u8 != b.abi as u8,
                    "two rows of the architecture table match the same ELF headers"
                );
            }
            j += 1;
        }
        i += 1;
    }
};
