//! The columns of the architecture table in `table.rs`: everything rootrun
//! needs to know about one CPU, in one row.

use super::ArchNames;
use goblin::elf::header::{ELFCLASS64, ELFDATA2MSB};

/// One architecture. Read through `Arch::row`, which cannot miss a row.
pub(super) struct Row {
    pub names: ArchNames,
    /// Other spellings seen in the wild (RPM, Go, LXD aliases).
    pub aliases: &'static [&'static str],
    pub elf: ElfMatch,
    pub qemu: QemuMasks,
    /// Rust's `target_arch` for a rootrun built for this CPU, when Rust has
    /// one; `Arch::host` finds its row through it.
    pub rust: Option<&'static str>,
}

/// The ELF header fields that make a binary this architecture's
/// (System V gABI, "ELF Header").
pub(super) struct ElfMatch {
    /// e_machine.
    pub machine: u16,
    /// `e_ident[EI_CLASS]`: ELFCLASS32 or ELFCLASS64.
    pub class: u8,
    /// `e_ident[EI_DATA]`: ELFDATA2LSB or ELFDATA2MSB.
    pub data: u8,
    /// What e_flags must say, where rows share the three fields above.
    pub abi: ElfAbi,
}

impl ElfMatch {
    /// 32 or 64.
    pub const fn bits(&self) -> u8 {
        if self.class == ELFCLASS64 {
            64
        } else {
            32
        }
    }

    pub const fn big_endian(&self) -> bool {
        self.data == ELFDATA2MSB
    }
}

/// The e_flags-dependent ABI that tells rows with the same e_machine, class
/// and byte order apart; `elf_flags::abi` reads it from a binary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ElfAbi {
    /// The only row for its e_machine, class and byte order.
    Any,
    /// ARM EABI5 with EF_ARM_ABI_FLOAT_HARD (aaelf32, "e_flags").
    ArmHardFloat,
    /// ARM EABI5 with EF_ARM_ABI_FLOAT_SOFT.
    ArmSoftFloat,
    /// 32-bit MIPS without EF_MIPS_ABI2 (binutils include/elf/mips.h).
    MipsO32,
    /// 32-bit MIPS with EF_MIPS_ABI2.
    MipsN32,
}

/// How qemu-user's binfmt_misc entry for this CPU loosens the comparison
/// of the header (qemu's scripts/qemu-binfmt-conf.sh); `qemu_magic` builds
/// the pattern from these and the ELF columns.
pub(super) struct QemuMasks {
    /// Mask of `e_ident[EI_OSABI]`.
    pub osabi: u8,
    /// Mask of `e_ident[EI_ABIVERSION]`.
    pub abiversion: u8,
    /// Mask of e_machine.
    pub machine: u16,
}

/// Any OS ABI.
pub(super) const OSABI_ANY: u8 = 0x00;
/// OS ABI 0..3 (SYSV, HP-UX, NetBSD, GNU): qemu's choice for the CPUs whose
/// toolchains have set it to non-zero.
pub(super) const OSABI_0_TO_3: u8 = 0xfc;
/// ABI version 0 only.
pub(super) const ABIVERSION_0: u8 = 0xff;
/// ABI version 0 or 1 (MIPS).
pub(super) const ABIVERSION_0_OR_1: u8 = 0xfe;
/// Any ABI version (LoongArch).
pub(super) const ABIVERSION_ANY: u8 = 0x00;
/// e_machine compared whole.
pub(super) const MACHINE_EXACT: u16 = 0xffff;
/// Only the low byte of e_machine compared (ppc64le).
pub(super) const MACHINE_LOW_BYTE: u16 = 0x00ff;

/// An [`ArchNames`] in table order: uname, Debian, qemu, LXD.
pub(super) const fn names(
    uname: &'static str,
    debian: Option<&'static str>,
    qemu: &'static str,
    lxd: Option<&'static str>,
) -> ArchNames {
    ArchNames {
        uname,
        debian,
        qemu,
        lxd,
    }
}

/// An [`ElfMatch`] in header order: e_machine, EI_CLASS, EI_DATA, e_flags.
pub(super) const fn elf(machine: u16, class: u8, data: u8, abi: ElfAbi) -> ElfMatch {
    ElfMatch {
        machine,
        class,
        data,
        abi,
    }
}

/// A [`QemuMasks`] in header order: EI_OSABI, EI_ABIVERSION, e_machine.
pub(super) const fn masks(osabi: u8, abiversion: u8, machine: u16) -> QemuMasks {
    QemuMasks {
        osabi,
        abiversion,
        machine,
    }
}
