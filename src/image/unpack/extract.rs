//! The second pass: create what the plan lists, below the destination's fd. Directories are
//! created 0700 and entered through `O_NOFOLLOW` fds; symlinks and nodes are created here,
//! regular files by a worker (jobs.rs), always with `O_EXCL`/`mknodat` semantics that never
//! replace or follow an entry. A directory gets its final owner, mode, xattrs and mtime when
//! the last entry in it exists.

use std::collections::{BTreeMap, HashMap};
use std::ffi::{CStr, CString};
use std::fs::File;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use backhand::v4::inode::InodeInner;
use backhand::Inode;

use super::super::inode::InodeRef;
use super::super::squash::{extent, SquashSource};
use super::super::walk::{check_target, FileKind, NodeInfo};
use super::error::Failure;
use super::jobs::{apply_meta, create, DirHandle, FileJob, Kind, Meta, Shared};
use super::scan::{Plan, Step};
use super::xattr::XattrTable;
use super::{Skip, SkipKind};
use crate::sys::fsops;

/// The first name of a hard-linked file, kept until its last link is made.
struct Origin {
    dir: Arc<DirHandle>,
    name: CString,
    left: u32,
}

#[derive(Debug, Default, Clone)]
pub struct Counts {
    pub dirs: u64,
    pub files: u64,
    pub symlinks: u64,
    pub hard_links: u64,
    pub nodes: u64,
}

pub struct Extractor<'a> {
    pub sq: &'a SquashSource,
    pub xattrs: &'a XattrTable,
    pub privileged: bool,
    pub counts: Counts,
    /// Entries created so far (for progress and for the note of a partial tree).
    pub done: u64,
    skips: BTreeMap<SkipKind, Skip>,
    origins: HashMap<u32, Origin>,
    dirs: usize,
}

impl<'a> Extractor<'a> {
    pub fn new(sq: &'a SquashSource, xattrs: &'a XattrTable, privileged: bool) -> Self {
        Extractor {
            sq,
            xattrs,
            privileged,
            counts: Counts::default(),
            done: 0,
            skips: BTreeMap::new(),
            origins: HashMap::new(),
            dirs: 0,
        }
    }

    pub fn skipped(&self) -> Vec<Skip> {
        self.skips.values().cloned().collect()
    }

    pub fn run(
        &mut self,
        plan: &Plan,
        root: OwnedFd,
        shared: &Shared<'_>,
        submit: &mut dyn FnMut(FileJob) -> Result<(), Failure>,
        tick: &mut dyn FnMut(u64),
    ) -> Result<(), Failure> {
        let root_at = self.sq.root().at;
        let mut stack = vec![self.dir_handle(root, root_at, String::new())?];
        let result = self.steps(plan, &mut stack, shared, submit, tick);
        if result.is_err() {
            shared.abort.store(true, Ordering::Relaxed);
        }
        // Every hold is dropped, on failure too. The root goes last: its mtime changes with
        // every entry created in it.
        while let Some(dir) = stack.pop() {
            shared.release_dir(&dir);
        }
        self.origins.clear();
        result
    }

    fn steps(
        &mut self,
        plan: &Plan,
        stack: &mut Vec<Arc<DirHandle>>,
        shared: &Shared<'_>,
        submit: &mut dyn FnMut(FileJob) -> Result<(), Failure>,
        tick: &mut dyn FnMut(u64),
    ) -> Result<(), Failure> {
        for step in &plan.steps {
            if shared.aborted() {
                return Ok(());
            }
            let Some(top) = stack.last().map(Arc::clone) else {
                return Err(self.data("/", "directory steps out of balance"));
            };
            match step {
                Step::Dir { name, at, .. } => {
                    let path = child_path(&top.path, name);
                    let dir = top.fd.as_fd();
                    fsops::mkdir_at(dir, name, 0o700).map_err(|e| create("mkdir", &path, e))?;
                    let fd = fsops::open_dir_at(dir, name).map_err(|e| create("open", &path, e))?;
                    self.counts.dirs += 1;
                    stack.push(self.dir_handle(fd, *at, path)?);
                }
                Step::Leaf { name, inode, at } => {
                    let refs = plan.refs.get(inode).copied().unwrap_or(1);
                    self.leaf(&top, name, (*inode, *at), refs, submit)?;
                }
                Step::Up => {
                    if let Some(dir) = stack.pop() {
                        shared.release_dir(&dir);
                    }
                }
            }
            self.done += 1;
            tick(self.done);
        }
        if stack.len() != 1 {
            return Err(self.data("/", "directory steps out of balance"));
        }
        Ok(())
    }

