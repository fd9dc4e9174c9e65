//! CPU architectures: ELF header -> Arch, their names, and binfmt_misc.
//!
//! `table` is the one table of architectures (`row` names its columns):
//! each CPU's names, the ELF header fields of its binaries and the masks of
//! its qemu binfmt_misc entry (`qemu_magic` builds the pattern). `elf` reads
//! only the ELF header (and the program headers when they lie in the bytes
//! given) and finds its row, `names` maps an [`Arch`] to the dialects other
//! tools speak (uname, Debian, qemu-user, LXD), `host` finds the row of the
//! CPU rootrun was built for, and `binfmt` reads, matches and registers
//! binfmt_misc entries the way fs/binfmt_misc.c does.

mod binfmt;
mod binfmt_register;
mod elf;
mod elf_flags;
mod elf_phdr;
mod emulation;
mod error;
mod host;
mod names;
mod qemu_magic;
mod qemu_version;
mod row;
mod table;

#[cfg(test)]
mod binfmt_live_tests;
#[cfg(test)]
mod test_elf;

pub use binfmt::{global_enabled, parse_entry, read_entries, select, Entry, Flags, Kind, OrderKey};
pub use binfmt_register::{
    parse_register_line, register, register_line, remove, set_enabled, Registration,
    REGISTER_MAX_LEN,
};
pub use elf::{identify, ElfFacts, Linkage};
pub use elf_flags::FloatAbi;
pub use emulation::{
    binfmt_from_listing, decide, inspect_interpreter, read_binfmt, Binfmt, Emulation,
    EmulationError, InterpreterFacts, BINFMT_DIR,
};
pub use error::ArchError;
pub use names::ArchNames;
pub use qemu_magic::{qemu_pattern, qemu_register_line, Pattern};
pub use qemu_version::{clone_pidfd, parse_version, probe_version, rt_signal_shift, QemuVersion};
pub use table::Arch;
