//! The second pass: create what the plan lists, below the destination's fd. Directories are
//! created 0700 and entered through `O_NOFOLLOW` fds; files are created with `O_EXCL`; a
//! directory gets its final owner, mode, xattrs and mtime when the pass leaves it, after its
//! last entry was created (file data written later by a worker does not change a directory).
//! Regular file data goes to `submit`, which writes it inline or hands it to a worker.

use std::collections::{BTreeMap, HashMap};
use std::ffi::{CStr, CString};
use std::fs::File;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;

use backhand::v4::inode::InodeInner;
use backhand::Inode;
use nix::errno::Errno;

use super::super::squash::SquashSource;
use super::super::walk::{check_target, FileKind, NodeInfo};
use super::data::{Buffers, DataError, DataReader, Extent};
use super::error::Failure;
use super::scan::{Plan, Step};
use super::xattr::{Xattr, XattrTable};
use super::{Skip, SkipKind};
use crate::sys::fsops;

/// State shared with the data workers.
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

    /// Writes a file's data and then its attributes (in that order: writing would clear
    /// setuid bits and file capabilities set before it).
    pub fn finish_file(&self, job: FileJob, bufs: &mut Buffers) {
        if self.abort.load(Ordering::Relaxed) {
            return;
        }
        let written =
            self.reader
                .write_file(&job.extent, &job.file, bufs, &self.written, &self.abort);
        let result = match written {
            Ok(()) => apply_meta(job.file.as_fd(), Kind::Open, &job.meta).map_err(|(op, errno)| {
                Failure::Create {
                    op,
                    path: job.path.clone(),
                    errno,
                }
            }),
            Err(DataError::Aborted) => return,
            Err(DataError::Image(what)) => Err(Failure::Data {
                path: job.path.clone(),
                what,
            }),
            Err(DataError::Write(source)) => Err(Failure::Write {
                path: job.path.clone(),
                source,
            }),
        };
        if let Err(failure) = result {
            self.fail(failure);
        }
    }
}

/// A regular file created empty, whose data and attributes are still to be written.
pub struct FileJob {
    pub file: File,
    pub extent: Extent,
    pub meta: Meta,
    pub path: String,
}

/// Attributes to apply; `owner` is None when not running as root.
pub struct Meta {
    owner: Option<(u32, u32)>,
    mode: u32,
    mtime: i64,
    xattrs: Vec<Xattr>,
}

/// How attributes reach an entry.
enum Kind<'a> {
    /// An fd opened for reading or writing (files, directories).
    Open,
    /// An `O_PATH` fd of a node; chmod goes through the parent and name.
    Node(BorrowedFd<'a>, &'a CStr),
    /// An `O_PATH` fd of a symlink, whose mode cannot change.
    Symlink,
}

