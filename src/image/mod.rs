//! Reading root filesystem images (SquashFS through backhand, or a directory) without mounting
//! or unpacking them: resolve paths and symlinks inside the image, read the head of a file (the
//! ELF header of init), show the SquashFS superblock and LXD's metadata.yaml.
//!
//! The image is hostile. Lookups touch only the directories along the requested path, so the
//! cost does not grow with the image (a directory DAG cannot blow up a walk that never happens),
//! names from the image must be single components, and symlinks resolve inside the image root.

mod api_dirs;
#[doc(hidden)]
pub mod archive;
mod data;
mod dir_source;
mod dirtable;
pub mod entry;
mod error;
mod facts;
pub mod formats;
mod gettys;
mod init;
mod inode;
mod metablock;
mod metadata;
mod mounted;
mod squash;
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
pub use init::{HaltMethod, InitFlavor, Services, INITCTL};
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

use archive::{ArchiveSource, Compression, Format};
use dir_source::DirSource;
use mounted::{BlockFs, MountedSource};
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
    Mounted(Box<MountedSource>),
    Archive(Box<ArchiveSource>),
}

/// What kind of image was opened; decided once, from the file's magic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageKind {
    Squashfs,
    Directory,
    Ext4,
    Erofs,
    /// A tar or cpio archive, unpacked into a tmpfs.
    Archive,
}

impl Image {
    /// Opens an image file or an extracted rootfs directory; an archive is
    /// unpacked into a tmpfs of tmpfs's default size (see `open_with`).
    pub fn open(path: &Path) -> Result<Image, ImageError> {
        Image::open_with(path, None)
    }

