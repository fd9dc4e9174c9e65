//! The binfmt_misc magic/mask qemu-user registers for each CPU, derived
//! from the table's ELF and qemu columns rather than copied from
//! qemu's script.
//!
//! The pattern covers e_ident (magic, class, byte order, version, OS ABI,
//! ABI version), e_type and e_machine, i.e. the first 20 bytes of the
//! header. The per-arch choices (table.rs) follow qemu's
//! scripts/qemu-binfmt-conf.sh; a unit test checks them byte for byte
//! against Debian's /usr/lib/binfmt.d/qemu-*.conf when those are installed.

use super::binfmt::{Flags, Kind};
use super::elf_flags::EF_MIPS_ABI2;
use super::row::ElfAbi;
use super::{register_line, Arch, ArchError};
use goblin::elf::header::{ELFMAG, ET_EXEC, EV_CURRENT};
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

/// qemu's MIPS o32 and n32 entries also compare EF_MIPS_ABI2 in e_flags:
/// clear for o32, set for n32 (qemu-binfmt-conf.sh, mips_magic and
/// mipsn32_magic). No other row's e_flags ABI is part of its pattern: qemu-arm
/// serves armhf and armel alike.
fn mips_abi2(abi: ElfAbi) -> Option<bool> {
    match abi {
        ElfAbi::MipsO32 => Some(false),
        ElfAbi::MipsN32 => Some(true),
        _ => None,
    }
}

/// The magic/mask qemu-user's binfmt entry for `arch` uses. It matches
/// ET_EXEC and ET_DYN files (the e_type mask drops bit 0).
pub fn qemu_pattern(arch: Arch) -> Pattern {
    let row = arch.row();
    let (elf, masks) = (&row.elf, &row.qemu);
    let be = elf.big_endian();
    let u16b = |v: u16| if be { v.to_be_bytes() } else { v.to_le_bytes() };
    let mut magic = ELFMAG.to_vec();
    magic.extend_from_slice(&[elf.class, elf.data, EV_CURRENT]);
    magic.extend_from_slice(&[0; 9]); // OS ABI, ABI version, padding
    magic.extend_from_slice(&u16b(ET_EXEC));
    magic.extend_from_slice(&u16b(elf.machine));
    let mut mask = vec![0xff; 7];
    mask.push(masks.osabi);
    mask.push(masks.abiversion);
    mask.extend_from_slice(&[0xff; 7]);
    mask.extend_from_slice(&u16b(0xfffe));
    mask.extend_from_slice(&u16b(masks.machine));
    if let Some(set) = mips_abi2(elf.abi) {
        // e_flags is at offset 36 in a 32-bit header; extend the pattern
        // up to the byte that holds the bit.
        let flags_at = 36;
        let raw = u32::to_le_bytes(EF_MIPS_ABI2);
        let bit_byte = if be { 3 } else { 0 };
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
        let e = &arch.row().elf;
        let flags = match arch {
            Arch::Arm => 0x0500_0400,
            Arch::Armel => 0x0500_0200,
            Arch::Mipsn32 | Arch::Mipsn32el => 0x20,
            Arch::Ppc64le => 2,
            _ => 0,
        };
        elf(e.bits(), e.big_endian(), e.machine, flags)
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
        a.row().elf.big_endian()
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