/// Owner first (chown clears setuid bits and `security.capability`), then mode, xattrs, mtime.
fn apply_meta(
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

struct Frame {
    fd: Rc<OwnedFd>,
    inode: u32,
    path: String,
}

/// The first name of a hard-linked file, kept until its last link is made.
struct Origin {
    dir: Rc<OwnedFd>,
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
        }
    }

    pub fn skipped(&self) -> Vec<Skip> {
        self.skips.values().cloned().collect()
    }

    pub fn run(
        &mut self,
        plan: &Plan,
        root: OwnedFd,
        abort: &AtomicBool,
        submit: &mut dyn FnMut(FileJob) -> Result<(), Failure>,
        tick: &mut dyn FnMut(u64),
    ) -> Result<(), Failure> {
        let root_number = self.sq.root_inode().header.inode_number;
        let mut stack = vec![Frame {
            fd: Rc::new(root),
            inode: root_number,
            path: String::new(),
        }];
        for step in &plan.steps {
            if abort.load(Ordering::Relaxed) {
                break;
            }
            let Some(top) = stack.last() else {
                return Err(self.data("/", "directory steps out of balance"));
            };
            match step {
                Step::Dir { name, inode } => {
                    let path = child_path(&top.path, name);
                    let dir = top.fd.as_fd();
                    fsops::mkdir_at(dir, name, 0o700).map_err(|e| create("mkdir", &path, e))?;
                    let fd = fsops::open_dir_at(dir, name).map_err(|e| create("open", &path, e))?;
                    self.counts.dirs += 1;
                    stack.push(Frame {
                        fd: Rc::new(fd),
                        inode: *inode,
                        path,
                    });
                }
                Step::Leaf { name, inode } => {
                    let refs = plan.refs.get(inode).copied().unwrap_or(1);
                    self.leaf(top, name, *inode, refs, submit)?;
                }
                Step::Up => {
                    let Some(frame) = stack.pop() else {
                        return Err(self.data("/", "directory steps out of balance"));
                    };
                    self.finish_dir(&frame)?;
                }
            }
            self.done += 1;
            tick(self.done);
        }
        if abort.load(Ordering::Relaxed) {
            return Ok(());
        }
        // The root last: its mtime changes with every entry created in it.
        match stack.pop() {
            Some(root) if stack.is_empty() => self.finish_dir(&root),
            _ => Err(self.data("/", "directory steps out of balance")),
        }
    }

    fn finish_dir(&mut self, frame: &Frame) -> Result<(), Failure> {
        let shown = if frame.path.is_empty() {
            "/"
        } else {
            &frame.path
        };
        let (inode, info) = self.lookup(frame.inode, shown)?;
        let meta = self.meta(&inode, &info, shown)?;
        apply_meta(frame.fd.as_fd(), Kind::Open, &meta).map_err(|(op, e)| create(op, shown, e))
    }

    fn leaf(
        &mut self,
        top: &Frame,
        name: &CString,
        number: u32,
        refs: u32,
        submit: &mut dyn FnMut(FileJob) -> Result<(), Failure>,
    ) -> Result<(), Failure> {
        let path = child_path(&top.path, name);
        let dir = top.fd.as_fd();
        let (inode, info) = self.lookup(number, &path)?;
        match info.kind {
            FileKind::File => {
                // Hard links only ever point at a file this pass created itself.
                if let Some(origin) = self.origins.get_mut(&number) {
                    fsops::link_at(origin.dir.as_fd(), &origin.name, dir, name)
                        .map_err(|e| create("hard link", &path, e))?;
                    origin.left -= 1;
                    if origin.left == 0 {
                        self.origins.remove(&number);
                    }
                    self.counts.hard_links += 1;
                    return Ok(());
                }
                let fd = fsops::create_file_at(dir, name, 0o600)
                    .map_err(|e| create("create file", &path, e))?;
                if refs > 1 {
                    self.origins.insert(
                        number,
                        Origin {
                            dir: Rc::clone(&top.fd),
                            name: name.clone(),
                            left: refs - 1,
                        },
                    );
                }
                let extent = extent(&inode.inner).ok_or_else(|| self.data(&path, "not a file"))?;
                let meta = self.meta(&inode, &info, &path)?;
                self.counts.files += 1;
                submit(FileJob {
                    file: File::from(fd),
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

    fn lookup(&self, number: u32, path: &str) -> Result<(Inode, NodeInfo), Failure> {
        let inode = self
            .sq
            .inode(number)
            .ok_or_else(|| self.data(path, &format!("inode {number} not in the inode table")))?;
        let info = self.sq.info(inode, path)?;
        Ok((inode.clone(), info))
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

fn create(op: &'static str, path: &str, errno: Errno) -> Failure {
    Failure::Create {
        op,
        path: path.to_string(),
        errno,
    }
}

fn child_path(dir: &str, name: &CStr) -> String {
    format!("{dir}/{}", String::from_utf8_lossy(name.to_bytes()))
}

fn extent(inner: &InodeInner) -> Option<Extent> {
    match inner {
        InodeInner::BasicFile(f) => Some(Extent {
            blocks_start: u64::from(f.blocks_start),
            block_sizes: f.block_sizes.clone(),
            frag_index: f.frag_index,
            block_offset: f.block_offset,
            file_size: u64::from(f.file_size),
        }),
        InodeInner::ExtendedFile(f) => Some(Extent {
            blocks_start: f.blocks_start,
            block_sizes: f.block_sizes.clone(),
            frag_index: f.frag_index,
            block_offset: f.block_offset,
            file_size: f.file_size,
        }),
        _ => None,
    }
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
