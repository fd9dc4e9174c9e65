//! Unpack errors. Each names the destination and, when there is one, the path inside the image,
//! and says what became of DIR, because a user deciding whether to retry needs all three.

use std::path::PathBuf;

use nix::errno::Errno;

use super::super::ImageError;

#[derive(Debug, thiserror::Error)]
#[error("unpack {image} into {dest}: {failure}{cleanup}", image = .image.display(), dest = .dest.display())]
pub struct UnpackError {
    pub image: PathBuf,
    pub dest: PathBuf,
    /// Boxed: an image error is large, and this travels up through every `?`.
    pub failure: Box<Failure>,
    pub cleanup: Cleanup,
}

#[derive(Debug, thiserror::Error)]
pub enum Failure {
    #[error("{0}")]
    Image(#[from] ImageError),
    #[error("not a SquashFS image file")]
    NotSquashfs,
    #[error("the destination is a symbolic link; give the real directory")]
    DestSymlink,
    #[error("the destination exists and is not a directory")]
    DestNotDir,
    #[error("the destination directory is not empty")]
    DestNotEmpty,
    #[error("{op} the destination: {errno}")]
    Dest { op: &'static str, errno: Errno },
    #[error("{path}: {op}: {errno}")]
    Create {
        op: &'static str,
        path: String,
        errno: Errno,
    },
    #[error("{path}: corrupted image: {what}")]
    Data { path: String, what: String },
    #[error("{path}: writing the extracted file: {source}")]
    Write {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "its files add up to {need} bytes, but the destination's file system has {free} bytes free"
    )]
    NoSpace { need: u64, free: u64 },
    #[error("starting a decompression thread: {0}")]
    Thread(std::io::Error),
    #[error("interrupted by signal {0}")]
    Interrupted(nix::sys::signal::Signal),
}

/// What is left at the destination after a failure.
#[derive(Debug)]
pub enum Cleanup {
    /// Failed before anything was created.
    Untouched,
    /// rootrun created DIR, and removed it again.
    Removed,
    /// rootrun created DIR, but could not remove it.
    RemoveFailed(Errno),
    /// DIR existed before: it keeps what was extracted, and a note saying so (when it could
    /// be written).
    LeftPartial { entries: u64, note: Option<String> },
}

impl std::fmt::Display for Cleanup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Cleanup::Untouched => Ok(()),
            Cleanup::Removed => f.write_str(" (the partial destination was removed)"),
            Cleanup::RemoveFailed(errno) => {
                write!(f, " (removing the partial destination failed: {errno})")
            }
            Cleanup::LeftPartial { entries, note } => {
                write!(
                    f,
                    " (the destination holds a partial tree of {entries} entries"
                )?;
                match note {
                    Some(name) => write!(f, "; see {name} in it)"),
                    None => f.write_str(")"),
                }
            }
        }
    }
}
