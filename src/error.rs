//! rootrun's own failures and the exit codes they map to.
//!
//! The codes follow `docker run`: 125 for an error of rootrun itself, 126 when
//! the command cannot be executed, 127 when it cannot be found. Everything
//! else is the container's own status, passed through (a signal as 128+n).

use std::path::PathBuf;

use crate::lxc::LxcError;
use crate::sys::SysError;

pub const EXIT_ROOTRUN: u8 = 125;
pub const EXIT_NOT_EXECUTABLE: u8 = 126;
pub const EXIT_NOT_FOUND: u8 = 127;
/// `--timeout` passed before `--expect` matched (as timeout(1) exits).
pub const EXIT_TIMED_OUT: u8 = 124;
/// The container ended before `--expect` matched.
pub const EXIT_ENDED_UNMATCHED: u8 = 123;
/// stdout was a pipe whose reader is gone: what a program killed by SIGPIPE
/// reports (128+13), without a message.
pub const EXIT_STDOUT_CLOSED: u8 = 141;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("not running as root: missing {} (run rootrun with sudo)", .0.join(", "))]
    Privileges(Vec<String>),
    #[error("image {}: {problem}", path.display())]
    Image { path: PathBuf, problem: String },
    #[error(transparent)]
    ImageRead(#[from] crate::image::ImageError),
    #[error(transparent)]
    Detect(Box<crate::image::DetectError>),
    #[error(transparent)]
    Arch(#[from] crate::arch::ArchError),
    #[error(transparent)]
    Emulation(#[from] crate::arch::EmulationError),
    #[error(transparent)]
    Unpack(Box<crate::image::unpack::UnpackError>),
    #[error(transparent)]
    Lxc(#[from] LxcError),
    #[error(transparent)]
    Sys(#[from] SysError),
    /// The loop device for the image could not be had (no /dev/loop-control,
    /// no free device, no loop support): `--unpack` needs none.
    #[error("no loop device for the image: {0} (--unpack runs it without one)")]
    NoLoopDevice(SysError),
    #[error(transparent)]
    Net(#[from] crate::sys::net::NetError),
    #[error("{what} not found in the image{}", hint_suffix(.hint))]
    NotFound { what: String, hint: Option<String> },
    #[error("{what} in the image is not an executable file")]
    NotExecutable { what: String },
    #[error("container failed to start{}", detail_suffix(.detail))]
    Start { detail: String },
    #[error("{0}")]
    Usage(String),
    /// Writing a report to stdout failed; a closed pipe ends quietly.
    #[error("write to stdout: {0}")]
    Stdout(std::io::Error),
}

fn hint_suffix(hint: &Option<String>) -> String {
    hint.as_deref()
        .map(|h| format!(" ({h})"))
        .unwrap_or_default()
}

fn detail_suffix(detail: &str) -> String {
    if detail.is_empty() {
        String::new()
    } else {
        format!(": {detail}")
    }
}

impl Error {
    /// Whether the error is reported by its exit code alone.
    pub fn is_quiet(&self) -> bool {
        matches!(self, Error::Stdout(e) if e.kind() == std::io::ErrorKind::BrokenPipe)
    }

    pub fn exit_code(&self) -> u8 {
        match self {
            Error::NotFound { .. } => EXIT_NOT_FOUND,
            Error::NotExecutable { .. } => EXIT_NOT_EXECUTABLE,
            Error::Stdout(e) if e.kind() == std::io::ErrorKind::BrokenPipe => EXIT_STDOUT_CLOSED,
            Error::Unpack(e) => match *e.failure {
                crate::image::unpack::Failure::Interrupted(signal) => 128 + signal as u8,
                _ => EXIT_ROOTRUN,
            },
            _ => EXIT_ROOTRUN,
        }
    }
}
