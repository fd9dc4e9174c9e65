//! e_machine + class + byte order + e_flags -> [`Arch`] through the table's
//! ELF columns, and the e_flags facts worth showing.
//!
//! Flag values: ARM ELF ABI (aaelf32, "e_flags"), MIPS from binutils
//! include/elf/mips.h, 64-bit ELF V2 ABI for Power ("e_flags"), RISC-V ELF
//! psABI ("e_flags"), LoongArch ELF psABI ("e_flags").

use super::row::ElfAbi;
use super::{Arch, ArchError};
use goblin::elf::header::{EM_ARM, EM_LOONGARCH, EM_MIPS, EM_PPC64, EM_RISCV};
use serde::Serialize;
use std::path::Path;

// Hand-written: goblin 0.10 defines no EF_* values. Each is defined here
// only; qemu_magic.rs takes EF_MIPS_ABI2 from here.
const EF_ARM_EABIMASK: u32 = 0xff00_0000;
const EF_ARM_BE8: u32 = 0x0080_0000;
const EF_ARM_ABI_FLOAT_SOFT: u32 = 0x200;
const EF_ARM_ABI_FLOAT_HARD: u32 = 0x400;
pub(super) const EF_MIPS_ABI2: u32 = 0x20;
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

/// The row whose ELF columns match the header; e_flags (and for old ARM
/// binaries the loader path) choose among rows that share e_machine, class
/// and byte order.
pub(super) fn classify(
    machine: u16,
    class: u8,
    be: bool,
    flags: u32,
    interp: Option<&Path>,
) -> Result<Arch, ArchError> {
    let abi = abi(machine, class, flags, interp);
    Arch::all()
        .find(|a| {
            let elf = &a.row().elf;
            elf.machine == machine
                && elf.bits() == class
                && elf.big_endian() == be
                && (elf.abi == ElfAbi::Any || elf.abi == abi)
        })
        .ok_or(ArchError::UnknownMachine {
            machine,
            class,
            big_endian: be,
        })
}

/// The e_flags ABI of a binary, in the terms of the table's `abi` column.
fn abi(machine: u16, class: u8, flags: u32, interp: Option<&Path>) -> ElfAbi {
    match machine {
        EM_ARM => arm_float(flags, interp),
        EM_MIPS if class == 32 && flags & EF_MIPS_ABI2 != 0 => ElfAbi::MipsN32,
        EM_MIPS if class == 32 => ElfAbi::MipsO32,
        _ => ElfAbi::Any,
    }
}

/// armhf and armel differ only in the float ABI. EABI5 binaries record it
/// in e_flags; older ones record neither bit, and then the loader name
/// (/lib/ld-linux-armhf.so.3 vs /lib/ld-linux.so.3) is the best witness.
fn arm_float(flags: u32, interp: Option<&Path>) -> ElfAbi {
    if flags & EF_ARM_ABI_FLOAT_HARD != 0 {
        ElfAbi::ArmHardFloat
    } else if flags & EF_ARM_ABI_FLOAT_SOFT != 0 {
        ElfAbi::ArmSoftFloat
    } else if interp.is_some_and(|p| p.to_string_lossy().contains("armhf")) {
        ElfAbi::ArmHardFloat
    } else {
        ElfAbi::ArmSoftFloat
    }
}

/// The e_flags facts of a binary of `arch`, read the way its e_machine's
/// ABI document defines them.
pub(super) fn describe(arch: Arch, flags: u32) -> (Option<FloatAbi>, Vec<&'static str>) {
    let elf = &arch.row().elf;
    match elf.machine {
        EM_ARM => arm_notes(flags),
        EM_MIPS => (None, mips_notes(elf.bits(), flags)),
        EM_PPC64 => (None, vec![ppc64_abi(flags)]),
        EM_RISCV => riscv_notes(elf.bits() == 64, flags),
        EM_LOONGARCH => loongarch_notes(flags),
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

fn mips_notes(bits: u8, flags: u32) -> Vec<&'static str> {
    let abi = match bits {
        64 => "n64",
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
