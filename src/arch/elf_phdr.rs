//! Program headers within the first bytes of an ELF file: is there a
//! PT_INTERP, and what loader does it name?
//!
//! Parsed by hand, bounded by the bytes given, so a hostile e_phoff,
//! e_phnum or p_offset yields `Linkage::Unknown` instead of a panic or a
//! huge allocation. Layouts: System V gABI, "Program Header".

use super::Linkage;
use goblin::elf::program_header::PT_INTERP;
use goblin::elf::Header;
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

/// e_phnum = PN_XNUM means the real count is in section header 0, which we
/// do not read. Hand-written: goblin 0.10 does not define it (gABI,
/// "Sections", and include/uapi/linux/elf.h).
const PN_XNUM: u16 = 0xffff;

pub(super) fn linkage(head: &[u8], hdr: &Header, is64: bool, be: bool) -> Linkage {
    let (min_size, off_at, filesz_at) = if is64 { (56, 8, 32) } else { (32, 4, 16) };
    let entsize = usize::from(hdr.e_phentsize);
    if hdr.e_phnum == 0 {
        return Linkage::Static;
    }
    if hdr.e_phnum == PN_XNUM || entsize < min_size {
        return Linkage::Unknown;
    }
    let Some(table) = usize::try_from(hdr.e_phoff)
        .ok()
        .and_then(|off| Some(off..off.checked_add(entsize.checked_mul(usize::from(hdr.e_phnum))?)?))
        .and_then(|r| head.get(r))
    else {
        return Linkage::Unknown;
    };
    // The kernel uses the first PT_INTERP (fs/binfmt_elf.c load_elf_binary).
    for ph in table.chunks_exact(entsize) {
        if read_u32(ph, 0, be) != Some(PT_INTERP) {
            continue;
        }
        let word = |at| {
            if is64 {
                read_u64(ph, at, be)
            } else {
                read_u32(ph, at, be).map(u64::from)
            }
        };
        let interp = word(off_at)
            .zip(word(filesz_at))
            .and_then(|(off, len)| interp_at(head, off, len));
        return Linkage::Dynamic { interp };
    }
    Linkage::Static
}

fn interp_at(head: &[u8], off: u64, len: u64) -> Option<PathBuf> {
    let off = usize::try_from(off).ok()?;
    let end = off.checked_add(usize::try_from(len).ok()?)?;
    let bytes = head.get(off..end)?;
    // The string is NUL-terminated inside p_filesz; stop at the first NUL.
    let path = bytes.split(|&b| b == 0).next()?;
    if path.is_empty() {
        return None;
    }
    Some(PathBuf::from(OsStr::from_bytes(path)))
}

fn read_u32(b: &[u8], at: usize, be: bool) -> Option<u32> {
    let raw: [u8; 4] = b.get(at..at.checked_add(4)?)?.try_into().ok()?;
    Some(if be {
        u32::from_be_bytes(raw)
    } else {
        u32::from_le_bytes(raw)
    })
}

fn read_u64(b: &[u8], at: usize, be: bool) -> Option<u64> {
    let raw: [u8; 8] = b.get(at..at.checked_add(8)?)?.try_into().ok()?;
    Some(if be {
        u64::from_be_bytes(raw)
    } else {
        u64::from_le_bytes(raw)
    })
}
