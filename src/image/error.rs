//! Errors from reading an image. Every variant names the image, and the path inside it when
//! there is one, because a user with several images open in CI logs needs both to act.

use std::path::PathBuf;

use super::FileKind;

#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error("image {path} not found", path = .path.display())]
    Missing { path: PathBuf },

    #[error("{path}: {op}: {source}", path = .path.display())]
    Io {
        path: PathBuf,
        op: &'static str,
        #[source]
        source: std::io::Error,
    },

    #[error("{path}: not a SquashFS image {}", not_squashfs(.found), path = .path.display())]
    NotSquashfs {
        path: PathBuf,
        /// What it is instead, when rootrun recognises it.
        found: Option<super::formats::Found>,
    },

    #[error("{path}: SquashFS version {major}.{minor} is not supported (only 4.0)", path = .path.display())]
    UnsupportedVersion {
        path: PathBuf,
        major: u16,
        minor: u16,
    },

    /// An image of another kind that could not be opened: what it is and why.
    #[error("{path}: {what}", path = .path.display())]
    Format { path: PathBuf, what: String },

    #[error("{path}: neither a regular file nor a directory", path = .path.display())]
    UnsupportedSource { path: PathBuf },

    #[error("{image}: {context}: {source}", image = .image.display())]
    Squashfs {
        image: PathBuf,
        context: String,
        #[source]
        source: backhand::BackhandError,
    },

    #[error("{image}: {path}: corrupted image: {what}", image = .image.display())]
    Corrupt {
        image: PathBuf,
        path: String,
        what: String,
    },

    #[error("{image}: {path}: invalid path: {why}", image = .image.display())]
    BadPath {
        image: PathBuf,
        path: String,
        why: &'static str,
    },

    #[error("{image}: {dir}: directory entry {name:?} is not a valid file name", image = .image.display())]
    BadEntryName {
        image: PathBuf,
        dir: String,
        name: String,
    },

    #[error("{image}: {dir}: several directory entries are named {name:?}", image = .image.display())]
    DuplicateName {
        image: PathBuf,
        dir: String,
        name: String,
    },

    #[error("{image}: {path}: no such file or directory in the image", image = .image.display())]
    NotFound { image: PathBuf, path: String },

    #[error("{image}: {path}: not a directory", image = .image.display())]
    NotADirectory { image: PathBuf, path: String },

    #[error("{image}: {path}: too many levels of symbolic links (more than {max})", image = .image.display())]
    TooManyLinks {
        image: PathBuf,
        path: String,
        max: usize,
    },

    #[error("{image}: {path}: is a {kind}, not a regular file", image = .image.display())]
    NotRegularFile {
        image: PathBuf,
        path: String,
        kind: FileKind,
    },

    #[error(
        "{path}: its inode, directory and lookup tables would take more than {max_mib} MiB \
         of memory decompressed; refused (a hostile or corrupt image)",
        path = .path.display()
    )]
    TablesTooLarge { path: PathBuf, max_mib: u64 },

    #[error("{image}: {path}: {size} bytes, more than the {max} accepted", image = .image.display())]
    TooLarge {
        image: PathBuf,
        path: String,
        size: u64,
        max: u64,
    },

    #[error("{image}: {path}: {source}", image = .image.display())]
    Metadata {
        image: PathBuf,
        path: String,
        #[source]
        source: crate::yaml::Error,
    },
}

fn not_squashfs(found: &Option<super::formats::Found>) -> String {
    match found {
        Some(found) => format!(
            "but {}; rootrun boots SquashFS, ext4 and EROFS images, tar and cpio archives, \
             and extracted trees: {}",
            found.what, found.hint
        ),
        None => "nor any image or archive rootrun reads (SquashFS, ext2/3/4, EROFS, tar, \
                 cpio newc, plain or gzip/xz/zstd/bzip2-compressed)"
            .into(),
    }
}
