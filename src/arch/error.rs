//! The one error type of the `arch` module.

use std::path::PathBuf;

/// What went wrong while identifying a binary or talking to binfmt_misc.
///
/// `identify` works on bytes and does not know the file name: its caller
/// adds the path when it reports the error.
#[derive(Debug, thiserror::Error)]
pub enum ArchError {
    /// No `\x7fELF` magic: a script, a text file, or some other format.
    #[error("not an ELF file (no \\x7fELF magic at offset 0)")]
    NotElf,
    /// Fewer bytes than the ELF header needs.
    #[error("truncated ELF header: {have} bytes, the header needs {need}")]
    Truncated { have: usize, need: usize },
    /// The header has the magic but is not well formed.
    #[error("malformed ELF header: {0}")]
    BadElf(String),
    /// A well-formed header for a machine/class/byte order we do not map.
    #[error("unsupported ELF machine {machine} ({class}-bit, {})", endian_name(*big_endian))]
    UnknownMachine {
        machine: u16,
        class: u8,
        big_endian: bool,
    },
    /// A binfmt_misc entry file whose text we cannot parse.
    #[error("binfmt_misc entry {path}: {problem}")]
    BadEntry { path: PathBuf, problem: String },
    /// A registration we refuse to build or send (bad name, too long, ...).
    #[error("binfmt_misc registration {name:?}: {problem}")]
    BadRegistration { name: String, problem: String },
    /// An I/O operation on a binfmt_misc file failed.
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

fn endian_name(big_endian: bool) -> &'static str {
    if big_endian {
        "big-endian"
    } else {
        "little-endian"
    }
}

impl ArchError {
    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        ArchError::Io {
            op,
            path: path.into(),
            source,
        }
    }
}
