//! The binfmt_misc magic/mask qemu-user registers for each CPU, derived
//! from ELF header fields rather than copied from a table.
//!
//! The pattern covers e_ident (magic, class, byte order, version, OS ABI,
//! ABI version), e_type and e_machine, i.e. the first 20 bytes of the
//! header. The per-arch choices below follow qemu's
//! scripts/qemu-binfmt-conf.sh; a unit test checks them byte for byte
//! against Debian's /usr/lib/binfmt.d/qemu-*.conf when those are installed.

use super::binfmt::{Flags, Kind};
use super::{register_line, Arch, ArchError};
use goblin::elf::header::{ELFCLASS32, ELFCLASS64, ELFDATA2LSB, ELFDATA2MSB, ET_EXEC};
use std::path::Path;

/// What a binfmt_misc entry compares at offset 0.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pattern {
    pub magic: Vec<u8>,
    pub mask: Vec<u8>,
}

impl Pattern {
    pub fn kind(&self) -> Kind {
        Kind::Magic {
            offset: 0,
            magic: self.magic.clone(),
            mask: self.mask.clone(),
        }
    }
}

/// Mask for e_ident[EI_OSABI]: 0x00 accepts any OS ABI; 0xfc accepts 0..3
/// (SYSV, HP-UX, NetBSD, GNU), which is what qemu uses for the CPUs whose
/// toolchains have set it to non-zero.
const OSABI_ANY: u8 = 0x00;
const OSABI_0_TO_3: u8 = 0xfc;
/// e_flags bit that tells MIPS n32 from o32 (binutils include/elf/mips.h).
const EF_MIPS_ABI2: u32 = 0x20;

struct Knobs {
    class: u8,
    be: bool,
    machine: u16,
    osabi_mask: u8,
    /// e_ident[EI_ABIVERSION]: MIPS accepts 0 and 1, LoongArch anything.
    abiver_mask: u8,
    /// ppc64le compares only the low byte of e_machine.
    machine_mask: u16,
    /// MIPS o32/n32 entries also check EF_MIPS_ABI2, set or clear.
    mips_abi2: Option<bool>,
}

fn knobs(arch: Arch) -> Knobs {
    use Arch::*;
    let (class, be, machine) = match arch {
        X86_64 => (64, false, 62),
        I386 => (32, false, 3),
        Aarch64 => (64, false, 183),
        Aarch64Be => (64, true, 183),
        Arm | Armel => (32, false, 40),
        Armeb => (32, true, 40),
        Mips | Mipsn32 => (32, true, 8),
        Mipsel | Mipsn32el => (32, false, 8),
        Mips64 => (64, true, 8),
        Mips64el => (64, false, 8),
        Ppc => (32, true, 20),
        Ppc64 => (64, true, 21),
        Ppc64le => (64, false, 21),
        Riscv32 => (32, false, 243),
        Riscv64 => (64, false, 243),
        S390x => (64, true, 22),
        Loongarch64 => (64, false, 258),
        Sparc => (32, true, 2),
        Sparc32plus => (32, true, 18),
        Sparc64 => (64, true, 43),
        Alpha => (64, false, 0x9026),
        Sh4 => (32, false, 42),
        Sh4eb => (32, true, 42),
        M68k => (32, true, 4),
        Hppa => (32, true, 15),
    };
    let osabi_mask = match arch {
        Ppc | Ppc64 | Ppc64le | S390x | Sh4 | Sh4eb | Sparc | Sparc32plus | Sparc64
        | Loongarch64 => OSABI_0_TO_3,
        _ => OSABI_ANY,
    };
    let abiver_mask = match arch {
        Mips | Mipsel | Mipsn32 | Mipsn32el | Mips64 | Mips64el => 0xfe,
        Loongarch64 => 0x00,
        _ => 0xff,
    };
    let mips_abi2 = match arch {
        Mips | Mipsel => Some(false),
        Mipsn32 | Mipsn32el => Some(true),
        _ => None,
    };
    Knobs {
        class,
        be,
        machine,
        osabi_mask,
        abiver_mask,
        machine_mask: if arch == Ppc64le { 0x00ff } else { 0xffff },
        mips_abi2,
    }
}

/// The magic/mask qemu-user's binfmt entry for `arch` uses. It matches
/// ET_EXEC and ET_DYN files (the e_type mask drops bit 0).
pub fn qemu_pattern(arch: Arch) -> Pattern {
    let k = knobs(arch);
    let u16b = |v: u16| {
        if k.be {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        }
    };
    let mut magic = vec![0x7f, b'E', b'L', b'F'];
    magic.push(if k.class == 64 {
        ELFCLASS64
    } else {
        ELFCLASS32
    });
    magic.push(if k.be { ELFDATA2MSB } else { ELFDATA2LSB });
    magic.push(1); // EV_CURRENT
    magic.extend_from_slice(&[0; 9]); // OS ABI, ABI version, padding
    magic.extend_from_slice(&u16b(ET_EXEC));
    magic.extend_from_slice(&u16b(k.machine));
    let mut mask = vec![0xff; 7];
    mask.push(k.osabi_mask);
    mask.push(k.abiver_mask);
    mask.extend_from_slice(&[0xff; 7]);
    mask.extend_from_slice(&u16b(0xfffe));
    mask.extend_from_slice(&u16b(k.machine_mask));
    if let Some(set) = k.mips_abi2 {
        // e_flags is at offset 36 in a 32-bit header; extend the pattern
        // up to the byte that holds the bit.
        let flags_at = 36;
        let raw = u32::to_le_bytes(EF_MIPS_ABI2);
        let bit_byte = if k.be { 3 } else { 0 };
        let end = flags_at + bit_byte + 1;
        magic.resize(end, 0);
        mask.resize(end, 0);
        magic[end - 1] = if set { raw[0] } else { 0 };
        mask[end - 1] = raw[0];
    }
    Pattern { magic, mask }
}