    fn dir_handle(
        &mut self,
        fd: OwnedFd,
        at: InodeRef,
        path: String,
    ) -> Result<Arc<DirHandle>, Failure> {
        let shown = if path.is_empty() { "/" } else { path.as_str() }.to_string();
        let (inode, info) = self.lookup(at, &shown)?;
        let meta = self.meta(&inode, &info, &shown)?;
        self.dirs += 1;
        Ok(Arc::new(DirHandle {
            fd,
            path,
            meta,
            pending: AtomicUsize::new(1),
            seq: self.dirs,
        }))
    }

    fn leaf(
        &mut self,
        top: &Arc<DirHandle>,
        name: &CString,
        (number, at): (u32, InodeRef),
        refs: u32,
        submit: &mut dyn FnMut(FileJob) -> Result<(), Failure>,
    ) -> Result<(), Failure> {
        let path = child_path(&top.path, name);
        let dir = top.fd.as_fd();
        let (inode, info) = self.lookup(at, &path)?;
        match info.kind {
            FileKind::File => {
                // Hard links only ever point at a file this pass created itself.
                if let Some(origin) = self.origins.get_mut(&number) {
                    fsops::link_at(origin.dir.fd.as_fd(), &origin.name, dir, name)
                        .map_err(|e| create("hard link", &path, e))?;
                    origin.left -= 1;
                    if origin.left == 0 {
                        self.origins.remove(&number);
                    }
                    self.counts.hard_links += 1;
                    return Ok(());
                }
                // A hard-link origin is created here, so that later links find it; other files
                // are created by the worker that fills them.
                let file = if refs > 1 {
                    let fd = fsops::create_file_at(dir, name, 0o600)
                        .map_err(|e| create("create file", &path, e))?;
                    self.origins.insert(
                        number,
                        Origin {
                            dir: Arc::clone(top),
                            name: name.clone(),
                            left: refs - 1,
                        },
                    );
                    Some(File::from(fd))
                } else {
                    None
                };
                let extent = extent(&inode.inner).ok_or_else(|| self.data(&path, "not a file"))?;
                let meta = self.meta(&inode, &info, &path)?;
                self.counts.files += 1;
                top.pending.fetch_add(1, Ordering::AcqRel);
                submit(FileJob {
                    dir: Arc::clone(top),
                    name: name.clone(),
                    file,
                    extent,
                    meta,
                    path,
                })
            }
            FileKind::Symlink => {
                let target = match &inode.inner {
                    InodeInner::BasicSymlink(s) => &s.target_path,
                    InodeInner::ExtendedSymlink(s) => &s.target_path,
                    _ => return Err(self.data(&path, "not a symlink")),
                };
                check_target(target).map_err(|what| self.data(&path, what))?;
                let target = CString::new(target.as_slice())
                    .map_err(|_| self.data(&path, "symlink target contains a NUL byte"))?;
                // The link is created, never followed: nothing below opens through it.
                fsops::symlink_at(&target, dir, name).map_err(|e| create("symlink", &path, e))?;
                let fd = fsops::open_path_at(dir, name).map_err(|e| create("open", &path, e))?;
                let meta = self.meta(&inode, &info, &path)?;
                self.counts.symlinks += 1;
                apply_meta(fd.as_fd(), Kind::Symlink, &meta).map_err(|(op, e)| create(op, &path, e))
            }
            FileKind::Char | FileKind::Block | FileKind::Fifo | FileKind::Socket => {
                // Non-regular inodes with several names get one node each: linking them would
                // add nothing a container can observe, and keeps links to regular files only.
                let (type_bits, dev) = match (info.kind, device_number(&inode.inner)) {
                    (FileKind::Char, Some(dev)) => (libc::S_IFCHR, dev),
                    (FileKind::Block, Some(dev)) => (libc::S_IFBLK, dev),
                    (FileKind::Fifo, _) => (libc::S_IFIFO, 0),
                    (FileKind::Socket, _) => (libc::S_IFSOCK, 0),
                    _ => return Err(self.data(&path, "device inode without a device number")),
                };
                let device = type_bits == libc::S_IFCHR || type_bits == libc::S_IFBLK;
                if device && !self.privileged {
                    self.skip(SkipKind::DeviceNode, &path);
                    return Ok(());
                }
                fsops::mknod_at(dir, name, type_bits | 0o600, dev)
                    .map_err(|e| create("mknod", &path, e))?;
                let fd = fsops::open_path_at(dir, name).map_err(|e| create("open", &path, e))?;
                let meta = self.meta(&inode, &info, &path)?;
                self.counts.nodes += 1;
                apply_meta(fd.as_fd(), Kind::Node(dir, name), &meta)
                    .map_err(|(op, e)| create(op, &path, e))
            }
            FileKind::Dir => Err(self.data(&path, "directory listed as a leaf")),
        }
    }

