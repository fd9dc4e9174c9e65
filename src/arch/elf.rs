//! ELF header -> [`Arch`] and the facts `inspect` shows.
//!
//! Only the ELF header (and, when they lie within the bytes given, the
//! program headers) is read: that is what the kernel's exec path and
//! binfmt_misc look at (the kernel reads the first BINPRM_BUF_SIZE = 256
//! bytes, include/uapi/linux/binfmts.h). goblin's full `Elf::parse` wants
//! the whole file and rejects damaged section headers the kernel ignores.

use super::elf_flags::{self, FloatAbi};
use super::elf_phdr;
use super::{Arch, ArchError};
use goblin::elf::header::{
    header32, header64, EI_CLASS, EI_DATA, EI_OSABI, ELFCLASS32, ELFCLASS64, ELFDATA2LSB,
    ELFDATA2MSB, ELFMAG, SELFMAG,
};
use serde::Serialize;
use std::path::{Path, PathBuf};

/// What an ELF header says about a binary.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ElfFacts {
    pub arch: Arch,
    /// 32 or 64.
    pub class: u8,
    pub big_endian: bool,
    /// e_machine.
    pub machine: u16,
    /// e_flags, raw; `flag_notes` spells out the parts we understand.
    pub flags: u32,
    /// e_ident[EI_OSABI].
    pub os_abi: u8,
    /// e_type: 2 = ET_EXEC, 3 = ET_DYN (PIE or shared object).
    pub elf_type: u16,
    /// Float ABI, where e_flags records it (ARM, RISC-V, LoongArch).
    pub float_abi: Option<FloatAbi>,
    /// Human-readable e_flags facts: "EABI5", "n32", "ELFv2", "lp64d", ...
    pub flag_notes: Vec<&'static str>,
    pub linkage: Linkage,
}

/// Whether the binary needs a dynamic loader (PT_INTERP).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Linkage {
    /// No PT_INTERP: the kernel runs it without a loader (static or
    /// static-pie).
    Static,
    /// PT_INTERP present. `interp` is None when its string lies beyond the
    /// bytes given.
    Dynamic { interp: Option<PathBuf> },
    /// The program headers lie beyond the bytes given (or use PN_XNUM).
    Unknown,
}

impl ElfFacts {
    /// The dynamic loader path, when known.
    pub fn interp(&self) -> Option<&Path> {
        match &self.linkage {
            Linkage::Dynamic { interp } => interp.as_deref(),
            _ => None,
        }
    }

    /// Some(true) without PT_INTERP, None when the program headers were
    /// out of reach.
    pub fn is_static(&self) -> Option<bool> {
        match self.linkage {
            Linkage::Static => Some(true),
            Linkage::Dynamic { .. } => Some(false),
            Linkage::Unknown => None,
        }
    }
}

/// Identify the CPU of an ELF binary from its first bytes.
///
/// `head` is the start of the file: at least the whole ELF header (52 or 64
/// bytes) when the file is that long; up to 4096 bytes lets the program
/// headers and PT_INTERP be read too. Never panics on garbage.
pub fn identify(head: &[u8]) -> Result<ElfFacts, ArchError> {
    check_magic(head)?;
    let (class, big_endian) = ident(head)?;
    let need = if class == 64 {
        header64::SIZEOF_EHDR
    } else {
        header32::SIZEOF_EHDR
    };
    if head.len() < need {
        return Err(ArchError::Truncated {
            have: head.len(),
            need,
        });
    }
    let hdr = goblin::elf::Elf::parse_header(head).map_err(|e| ArchError::BadElf(e.to_string()))?;
    let linkage = elf_phdr::linkage(head, &hdr, class == 64, big_endian);
    let interp = match &linkage {
        Linkage::Dynamic { interp } => interp.as_deref(),
        _ => None,
    };
    let arch = elf_flags::classify(hdr.e_machine, class, big_endian, hdr.e_flags, interp)?;
    let (float_abi, flag_notes) = elf_flags::describe(arch, hdr.e_flags);
    Ok(ElfFacts {
        arch,
        class,
        big_endian,
        machine: hdr.e_machine,
        flags: hdr.e_flags,
        os_abi: head[EI_OSABI],
        elf_type: hdr.e_type,
        float_abi,
        flag_notes,
        linkage,
    })
}

fn check_magic(head: &[u8]) -> Result<(), ArchError> {
    let n = head.len().min(SELFMAG);
    if head[..n] != ELFMAG[..n] {
        return Err(ArchError::NotElf);
    }
    if n < SELFMAG {
        return Err(ArchError::Truncated {
            have: head.len(),
            need: header32::SIZEOF_EHDR,
        });
    }
    Ok(())
}

/// (class in bits, big_endian) from e_ident, validated before goblin sees it.
fn ident(head: &[u8]) -> Result<(u8, bool), ArchError> {
    let (Some(&c), Some(&d)) = (head.get(EI_CLASS), head.get(EI_DATA)) else {
        return Err(ArchError::Truncated {
            have: head.len(),
            need: header32::SIZEOF_EHDR,
        });
    };
    let class = match c {
        ELFCLASS32 => 32,
        ELFCLASS64 => 64,
        other => return Err(ArchError::BadElf(format!("bad EI_CLASS {other}"))),
    };
    let big_endian = match d {
        ELFDATA2LSB => false,
        ELFDATA2MSB => true,
        other => return Err(ArchError::BadElf(format!("bad EI_DATA {other}"))),
    };
    Ok((class, big_endian))
}

