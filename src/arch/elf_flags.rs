//! e_machine + class + byte order + e_flags -> [`Arch`], and the e_flags
//! facts worth showing.
//!
//! Flag values: ARM ELF ABI (aaelf32, "e_flags"), MIPS from binutils
//! include/elf/mips.h, 64-bit ELF V2 ABI for Power ("e_flags"), RISC-V ELF
//! psABI ("e_flags"), LoongArch ELF psABI ("e_flags").

use super::{Arch, ArchError};
use goblin::elf::header::{
    EM_386, EM_68K, EM_AARCH64, EM_ARM, EM_LOONGARCH, EM_MIPS, EM_PARISC, EM_PPC, EM_PPC64,
    EM_RISCV, EM_S390, EM_SH, EM_SPARC, EM_SPARC32PLUS, EM_SPARCV9, EM_X86_64,
};
use serde::Serialize;
use std::path::Path;

/// Alpha has no official EM_ number; Linux and binutils use 0x9026.
const EM_ALPHA: u16 = 0x9026;

const EF_ARM_EABIMASK: u32 = 0xff00_0000;
const EF_ARM_BE8: u32 = 0x0080_0000;
const EF_ARM_ABI_FLOAT_SOFT: u32 = 0x200;
const EF_ARM_ABI_FLOAT_HARD: u32 = 0x400;
const EF_MIPS_ABI2: u32 = 0x20;
const EF_MIPS_NAN2008: u32 = 0x400;
const EF_MIPS_ARCH: u32 = 0xf000_0000;
const EF_PPC64_ABI: u32 = 0x3;
const EF_RISCV_RVC: u32 = 0x1;
const EF_RISCV_FLOAT_ABI: u32 = 0x6;
const EF_RISCV_RVE: u32 = 0x8;
const EF_LOONGARCH_ABI_MODIFIER: u32 = 0x7;

/// How floating-point arguments are passed, where e_flags records it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FloatAbi {
    /// Integer registers only (armel, lp64, lp64s).
    Soft,
    /// ARM VFP registers (armhf).
    Hard,
    Single,
    Double,
    Quad,
}

pub(super) fn classify(
    machine: u16,
    class: u8,
    be: bool,
    flags: u32,
    interp: Option<&Path>,
) -> Result<Arch, ArchError> {
    use Arch::*;
    let is64 = class == 64;
    let arch = match (machine, is64, be) {
        (EM_X86_64, true, false) => X86_64,
        (EM_386, false, false) => I386,
        (EM_AARCH64, true, false) => Aarch64,
        (EM_AARCH64, true, true) => Aarch64Be,
        (EM_ARM, false, true) => Armeb,
        (EM_ARM, false, false) => arm_float(flags, interp),
        (EM_MIPS, false, _) => match (flags & EF_MIPS_ABI2 != 0, be) {
            (false, true) => Mips,
            (false, false) => Mipsel,
            (true, true) => Mipsn32,
            (true, false) => Mipsn32el,
        },
        (EM_MIPS, true, true) => Mips64,
        (EM_MIPS, true, false) => Mips64el,
        (EM_PPC, false, true) => Ppc,
        (EM_PPC64, true, true) => Ppc64,
        (EM_PPC64, true, false) => Ppc64le,
        (EM_RISCV, false, false) => Riscv32,
        (EM_RISCV, true, false) => Riscv64,
        (EM_S390, true, true) => S390x,
        (EM_LOONGARCH, true, false) => Loongarch64,
        (EM_SPARC, false, true) => Sparc,
        (EM_SPARC32PLUS, false, true) => Sparc32plus,
        (EM_SPARCV9, true, true) => Sparc64,
        (EM_ALPHA, true, false) => Alpha,
        (EM_SH, false, false) => Sh4,
        (EM_SH, false, true) => Sh4eb,
        (EM_68K, false, true) => M68k,
        (EM_PARISC, false, true) => Hppa,
        _ => {
            return Err(ArchError::UnknownMachine {
                machine,
                class,
                big_endian: be,
            })
        }
    };
    Ok(arch)
}

/// armhf and armel differ only in the float ABI. EABI5 binaries record it
/// in e_flags; older ones record neither bit, and then the loader name
/// (/lib/ld-linux-armhf.so.3 vs /lib/ld-linux.so.3) is the best witness.
fn arm_float(flags: u32, interp: Option<&Path>) -> Arch {
    if flags & EF_ARM_ABI_FLOAT_HARD != 0 {
        Arch::Arm
    } else if flags & EF_ARM_ABI_FLOAT_SOFT != 0 {
        Arch::Armel
    } else if interp.is_some_and(|p| p.to_string_lossy().contains("armhf")) {
        Arch::Arm
    } else {
        Arch::Armel
    }
}