    /// The inode at `at` again (the scan read it first; its block is cached).
    fn lookup(&self, at: InodeRef, path: &str) -> Result<(Inode, NodeInfo), Failure> {
        let inode = self.sq.node_at(at, path)?.inode;
        let info = self.sq.info(&inode, path)?;
        Ok((inode, info))
    }

    fn meta(&mut self, inode: &Inode, info: &NodeInfo, path: &str) -> Result<Meta, Failure> {
        let mut mode = info.mode;
        let owner = if self.privileged {
            Some((info.uid, info.gid))
        } else {
            self.skip(SkipKind::Ownership, path);
            // Set-id bits on a copy owned by the caller would grant the caller's rights.
            if mode & 0o6000 != 0 && info.kind != FileKind::Dir {
                mode &= !0o6000;
                self.skip(SkipKind::SetIdBits, path);
            }
            None
        };
        let mut xattrs = self
            .xattrs
            .get(xattr_index(&inode.inner))
            .map_err(|what| self.data(path, &what))?;
        if !self.privileged {
            let before = xattrs.len();
            xattrs.retain(|x| x.name.to_bytes().starts_with(b"user."));
            if xattrs.len() < before {
                self.skip(SkipKind::PrivilegedXattr, path);
            }
        }
        Ok(Meta {
            owner,
            mode,
            mtime: i64::from(inode.header.mtime),
            xattrs,
        })
    }

    fn skip(&mut self, kind: SkipKind, path: &str) {
        self.skips
            .entry(kind)
            .or_insert_with(|| Skip {
                kind,
                count: 0,
                example: path.to_string(),
            })
            .count += 1;
    }

    fn data(&self, path: &str, what: &str) -> Failure {
        Failure::Data {
            path: path.to_string(),
            what: what.to_string(),
        }
    }
}

fn child_path(dir: &str, name: &CStr) -> String {
    format!("{dir}/{}", String::from_utf8_lossy(name.to_bytes()))
}

fn xattr_index(inner: &InodeInner) -> u32 {
    match inner {
        InodeInner::ExtendedDirectory(d) => d.xattr_index,
        InodeInner::ExtendedFile(f) => f.xattr_index,
        InodeInner::ExtendedSymlink(s) => s.xattr_index,
        InodeInner::ExtendedBlockDevice(d) | InodeInner::ExtendedCharacterDevice(d) => {
            d.xattr_index
        }
        InodeInner::ExtendedNamedPipe(n) | InodeInner::ExtendedSocket(n) => n.xattr_index,
        _ => u32::MAX,
    }
}

/// SquashFS stores device numbers in the kernel's 32-bit "new" encoding
/// (`new_encode_dev`, include/linux/kdev_t.h): minor low byte, major, minor high bits.
fn device_number(inner: &InodeInner) -> Option<u64> {
    let encoded = match inner {
        InodeInner::BasicBlockDevice(d) | InodeInner::BasicCharacterDevice(d) => d.device_number,
        InodeInner::ExtendedBlockDevice(d) | InodeInner::ExtendedCharacterDevice(d) => {
            d.device_number
        }
        _ => return None,
    };
    let major = (encoded & 0xfff00) >> 8;
    let minor = (encoded & 0xff) | ((encoded >> 12) & 0xfff00);
    Some(libc::makedev(major, minor))
}
