//! What the extraction pass hands to the data workers, and the attribute setting both share.
//!
//! Regular files are created by the worker that fills them: on this test machine's ext4 a
//! file creation costs most of a millisecond of kernel time, creations in *different*
//! directories run in parallel, and creations in one directory contend on its lock. So each
//! directory's files go to one worker, and a directory's final attributes wait until the last
//! entry in it exists ([`DirHandle::pending`]).

use std::ffi::{CStr, CString};
use std::fs::File;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use nix::errno::Errno;

use super::super::data::{Buffers, DataError, DataReader, Extent};
use super::error::Failure;
use super::xattr::Xattr;
use crate::sys::fsops;

/// Attributes to apply; `owner` is None when not running as root.
pub struct Meta {
    pub owner: Option<(u32, u32)>,
    pub mode: u32,
    pub mtime: i64,
    pub xattrs: Vec<Xattr>,
}

/// How attributes reach an entry.
pub enum Kind<'a> {
    /// An fd opened for reading or writing (files, directories).
    Open,
    /// An `O_PATH` fd of a node; chmod goes through the parent and name.
    Node(BorrowedFd<'a>, &'a CStr),
    /// An `O_PATH` fd of a symlink, whose mode cannot change.
    Symlink,
}

/// Owner first (chown clears setuid bits and `security.capability`), then mode, xattrs, mtime.
pub fn apply_meta(
    fd: BorrowedFd<'_>,
    kind: Kind<'_>,
    meta: &Meta,
) -> Result<(), (&'static str, Errno)> {
    if let Some((uid, gid)) = meta.owner {
        fsops::chown_fd(fd, uid, gid).map_err(|e| ("chown", e))?;
    }
    let o_path = match kind {
        Kind::Open => {
            fsops::chmod_fd(fd, meta.mode).map_err(|e| ("chmod", e))?;
            false
        }
        Kind::Node(dir, name) => {
            fsops::chmod_at_nofollow(dir, name, meta.mode).map_err(|e| ("chmod", e))?;
            true
        }
        Kind::Symlink => true,
    };
    for xattr in &meta.xattrs {
        fsops::set_xattr_fd(fd, &xattr.name, &xattr.value, o_path)
            .map_err(|e| ("set extended attribute", e))?;
    }
    fsops::set_mtime_fd(fd, meta.mtime).map_err(|e| ("set mtime", e))
}

pub fn create(op: &'static str, path: &str, errno: Errno) -> Failure {
    Failure::Create {
        op,
        path: path.to_string(),
        errno,
    }
}

/// A directory being filled: its fd, its final attributes, and how many holders (the
/// extraction pass while inside it, one per queued file job) still create entries in it.
pub struct DirHandle {
    pub fd: OwnedFd,
    pub path: String,
    pub meta: Meta,
    pub pending: AtomicUsize,
    /// Sequence number: picks the worker for all files of this directory.
    pub seq: usize,
}

/// A regular file to create (or already created) and fill.
pub struct FileJob {
    pub dir: Arc<DirHandle>,
    pub name: CString,
    /// Set when the extraction pass created the file itself (hard-link origins).
    pub file: Option<File>,
    pub extent: Extent,
    pub meta: Meta,
    pub path: String,
}

/// State shared by the extraction pass and the data workers.
pub struct Shared<'a> {
    pub reader: DataReader<'a>,
    pub written: AtomicU64,
    pub abort: AtomicBool,
    pub failure: Mutex<Option<Failure>>,
}

impl Shared<'_> {
    pub fn fail(&self, failure: Failure) {
        self.abort.store(true, Ordering::Relaxed);
        let mut slot = self.failure.lock().unwrap_or_else(|p| p.into_inner());
        // The first failure is the cause; later ones are usually its consequences.
        if slot.is_none() {
            *slot = Some(failure);
        }
    }

    pub fn aborted(&self) -> bool {
        self.abort.load(Ordering::Relaxed)
    }

    /// Creates the file (unless the pass did), releases its directory, then writes the data
    /// and the attributes (in that order: writing would clear setuid bits and file
    /// capabilities set before it).
    pub fn finish_file(&self, job: FileJob, bufs: &mut Buffers) {
        let FileJob {
            dir,
            name,
            file,
            extent,
            meta,
            path,
        } = job;
        let created = match file {
            Some(file) => Ok(file),
            None if self.aborted() => return self.release_dir(&dir),
            None => fsops::create_file_at(dir.fd.as_fd(), &name, 0o600)
                .map(File::from)
                .map_err(|e| create("create file", &path, e)),
        };
        // Creating was this job's last change to the directory.
        self.release_dir(&dir);
        let file = match created {
            Ok(file) => file,
            Err(failure) => return self.fail(failure),
        };
        if self.aborted() {
            return;
        }
        let result = match self
            .reader
            .write_file(&extent, &file, bufs, &self.written, &self.abort)
        {
            Ok(()) => apply_meta(file.as_fd(), Kind::Open, &meta)
                .map_err(|(op, errno)| create(op, &path, errno)),
            Err(DataError::Aborted) => return,
            Err(DataError::Image(what)) => Err(Failure::Data { path, what }),
            Err(DataError::Write(source)) => Err(Failure::Write { path, source }),
        };
        if let Err(failure) = result {
            self.fail(failure);
        }
    }

    /// Drops one hold on `dir`; the last one applies its attributes, once every entry in it
    /// exists (creating an entry changes a directory's mtime). After a failure it does not.
    pub fn release_dir(&self, dir: &DirHandle) {
        if dir.pending.fetch_sub(1, Ordering::AcqRel) != 1 || self.aborted() {
            return;
        }
        if let Err((op, errno)) = apply_meta(dir.fd.as_fd(), Kind::Open, &dir.meta) {
            let shown = if dir.path.is_empty() { "/" } else { &dir.path };
            self.fail(create(op, shown, errno));
        }
    }
}