#[cfg(test)]
mod tests {
    use super::super::test_elf::{elf, elf_with_interp};
    use super::*;

    fn arch_of(class: u8, be: bool, machine: u16, flags: u32) -> Result<Arch, String> {
        identify(&elf(class, be, machine, flags))
            .map(|f| f.arch)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn every_arch_from_a_generated_header() {
        use Arch::*;
        let cases: &[(u8, bool, u16, u32, Arch)] = &[
            (64, false, 62, 0, X86_64),
            (32, false, 3, 0, I386),
            (64, false, 183, 0, Aarch64),
            (64, true, 183, 0, Aarch64Be),
            (32, false, 40, 0x0500_0400, Arm),
            (32, false, 40, 0x0500_0200, Armel),
            (32, true, 40, 0x0500_0200, Armeb),
            (32, true, 8, 0x7000_1007, Mips),
            (32, false, 8, 0x7000_1007, Mipsel),
            (32, true, 8, 0x8000_0027, Mipsn32),
            (32, false, 8, 0x8000_0027, Mipsn32el),
            (64, true, 8, 0x8000_0007, Mips64),
            (64, false, 8, 0x8000_0007, Mips64el),
            (32, true, 20, 0, Ppc),
            (64, true, 21, 1, Ppc64),
            (64, false, 21, 2, Ppc64le),
            (32, false, 243, 0x5, Riscv32),
            (64, false, 243, 0x5, Riscv64),
            (64, true, 22, 0, S390x),
            (64, false, 258, 0x43, Loongarch64),
            (32, true, 2, 0, Sparc),
            (32, true, 18, 0x100, Sparc32plus),
            (64, true, 43, 0, Sparc64),
            (64, false, 0x9026, 0, Alpha),
            (32, false, 42, 0, Sh4),
            (32, true, 42, 0, Sh4eb),
            (32, true, 4, 0, M68k),
            (32, true, 15, 0x210, Hppa),
        ];
        for &(class, be, m, fl, want) in cases {
            assert_eq!(arch_of(class, be, m, fl), Ok(want), "{want:?}");
        }
        assert_eq!(cases.len(), Arch::all().count());
    }

    #[test]
    fn ambiguous_pairs_are_told_apart() {
        // o32 vs n32: only EF_MIPS_ABI2 differs.
        assert_eq!(arch_of(32, true, 8, 0x1000), Ok(Arch::Mips));
        assert_eq!(arch_of(32, true, 8, 0x20), Ok(Arch::Mipsn32));
        // arm vs armeb: only EI_DATA differs.
        assert_eq!(arch_of(32, false, 40, 0x0500_0400), Ok(Arch::Arm));
        assert_eq!(arch_of(32, true, 40, 0x0500_0400), Ok(Arch::Armeb));
        // armhf vs armel: only the float-ABI flag differs.
        assert_eq!(arch_of(32, false, 40, 0x0500_0200), Ok(Arch::Armel));
        // ppc64 vs ppc64le: only EI_DATA differs.
        assert_eq!(arch_of(64, true, 21, 1), Ok(Arch::Ppc64));
        assert_eq!(arch_of(64, false, 21, 2), Ok(Arch::Ppc64le));
    }

    #[test]
    fn arm_without_float_flag_uses_the_loader_name() {
        let hf = elf_with_interp(32, false, 40, 0x0500_0000, "/lib/ld-linux-armhf.so.3");
        assert_eq!(identify(&hf).map(|f| f.arch).ok(), Some(Arch::Arm));
        let el = elf_with_interp(32, false, 40, 0x0500_0000, "/lib/ld-linux.so.3");
        assert_eq!(identify(&el).map(|f| f.arch).ok(), Some(Arch::Armel));
    }

    #[test]
    fn flag_details_are_kept() {
        let f = identify(&elf(64, false, 243, 0x5)).ok();
        let f = f.as_ref();
        assert_eq!(f.and_then(|f| f.float_abi), Some(FloatAbi::Double));
        assert!(f.is_some_and(|f| f.flag_notes.contains(&"RVC")));
        let a = identify(&elf(32, false, 40, 0x0500_0400)).ok();
        assert_eq!(a.as_ref().and_then(|f| f.float_abi), Some(FloatAbi::Hard));
        assert!(a.is_some_and(|f| f.flag_notes.contains(&"EABI5")));
        let p = identify(&elf(64, false, 21, 2)).ok();
        assert!(p.is_some_and(|f| f.flag_notes.contains(&"ELFv2")));
        let n = identify(&elf(32, false, 8, 0x8000_0027)).ok();
        assert!(n.is_some_and(|f| f.flag_notes.contains(&"n32")));
    }

    #[test]
    fn interp_and_static() {
        let d = elf_with_interp(64, false, 183, 0, "/lib/ld-linux-aarch64.so.1");
        let f = identify(&d).ok();
        assert_eq!(
            f.as_ref().and_then(|f| f.interp()),
            Some(Path::new("/lib/ld-linux-aarch64.so.1"))
        );
        assert_eq!(f.and_then(|f| f.is_static()), Some(false));
        let be = elf_with_interp(32, true, 8, 0x1000, "/lib/ld.so.1");
        let f = identify(&be).ok();
        assert_eq!(
            f.as_ref().and_then(|f| f.interp()),
            Some(Path::new("/lib/ld.so.1"))
        );
        // No program headers at all (e_phnum = 0): static.
        let s = identify(&elf(64, false, 62, 0)).ok();
        assert_eq!(s.and_then(|f| f.is_static()), Some(true));
    }

    #[test]
    fn interp_beyond_head_is_unknown_not_an_error() {
        let d = elf_with_interp(64, false, 62, 0, "/lib64/ld-linux-x86-64.so.2");
        // Cut inside the interp string: phdrs readable, string not.
        let cut = &d[..d.len() - 5];
        let f = identify(cut).ok();
        assert_eq!(
            f.as_ref().map(|f| &f.linkage),
            Some(&Linkage::Dynamic { interp: None })
        );
        // Cut right after the ELF header: phdrs out of reach.
        let f = identify(&d[..64]).ok();
        assert_eq!(f.map(|f| f.linkage), Some(Linkage::Unknown));
    }

    #[test]
    fn not_elf_and_truncated() {
        assert!(matches!(
            identify(b"#!/bin/sh\necho hi\n"),
            Err(ArchError::NotElf)
        ));
        assert!(matches!(identify(b""), Err(ArchError::Truncated { .. })));
        assert!(matches!(
            identify(b"\x7fEL"),
            Err(ArchError::Truncated { .. })
        ));
        assert!(matches!(identify(b"\x7fELX"), Err(ArchError::NotElf)));
        let h = elf(64, false, 62, 0);
        for n in 4..64 {
            assert!(
                matches!(identify(&h[..n]), Err(ArchError::Truncated { .. })),
                "{n}"
            );
        }
        let h = elf(32, false, 3, 0);
        assert!(identify(&h[..51]).is_err());
        assert!(identify(&h[..52]).is_ok());
    }

    #[test]
    fn bad_ident_and_unknown_machine() {
        let mut h = elf(64, false, 62, 0);
        h[EI_CLASS] = 3;
        assert!(matches!(identify(&h), Err(ArchError::BadElf(_))));
        let mut h = elf(64, false, 62, 0);
        h[EI_DATA] = 0;
        assert!(matches!(identify(&h), Err(ArchError::BadElf(_))));
        assert!(matches!(
            identify(&elf(64, false, 0x1234, 0)),
            Err(ArchError::UnknownMachine {
                machine: 0x1234,
                ..
            })
        ));
        // x32 (EM_X86_64 in a 32-bit file) is not an Arch we run.
        assert!(identify(&elf(32, false, 62, 0)).is_err());
    }

    #[test]
    fn garbage_never_panics() {
        // A cheap deterministic generator: every byte pattern after a valid
        // magic must give Ok or Err, never a panic.
        let mut x: u32 = 0x1234_5678;
        for len in [4usize, 20, 52, 63, 64, 100, 300, 4096] {
            for _ in 0..300 {
                let mut b: Vec<u8> = (0..len)
                    .map(|_| {
                        x ^= x << 13;
                        x ^= x >> 17;
                        x ^= x << 5;
                        x as u8
                    })
                    .collect();
                b[..4].copy_from_slice(b"\x7fELF");
                if len > 6 {
                    b[4] = 1 + (x & 1) as u8;
                    b[5] = 1 + ((x >> 1) & 1) as u8;
                }
                let _ = identify(&b);
            }
        }
    }

    #[test]
    fn real_host_binaries() {
        let ls = read_head("/bin/ls");
        let f = identify(&ls);
        assert!(f.is_ok(), "{f:?}");
        if let Ok(f) = f {
            assert_eq!(f.arch, Arch::host());
            if f.arch == Arch::X86_64 {
                assert_eq!(f.interp(), Some(Path::new("/lib64/ld-linux-x86-64.so.2")));
            }
        }
        let q = "/usr/bin/qemu-aarch64-static";
        if !Path::new(q).exists() {
            println!("note: {q} missing (qemu-user-static not installed); not checked");
            return;
        }
        let f = identify(&read_head(q));
        assert!(f.is_ok(), "{f:?}");
        if let Ok(f) = f {
            assert_eq!(f.arch, Arch::host());
            assert_eq!(f.is_static(), Some(true), "{f:?}");
        }
        assert!(matches!(
            identify(&read_head("/usr/bin/ldd")),
            Err(ArchError::NotElf)
        ));
    }

    fn read_head(path: &str) -> Vec<u8> {
        use std::io::Read;
        let mut buf = Vec::new();
        let r = std::fs::File::open(path).and_then(|f| f.take(4096).read_to_end(&mut buf));
        assert!(r.is_ok(), "read {path}: {r:?}");
        buf
    }
}