    /// Opens a SquashFS file (little-endian, version 4.0) with backhand; an
    /// ext2/3/4 or EROFS file by mounting it read-only (a detached mount,
    /// needs root); a tar or cpio archive by unpacking it into a detached
    /// tmpfs of at most `tmpfs_size` (needs root); or a directory.
    pub fn open_with(path: &Path, tmpfs_size: Option<&str>) -> Result<Image, ImageError> {
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
            let head = read_start(path, &mut file)?;
            open_file(path, file, &head, meta.len(), tmpfs_size)?
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

    pub fn kind(&self) -> ImageKind {
        match &self.source {
            Source::Squashfs(_) => ImageKind::Squashfs,
            Source::Dir(_) => ImageKind::Directory,
            Source::Mounted(m) => match m.fs {
                BlockFs::Ext4 => ImageKind::Ext4,
                BlockFs::Erofs => ImageKind::Erofs,
            },
            Source::Archive(_) => ImageKind::Archive,
        }
    }

    /// What the image is, for `inspect`: "ext4 file system", "xz-compressed
    /// tar archive (1234 entries, 5678 bytes unpacked)".
    pub fn describe(&self) -> String {
        match &self.source {
            Source::Squashfs(_) => "SquashFS image".into(),
            Source::Dir(_) => "directory".into(),
            Source::Mounted(m) => format!("{} file system (mounted read-only)", m.fs.name()),
            Source::Archive(a) => format!(
                "{}{} ({} entries, {} bytes unpacked into a tmpfs)",
                a.compression.prefix(),
                match a.format {
                    Format::Tar => "tar archive",
                    Format::Cpio => "cpio archive",
                },
                a.entries,
                a.bytes
            ),
        }
    }

    /// The detached mount holding the tree (an ext4 or EROFS mount, or the
    /// tmpfs an archive was unpacked into), to be the container's lower
    /// layer; None for SquashFS images and directories.
    pub fn into_lower(self) -> Option<std::os::fd::OwnedFd> {
        match self.source {
            Source::Mounted(m) => Some(m.tree.into_fd()),
            Source::Archive(a) => Some(a.tree.into_fd()),
            Source::Squashfs(_) | Source::Dir(_) => None,
        }
    }

    /// The tree of a mounted or unpacked image, read like a directory.
    fn dir_like(&self) -> Option<&DirSource> {
        match &self.source {
            Source::Dir(dir) => Some(dir),
            Source::Mounted(m) => Some(&m.dir),
            Source::Archive(a) => Some(&a.dir),
            Source::Squashfs(_) => None,
        }
    }

    /// The host path the image was opened from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Follows the absolute in-image `path`, symlinks included (at most
    /// [`MAX_SYMLINK_HOPS`]), without ever leaving the image.
    pub fn resolve(&self, path: &str) -> Result<Resolved, ImageError> {
        match (&self.source, self.dir_like()) {
            (_, Some(dir)) => walk::resolve(dir, &self.path, path).map(|(r, _)| r),
            (Source::Squashfs(sq), None) => {
                walk::resolve(sq.as_ref(), &self.path, path).map(|(r, _)| r)
            }
            _ => unreachable!("every source but SquashFS reads like a directory"),
        }
    }

    /// Resolves `path`, then reads at most `max` bytes from the start of that regular file.
    pub fn read_head(&self, path: &str, max: usize) -> Result<Vec<u8>, ImageError> {
        self.resolve_and_read_head(path, max).map(|(_, head)| head)
    }

    /// `read_head`, with where `path` led: one walk for both.
    pub fn resolve_and_read_head(
        &self,
        path: &str,
        max: usize,
    ) -> Result<(Resolved, Vec<u8>), ImageError> {
        let not_file = |r: &Resolved| ImageError::NotRegularFile {
            image: self.path.clone(),
            path: r.path.clone(),
            kind: r.kind,
        };
        if let Some(dir) = self.dir_like() {
            let (resolved, host_path) = walk::resolve(dir, &self.path, path)?;
            if resolved.kind != FileKind::File {
                return Err(not_file(&resolved));
            }
            let head = dir.read_head(&host_path, &resolved.path, max)?;
            return Ok((resolved, head));
        }
        let Source::Squashfs(sq) = &self.source else {
            unreachable!("every source but SquashFS reads like a directory")
        };
        let (resolved, inode) = walk::resolve(sq.as_ref(), &self.path, path)?;
        if resolved.kind != FileKind::File {
            return Err(not_file(&resolved));
        }
        let head = sq.read_head(&inode, &resolved.path, max)?;
        Ok((resolved, head))
    }

    /// Superblock facts, for a SquashFS image.
    pub fn squashfs_facts(&self) -> Option<SquashfsFacts> {
        match &self.source {
            Source::Squashfs(sq) => Some(sq.facts()),
            _ => None,
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

/// Reads the file's first `formats::HEAD` bytes (fewer when it is shorter).
fn read_start(path: &Path, file: &mut File) -> Result<Vec<u8>, ImageError> {
    let mut head = vec![0u8; formats::HEAD];
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
    head.truncate(filled);
    // backhand parses the superblock from the reader's current position,
    // not from offset 0; the archive readers start there too.
    file.rewind().map_err(|source| ImageError::Io {
        path: path.to_path_buf(),
        op: "seek",
        source,
    })?;
    Ok(head)
}

/// Decides the kind of image from its magic, once, and opens it.
fn open_file(
    path: &Path,
    file: File,
    head: &[u8],
    size: u64,
    tmpfs_size: Option<&str>,
) -> Result<Source, ImageError> {
    let at = |offset: usize, magic: &[u8]| head.get(offset..offset + magic.len()) == Some(magic);
    // Magics at the start first: a SquashFS or an archive has arbitrary
    // bytes where ext4 and EROFS keep theirs, and an ext4 or EROFS image
    // leaves its first 1024 bytes to a boot loader (usually zeros).
    if at(0, b"hsqs") {
        check_superblock(path, head)?;
        return Ok(Source::Squashfs(Box::new(SquashSource::open(path, file)?)));
    }
    let compression = match Format::of(head) {
        Some(_) => Some(Compression::None),
        None => Compression::of(head),
    };
    if let Some(compression) = compression {
        let unpacked = archive::open(path, file, compression, tmpfs_size)?;
        return Ok(Source::Archive(Box::new(unpacked)));
    }
    // ext2/3/4: s_magic 0xEF53 at 1024 + 0x38; EROFS: 0xE0F5E1E2 at 1024
    // (fs/ext4/ext4.h, fs/erofs/erofs_fs.h).
    if at(1080, &[0x53, 0xEF]) {
        let mounted = mounted::open(path, BlockFs::Ext4, head, size)?;
        return Ok(Source::Mounted(Box::new(mounted)));
    }
    if at(1024, &[0xE2, 0xE1, 0xF5, 0xE0]) {
        let mounted = mounted::open(path, BlockFs::Erofs, head, size)?;
        return Ok(Source::Mounted(Box::new(mounted)));
    }
    // None of them: the error names what it is, when rootrun knows.
    Err(ImageError::NotSquashfs {
        path: path.to_path_buf(),
        found: formats::identify(head),
    })
}

/// Checks the magic and version before backhand parses anything, so a text file or a
/// big-endian image gets an error that says what it is rather than a generic parse failure.
fn check_superblock(path: &Path, head: &[u8]) -> Result<(), ImageError> {
    // magic at 0, version_major at 28, version_minor at 30 (squashfs_fs.h,
    // struct squashfs_super_block); more for `formats` when it is not one.
    if head.len() < 32 || head[..4] != *b"hsqs" {
        return Err(ImageError::NotSquashfs {
            path: path.to_path_buf(),
            found: formats::identify(head),
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
    Ok(())
}