/// The registration line for qemu-user's entry `qemu-<name>`.
pub fn qemu_register_line(
    arch: Arch,
    interpreter: &Path,
    flags: Flags,
) -> Result<String, ArchError> {
    let name = format!("qemu-{}", arch.qemu());
    register_line(&name, &qemu_pattern(arch).kind(), interpreter, flags)
}

#[cfg(test)]
mod tests {
    use super::super::test_elf::elf;
    use super::super::{identify, parse_register_line, select, Entry, OrderKey};
    use super::*;
    use std::path::PathBuf;

    fn entry(arch: Arch) -> Entry {
        Entry {
            name: format!("qemu-{}", arch.qemu()),
            enabled: true,
            kind: qemu_pattern(arch).kind(),
            interpreter: PathBuf::from("/q"),
            flags: Flags::default(),
            order_key: OrderKey::default(),
        }
    }

    /// A header for `arch` that its qemu entry must match.
    fn header_for(arch: Arch) -> Vec<u8> {
        let k = knobs(arch);
        let flags = match arch {
            Arch::Arm => 0x0500_0400,
            Arch::Armel => 0x0500_0200,
            Arch::Mipsn32 | Arch::Mipsn32el => 0x20,
            Arch::Ppc64le => 2,
            _ => 0,
        };
        elf(k.class, k.be, k.machine, flags)
    }

    #[test]
    fn each_pattern_matches_its_own_header_and_no_other() {
        let entries: Vec<Entry> = Arch::all().map(entry).collect();
        for a in Arch::all() {
            let h = header_for(a);
            assert_eq!(identify(&h).map(|f| f.arch).ok(), Some(a));
            let hits: Vec<&str> = entries
                .iter()
                .filter(|e| select(std::slice::from_ref(*e), &h, "/x").is_some())
                .map(|e| e.name.as_str())
                .collect();
            let want = format!("qemu-{}", a.qemu());
            // arm and armel share qemu-arm, so both entries match.
            assert!(hits.iter().all(|n| *n == want), "{a:?}: {hits:?}");
            assert!(!hits.is_empty(), "{a:?}");
            // ET_DYN (PIE) matches too.
            let mut pie = h.clone();
            let t = if k_be(a) { 17 } else { 16 };
            pie[t] = 3;
            assert!(select(&[entry(a)], &pie, "/x").is_some(), "{a:?} PIE");
        }
    }

    fn k_be(a: Arch) -> bool {
        knobs(a).be
    }

    #[test]
    fn same_as_debians_binfmt_d() {
        let dir = Path::new("/usr/lib/binfmt.d");
        let Ok(rd) = std::fs::read_dir(dir) else {
            println!(
                "note: {} missing (qemu-user-static not installed); not compared",
                dir.display()
            );
            return;
        };
        let mut compared = 0;
        for de in rd.flatten() {
            let text = std::fs::read_to_string(de.path()).unwrap_or_default();
            let Some(line) = text.lines().find(|l| l.starts_with(':')) else {
                continue;
            };
            let Ok(reg) = parse_register_line(line) else {
                continue;
            };
            let Some(q) = reg.name.strip_prefix("qemu-") else {
                continue;
            };
            let Some(arch) = Arch::from_name(q).filter(|a| a.qemu() == q) else {
                continue;
            };
            assert_eq!(
                reg.kind,
                qemu_pattern(arch).kind(),
                "{}",
                de.path().display()
            );
            compared += 1;
        }
        println!("compared {compared} qemu patterns with {}", dir.display());
        assert!(compared >= 10 || compared == 0, "only {compared} compared");
    }

    #[test]
    fn register_line_for_aarch64_is_debians() {
        let f = Flags {
            preserve_argv0: true,
            open_binary: true,
            fix_binary: true,
            credentials: false,
        };
        let l = qemu_register_line(
            Arch::Aarch64,
            Path::new("/usr/libexec/qemu-binfmt/aarch64-binfmt-P"),
            f,
        );
        let want = ":qemu-aarch64:M:0:\\x7f\\x45\\x4c\\x46\\x02\\x01\\x01\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x02\\x00\\xb7\\x00:\\xff\\xff\\xff\\xff\\xff\\xff\\xff\\x00\\xff\\xff\\xff\\xff\\xff\\xff\\xff\\xff\\xfe\\xff\\xff\\xff:/usr/libexec/qemu-binfmt/aarch64-binfmt-P:POF";
        assert_eq!(l.ok().as_deref(), Some(want));
    }
}
