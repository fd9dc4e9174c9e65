//! An already-extracted root file system in a host directory.
//!
//! Lookups go one component at a time with `symlink_metadata` (lstat) and never let the host
//! kernel follow a link: symlinks are read with `read_link` and resolved by `walk` against the
//! directory as root, so `etc/x -> /etc/shadow` names the image's file, not the host's. Only a
//! concurrent change of the directory (a race) could redirect a lookup; openat2(RESOLVE_IN_ROOT)
//! would close that, but needs `unsafe`, which belongs in src/sys.

use std::ffi::OsStr;
use std::fs::{self, Metadata};
use std::io::{ErrorKind, Read};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use super::walk::{FileKind, NodeInfo, Tree};
use super::ImageError;

pub struct DirSource {
    root: PathBuf,
    /// What errors call the root: the directory, or the image file whose
    /// mounted tree `root` reaches (`/proc/self/fd/N`, see `mounted`).
    shown: PathBuf,
}

impl DirSource {
    pub fn new(root: &Path) -> DirSource {
        DirSource::shown_as(root, root)
    }

    /// A tree reached through `root` whose errors name `shown` instead.
    pub fn shown_as(root: &Path, shown: &Path) -> DirSource {
        DirSource {
            root: root.to_path_buf(),
            shown: shown.to_path_buf(),
        }
    }

    fn io(&self, host_path: &Path, op: &'static str, source: std::io::Error) -> ImageError {
        let path = match host_path.strip_prefix(&self.root) {
            Ok(inside) if self.shown != self.root => self.shown.join(inside),
            _ => host_path.to_path_buf(),
        };
        ImageError::Io { path, op, source }
    }

    /// Reads at most `max` bytes of the regular file at `host_path`, which `walk` produced.
    pub fn read_head(
        &self,
        host_path: &Path,
        path: &str,
        max: usize,
    ) -> Result<Vec<u8>, ImageError> {
        // O_NOFOLLOW and O_NONBLOCK: if the entry was swapped for a symlink or a fifo since the
        // lookup, fail or return at once instead of escaping or hanging (open(2)).
        let file = fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
            .open(host_path)
            .map_err(|e| self.io(host_path, "open", e))?;
        let meta = file.metadata().map_err(|e| self.io(host_path, "stat", e))?;
        if !meta.file_type().is_file() {
            return Err(ImageError::NotRegularFile {
                image: self.shown.clone(),
                path: path.to_string(),
                kind: kind_of(&meta),
            });
        }
        let mut out = Vec::with_capacity(max.min(1 << 20));
        Read::take(file, u64::try_from(max).unwrap_or(u64::MAX))
            .read_to_end(&mut out)
            .map_err(|e| self.io(host_path, "read", e))?;
        Ok(out)
    }
}

fn kind_of(meta: &Metadata) -> FileKind {
    let t = meta.file_type();
    if t.is_dir() {
        FileKind::Dir
    } else if t.is_symlink() {
        FileKind::Symlink
    } else if t.is_char_device() {
        FileKind::Char
    } else if t.is_block_device() {
        FileKind::Block
    } else if t.is_fifo() {
        FileKind::Fifo
    } else if t.is_socket() {
        FileKind::Socket
    } else {
        FileKind::File
    }
}

fn info(meta: &Metadata) -> NodeInfo {
    NodeInfo {
        kind: kind_of(meta),
        mode: meta.mode() & 0o7777,
        uid: meta.uid(),
        gid: meta.gid(),
        size: meta.len(),
    }
}

impl Tree for DirSource {
    type Node = PathBuf;

    fn root(&self) -> Result<(PathBuf, NodeInfo), ImageError> {
        // The root itself may be a symlink to the rootfs (a user's choice), so stat, not lstat.
        let meta = fs::metadata(&self.root).map_err(|e| self.io(&self.root, "stat", e))?;
        Ok((self.root.clone(), info(&meta)))
    }

    fn child(
        &self,
        dir: &PathBuf,
        _dir_path: &str,
        name: &[u8],
    ) -> Result<Option<(PathBuf, NodeInfo)>, ImageError> {
        let host_path = dir.join(OsStr::from_bytes(name));
        match fs::symlink_metadata(&host_path) {
            Ok(meta) => Ok(Some((host_path, info(&meta)))),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
            Err(e) => Err(self.io(&host_path, "lstat", e)),
        }
    }

    fn link_target(&self, link: &PathBuf, _link_path: &str) -> Result<Vec<u8>, ImageError> {
        fs::read_link(link)
            .map(|target| target.into_os_string().into_vec())
            .map_err(|e| self.io(link, "readlink", e))
    }
}
