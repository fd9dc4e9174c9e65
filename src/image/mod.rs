//! Reading root filesystem images (SquashFS through backhand, or a directory) without mounting
//! or unpacking them: resolve paths and symlinks inside the image, read the head of a file (the
//! ELF header of init), show the SquashFS superblock and LXD's metadata.yaml.
//!
//! The image is hostile. Lookups touch only the directories along the requested path, so the
//! cost does not grow with the image (a directory DAG cannot blow up a walk that never happens),
//! names from the image must be single components, and symlinks resolve inside the image root.

mod api_dirs;
mod dir_source;
mod dirtable;
pub mod entry;
mod error;
mod facts;
pub mod formats;
mod gettys;
mod init;
mod metadata;
mod squash;
mod table_bound;
pub mod unpack;
pub mod users;
mod walk;

#[cfg(test)]
mod tests;

use std::fs::File;
use std::io::{Read, Seek};
use std::path::{Path, PathBuf};

pub use api_dirs::api_dir_problem;
pub use error::ImageError;
/// systemd's version read from its binary, for the fuzz targets (fuzz/).
#[doc(hidden)]
pub use facts::systemd_version;
pub use facts::{examine, DetectError, Evidence, ImageFacts, InitUse, Probe};
pub use gettys::console_ttys;
pub use init::{HaltMethod, InitClues, InitFlavor, Services, INITCTL};
/// metadata.yaml's parser alone, for the fuzz targets (fuzz/).
#[doc(hidden)]
pub use metadata::parse as parse_metadata;
pub use metadata::{Metadata, Properties};

/// `--metadata FILE`: the metadata.yaml of a split image's tarball.
pub fn metadata_from_tarball(path: &Path) -> Result<Metadata, String> {
    metadata::from_tarball(path, METADATA_MAX)
}
pub use squash::SquashfsFacts;
pub use walk::{FileKind, Resolved, MAX_SYMLINK_HOPS};

use dir_source::DirSource;
use squash::SquashSource;

/// Where LXD's unified image format keeps its metadata.
const METADATA_PATH: &str = "/metadata.yaml";
/// Real metadata.yaml files are a few KiB (templates included); this bounds a hostile one.
const METADATA_MAX: u64 = 1 << 20;

/// A root file system image opened read-only.
pub struct Image {
    path: PathBuf,
    source: Source,
}

enum Source {
    Squashfs(Box<SquashSource>),
    Dir(DirSource),
}

impl Image {
    /// Opens a SquashFS file (little-endian, version 4.0) or an extracted rootfs directory.
    pub fn open(path: &Path) -> Result<Image, ImageError> {
        let io = |op, source| ImageError::Io {
            path: path.to_path_buf(),
            op,
            source,
        };
        let meta = std::fs::metadata(path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => ImageError::Missing {
                path: path.to_path_buf(),
            },
            _ => io("stat", e),
        })?;
        let source = if meta.is_dir() {
            Source::Dir(DirSource::new(path))
        } else if meta.is_file() {
            let mut file = File::open(path).map_err(|e| io("open", e))?;
            check_superblock(path, &mut file)?;
            table_bound::check(path, &mut file, meta.len())?;
            Source::Squashfs(Box::new(SquashSource::open(path, file)?))
        } else {
            return Err(ImageError::UnsupportedSource {
                path: path.to_path_buf(),
            });
        };
        Ok(Image {
            path: path.to_path_buf(),
            source,
        })
    }

    /// The host path the image was opened from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Follows the absolute in-image `path`, symlinks included (at most
    /// [`MAX_SYMLINK_HOPS`]), without ever leaving the image.
    pub fn resolve(&self, path: &str) -> Result<Resolved, ImageError> {
        match &self.source {
            Source::Squashfs(sq) => walk::resolve(sq.as_ref(), &self.path, path).map(|(r, _)| r),
            Source::Dir(dir) => walk::resolve(dir, &self.path, path).map(|(r, _)| r),
        }
    }

    /// Resolves `path`, then reads at most `max` bytes from the start of that regular file.
    pub fn read_head(&self, path: &str, max: usize) -> Result<Vec<u8>, ImageError> {
        let not_file = |r: &Resolved| ImageError::NotRegularFile {
            image: self.path.clone(),
            path: r.path.clone(),
            kind: r.kind,
        };
        match &self.source {
            Source::Squashfs(sq) => {
                let (resolved, inode) = walk::resolve(sq.as_ref(), &self.path, path)?;
                if resolved.kind != FileKind::File {
                    return Err(not_file(&resolved));
                }
                sq.read_head(&inode, &resolved.path, max)
            }
            Source::Dir(dir) => {
                let (resolved, host_path) = walk::resolve(dir, &self.path, path)?;
                if resolved.kind != FileKind::File {
                    return Err(not_file(&resolved));
                }
                dir.read_head(&host_path, &resolved.path, max)
            }
        }
    }

    /// Superblock facts, for a SquashFS image.
    pub fn squashfs_facts(&self) -> Option<SquashfsFacts> {
        match &self.source {
            Source::Squashfs(sq) => Some(sq.facts()),
            Source::Dir(_) => None,
        }
    }

    /// LXD's `/metadata.yaml`, when the image has one.
    pub fn metadata(&self) -> Result<Option<Metadata>, ImageError> {
        let resolved = match self.resolve(METADATA_PATH) {
            Ok(resolved) => resolved,
            Err(ImageError::NotFound { .. }) => return Ok(None),
            Err(e) => return Err(e),
        };
        if resolved.size > METADATA_MAX {
            return Err(ImageError::TooLarge {
                image: self.path.clone(),
                path: resolved.path,
                size: resolved.size,
                max: METADATA_MAX,
            });
        }
        let text = self.read_head(METADATA_PATH, METADATA_MAX as usize)?;
        metadata::parse(&text)
            .map(Some)
            .map_err(|source| ImageError::Metadata {
                image: self.path.clone(),
                path: resolved.path,
                source,
            })
    }
}

/// Checks the magic and version before backhand parses anything, so a text file or a
/// big-endian image gets an error that says what it is rather than a generic parse failure.
fn check_superblock(path: &Path, file: &mut File) -> Result<(), ImageError> {
    // magic at 0, version_major at 28, version_minor at 30 (squashfs_fs.h,
    // struct squashfs_super_block); more for `formats` when it is not one.
    let mut head = [0u8; formats::HEAD];
    let mut filled = 0;
    while filled < head.len() {
        match file.read(&mut head[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(source) => {
                return Err(ImageError::Io {
                    path: path.to_path_buf(),
                    op: "read",
                    source,
                })
            }
        }
    }
    if filled < 4 || head[..4] != *b"hsqs" {
        return Err(ImageError::NotSquashfs {
            path: path.to_path_buf(),
            found: formats::identify(&head[..filled]),
        });
    }
    let major = u16::from_le_bytes([head[28], head[29]]);
    let minor = u16::from_le_bytes([head[30], head[31]]);
    if (major, minor) != (4, 0) {
        return Err(ImageError::UnsupportedVersion {
            path: path.to_path_buf(),
            major,
            minor,
        });
    }
    // backhand parses the superblock from the reader's current position, not from offset 0.
    file.rewind().map_err(|source| ImageError::Io {
        path: path.to_path_buf(),
        op: "seek",
        source,
    })
}