pub(super) fn describe(arch: Arch, flags: u32) -> (Option<FloatAbi>, Vec<&'static str>) {
    use Arch::*;
    match arch {
        Arm | Armel | Armeb => arm_notes(flags),
        Mips | Mipsel | Mipsn32 | Mipsn32el | Mips64 | Mips64el => (None, mips_notes(arch, flags)),
        Ppc64 | Ppc64le => (None, vec![ppc64_abi(flags)]),
        Riscv32 | Riscv64 => riscv_notes(arch == Riscv64, flags),
        Loongarch64 => loongarch_notes(flags),
        _ => (None, Vec::new()),
    }
}

fn arm_notes(flags: u32) -> (Option<FloatAbi>, Vec<&'static str>) {
    let mut notes = vec![match (flags & EF_ARM_EABIMASK) >> 24 {
        0 => "EABI unknown (old ABI?)",
        1 => "EABI1",
        2 => "EABI2",
        3 => "EABI3",
        4 => "EABI4",
        5 => "EABI5",
        _ => "EABI newer than 5",
    }];
    if flags & EF_ARM_BE8 != 0 {
        notes.push("BE8");
    }
    let float = if flags & EF_ARM_ABI_FLOAT_HARD != 0 {
        notes.push("hard-float");
        Some(FloatAbi::Hard)
    } else if flags & EF_ARM_ABI_FLOAT_SOFT != 0 {
        notes.push("soft-float");
        Some(FloatAbi::Soft)
    } else {
        None
    };
    (float, notes)
}

fn mips_notes(arch: Arch, flags: u32) -> Vec<&'static str> {
    let abi = match arch {
        Arch::Mips64 | Arch::Mips64el => "n64",
        _ if flags & EF_MIPS_ABI2 != 0 => "n32",
        _ => "o32",
    };
    let isa = match (flags & EF_MIPS_ARCH) >> 28 {
        0 => "mips1",
        1 => "mips2",
        2 => "mips3",
        3 => "mips4",
        4 => "mips5",
        5 => "mips32",
        6 => "mips64",
        7 => "mips32r2",
        8 => "mips64r2",
        9 => "mips32r6",
        10 => "mips64r6",
        _ => "unknown ISA level",
    };
    let nan = if flags & EF_MIPS_NAN2008 != 0 {
        "nan2008"
    } else {
        "legacy NaN"
    };
    vec![abi, isa, nan]
}

fn ppc64_abi(flags: u32) -> &'static str {
    match flags & EF_PPC64_ABI {
        1 => "ELFv1",
        2 => "ELFv2",
        0 => "ABI version unspecified",
        _ => "unknown ABI version",
    }
}

fn riscv_notes(is64: bool, flags: u32) -> (Option<FloatAbi>, Vec<&'static str>) {
    let (float, abi) = match (flags & EF_RISCV_FLOAT_ABI, is64) {
        (0, true) => (FloatAbi::Soft, "lp64"),
        (0, false) => (FloatAbi::Soft, "ilp32"),
        (2, true) => (FloatAbi::Single, "lp64f"),
        (2, false) => (FloatAbi::Single, "ilp32f"),
        (4, true) => (FloatAbi::Double, "lp64d"),
        (4, false) => (FloatAbi::Double, "ilp32d"),
        (_, true) => (FloatAbi::Quad, "lp64q"),
        (_, false) => (FloatAbi::Quad, "ilp32q"),
    };
    let mut notes = vec![abi];
    if flags & EF_RISCV_RVC != 0 {
        notes.push("RVC");
    }
    if flags & EF_RISCV_RVE != 0 {
        notes.push("RVE");
    }
    (Some(float), notes)
}

fn loongarch_notes(flags: u32) -> (Option<FloatAbi>, Vec<&'static str>) {
    match flags & EF_LOONGARCH_ABI_MODIFIER {
        1 => (Some(FloatAbi::Soft), vec!["lp64s"]),
        2 => (Some(FloatAbi::Single), vec!["lp64f"]),
        3 => (Some(FloatAbi::Double), vec!["lp64d"]),
        _ => (None, vec!["unknown ABI modifier"]),
    }
}
