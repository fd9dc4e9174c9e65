//! CPU architectures: ELF header -> Arch, their names, and binfmt_misc.
