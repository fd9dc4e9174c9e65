//! Writes archive entries below one directory fd (the root of rootrun's
//! throwaway tmpfs) with the rules of `rootrun unpack`: a name is a
//! relative path of plain components (no `..`, not absolute), every parent
//! is opened with `O_NOFOLLOW` one component at a time (so no entry is ever
//! written through a symlink the archive made), and a hard link must name
//! an entry already in the tree, found the same way (so none links out).
//! Calls are the fd-relative ones of `sys::fsops`.

use std::ffi::CString;
use std::io::{self, Read};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use nix::errno::Errno;

use crate::image::unpack::{apply_meta, Meta, MetaKind};
use crate::sys::fsops;

/// Linux's limits: a name component, a whole path (limits.h).
const NAME_MAX: usize = 255;
pub const PATH_MAX: usize = 4096;

/// What one archive entry is.
pub enum Body<'r> {
    Dir,
    File(&'r mut dyn Read),
    Symlink(Vec<u8>),
    /// A hard link to an earlier entry (its archive name).
    HardLink(Vec<u8>),
    /// A device node, FIFO or socket: the S_IF* type bits and the device number.
    Node {
        type_bits: u32,
        dev: u64,
    },
}

pub struct Entry {
    /// As the archive spells it.
    pub name: Vec<u8>,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub mtime: i64,
    pub xattrs: Vec<crate::image::unpack::Xattr>,
}

/// Why an entry was refused or could not be written: one line.
pub type Refusal = String;

/// Where an archive's reader hands its entries, one at a time: the
/// [`Writer`], or `check::Checker`, which writes nothing (fuzzing).
pub trait Sink {
    /// One entry; a later one of the same name replaces an earlier
    /// non-directory, as tar and the kernel's initramfs unpacker do.
    fn add(&mut self, entry: &Entry, body: Body<'_>) -> Result<(), Refusal>;
}

pub struct Writer {
    root: OwnedFd,
    pub entries: u64,
    pub bytes: u64,
    max_entries: u64,
    /// Directories and their mtimes, set by `finish` once nothing more is
    /// created in them.
    dir_times: Vec<(Vec<u8>, i64)>,
}

/// A checked name: its parent components and its last one (None: the root).
pub(super) struct Name {
    pub parents: Vec<CString>,
    pub leaf: Option<CString>,
}

/// `name` checked as the writer takes it: a relative path of plain
/// components, within Linux's limits.
pub(super) fn split(name: &[u8]) -> Result<Name, Refusal> {
    let shown = String::from_utf8_lossy(name);
    if name.len() > PATH_MAX {
        return Err(format!(
            "an entry name of {} bytes (more than {PATH_MAX})",
            name.len()
        ));
    }
    if name.starts_with(b"/") {
        return Err(format!("{shown:?}: an absolute name"));
    }
    let mut parts = Vec::new();
    for part in name.split(|&b| b == b'/') {
        match part {
            b"" | b"." => {}
            b".." => return Err(format!("{shown:?}: a name with \"..\" in it")),
            part if part.len() > NAME_MAX => {
                return Err(format!(
                    "{shown:?}: a component longer than {NAME_MAX} bytes"
                ))
            }
            part => parts.push(
                CString::new(part).map_err(|_| format!("{shown:?}: a NUL byte in the name"))?,
            ),
        }
    }
    let leaf = parts.pop();
    Ok(Name {
        parents: parts,
        leaf,
    })
}

impl Writer {
    pub fn new(root: OwnedFd, max_entries: u64) -> Writer {
        Writer {
            root,
            entries: 0,
            bytes: 0,
            max_entries,
            dir_times: Vec::new(),
        }
    }

    /// Sets the directories' mtimes, deepest last-made first; a directory
    /// that a later entry replaced keeps the time it has.
    pub fn finish(&mut self) {
        for (name, mtime) in std::mem::take(&mut self.dir_times).into_iter().rev() {
            let Ok(split) = split(&name) else { continue };
            let shown = String::from_utf8_lossy(&name);
            let dir = match split.leaf.as_deref() {
                None => self.root.try_clone().ok(),
                Some(leaf) => self
                    .parent(&split, &shown)
                    .ok()
                    .and_then(|parent| fsops::open_dir_at(parent.as_fd(), leaf).ok()),
            };
            if let Some(dir) = dir {
                let _ = fsops::set_mtime_fd(dir.as_fd(), mtime);
            }
        }
    }

    /// Opens the parent directory of `name`, creating missing ones (0755,
    /// root's, as tar does for names whose directories it has not seen).
    fn parent(&self, name: &Name, shown: &str) -> Result<OwnedFd, Refusal> {
        let mut dir = self.root.try_clone().map_err(|e| format!("{shown}: {e}"))?;
        for (depth, part) in name.parents.iter().enumerate() {
            let next = match fsops::open_dir_at(dir.as_fd(), part) {
                Err(Errno::ENOENT) => fsops::mkdir_at(dir.as_fd(), part, 0o755)
                    .and_then(|()| fsops::open_dir_at(dir.as_fd(), part)),
                other => other,
            };
            dir = next.map_err(|e| match e {
                Errno::ELOOP | Errno::ENOTDIR => {
                    let prefix: Vec<_> = name.parents[..=depth]
                        .iter()
                        .map(|c| c.to_string_lossy())
                        .collect();
                    format!(
                        "{shown:?} goes through {:?}, which the archive made a symbolic link \
                         or a file",
                        prefix.join("/")
                    )
                }
                e => format!("{shown}: open its directory: {e}"),
            })?;
        }
        Ok(dir)
    }

    /// Removes an earlier non-directory of the same name.
    fn clear(
        &self,
        dir: BorrowedFd<'_>,
        leaf: &std::ffi::CStr,
        shown: &str,
    ) -> Result<(), Refusal> {
        match fsops::unlink_at(dir, leaf, false) {
            Ok(()) | Err(Errno::ENOENT) => Ok(()),
            Err(Errno::EISDIR) => Err(format!(
                "{shown:?}: a non-directory entry over an earlier directory"
            )),
            Err(e) => Err(format!("{shown}: replace the earlier entry: {}", e.desc())),
        }
    }

    fn hard_link(
        &self,
        target: &[u8],
        dir: BorrowedFd<'_>,
        leaf: &std::ffi::CStr,
        shown: &str,
    ) -> Result<(), Refusal> {
        let shown_target = String::from_utf8_lossy(target).into_owned();
        let target_name =
            split(target).map_err(|why| format!("{shown:?} is a hard link to {why}"))?;
        let Some(target_leaf) = target_name.leaf.as_deref() else {
            return Err(format!("{shown:?} is a hard link to the root directory"));
        };
        let target_dir = self.parent(&target_name, &shown_target)?;
        fsops::link_at(target_dir.as_fd(), target_leaf, dir, leaf).map_err(|e| match e {
            Errno::ENOENT => format!(
                "{shown:?} is a hard link to {shown_target:?}, which is not in the archive \
                 before it"
            ),
            e => format!("{shown}: hard link to {shown_target}: {}", e.desc()),
        })
    }
}

impl Sink for Writer {
    fn add(&mut self, entry: &Entry, body: Body<'_>) -> Result<(), Refusal> {
        self.entries += 1;
        if self.entries > self.max_entries {
            return Err(format!(
                "more than {} entries; refused (a hostile or corrupt archive)",
                self.max_entries
            ));
        }
        let shown = String::from_utf8_lossy(&entry.name).into_owned();
        let name = split(&entry.name)?;
        let meta = Meta {
            owner: Some((entry.uid, entry.gid)),
            mode: entry.mode & 0o7777,
            mtime: entry.mtime,
            xattrs: entry.xattrs.clone(),
        };
        let failed = |op: &str, e: Errno| format!("{shown}: {op}: {}", e.desc());
        let dir = self.parent(&name, &shown)?;
        if matches!(body, Body::Dir) {
            self.dir_times.push((entry.name.clone(), entry.mtime));
        }
        let Some(leaf) = name.leaf.as_deref() else {
            // The root itself ("." or "./"): its owner and mode only.
            if !matches!(body, Body::Dir) {
                return Err(format!("{shown:?}: the root entry is not a directory"));
            }
            return apply_meta(self.root.as_fd(), MetaKind::Open, &meta)
                .map_err(|(op, e)| failed(op, e));
        };
        if !matches!(body, Body::Dir) {
            self.clear(dir.as_fd(), leaf, &shown)?;
        }
        match body {
            Body::Dir => {
                match fsops::mkdir_at(dir.as_fd(), leaf, 0o700) {
                    Ok(()) | Err(Errno::EEXIST) => {}
                    Err(e) => return Err(failed("mkdir", e)),
                }
                let fd = fsops::open_dir_at(dir.as_fd(), leaf).map_err(|e| match e {
                    Errno::ELOOP | Errno::ENOTDIR => {
                        format!("{shown:?}: a directory entry over an earlier non-directory")
                    }
                    e => failed("open", e),
                })?;
                apply_meta(fd.as_fd(), MetaKind::Open, &meta).map_err(|(op, e)| failed(op, e))
            }
            Body::File(data) => {
                let fd = fsops::create_file_at(dir.as_fd(), leaf, 0o600)
                    .map_err(|e| failed("create", e))?;
                let mut file = std::fs::File::from(fd);
                let copied = io::copy(data, &mut file).map_err(|e| match e.raw_os_error() {
                    Some(libc::ENOSPC) => format!(
                        "{shown}: the tmpfs is full after {} bytes (give a larger --tmpfs-size)",
                        self.bytes
                    ),
                    _ => format!("{shown}: {e}"),
                })?;
                self.bytes += copied;
                apply_meta(file.as_fd(), MetaKind::Open, &meta).map_err(|(op, e)| failed(op, e))
            }
            Body::Symlink(target) => {
                let target = CString::new(target)
                    .map_err(|_| format!("{shown:?}: a NUL byte in the link target"))?;
                fsops::symlink_at(&target, dir.as_fd(), leaf).map_err(|e| failed("symlink", e))?;
                let fd = fsops::open_path_at(dir.as_fd(), leaf).map_err(|e| failed("open", e))?;
                apply_meta(fd.as_fd(), MetaKind::Symlink, &meta).map_err(|(op, e)| failed(op, e))
            }
            Body::HardLink(target) => self.hard_link(&target, dir.as_fd(), leaf, &shown),
            Body::Node { type_bits, dev } => {
                fsops::mknod_at(dir.as_fd(), leaf, type_bits | 0o600, dev)
                    .map_err(|e| failed("mknod", e))?;
                let fd = fsops::open_path_at(dir.as_fd(), leaf).map_err(|e| failed("open", e))?;
                apply_meta(fd.as_fd(), MetaKind::Node(dir.as_fd(), leaf), &meta)
                    .map_err(|(op, e)| failed(op, e))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A Writer over a fresh directory under the system's temporary one.
    fn writer(test: &str, max_entries: u64) -> (Writer, std::path::PathBuf) {
        let dir =
            std::env::temp_dir().join(format!("rootrun-writer-{test}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let c_dir = CString::new(dir.as_os_str().as_encoded_bytes()).unwrap();
        let root = fsops::open_dir_path(&c_dir).unwrap();
        (Writer::new(root, max_entries), dir)
    }

    fn entry(name: &str) -> Entry {
        Entry {
            name: name.as_bytes().to_vec(),
            mode: 0o644,
            uid: nix::unistd::geteuid().as_raw(),
            gid: nix::unistd::getegid().as_raw(),
            mtime: 0,
            xattrs: Vec::new(),
        }
    }

    #[test]
    fn entries_land_below_the_root_and_symlinks_are_never_written_through() {
        let (mut w, dir) = writer("through", 100);
        let outside = dir.with_extension("outside");
        std::fs::create_dir_all(&outside).unwrap();
        w.add(&entry("a/b/file"), Body::File(&mut &b"one"[..]))
            .unwrap();
        w.add(&entry("a/b/file"), Body::File(&mut &b"two"[..]))
            .unwrap();
        assert_eq!(std::fs::read(dir.join("a/b/file")).unwrap(), b"two");
        w.add(
            &entry("link"),
            Body::Symlink(outside.as_os_str().as_encoded_bytes().to_vec()),
        )
        .unwrap();
        let err = w
            .add(&entry("link/x"), Body::File(&mut &b"x"[..]))
            .unwrap_err();
        assert!(err.contains("symbolic link"), "{err}");
        w.add(&entry("hard"), Body::HardLink(b"a/b/file".to_vec()))
            .unwrap();
        let err = w
            .add(&entry("h2"), Body::HardLink(b"link/passwd".to_vec()))
            .unwrap_err();
        assert!(err.contains("symbolic link"), "{err}");
        let err = w.add(&entry("a"), Body::File(&mut &b"x"[..])).unwrap_err();
        assert!(err.contains("earlier directory"), "{err}");
        assert!(std::fs::read_dir(&outside).unwrap().next().is_none());
        let _ = std::fs::remove_dir_all(&dir);
        let _ = std::fs::remove_dir_all(&outside);
    }

    #[test]
    fn directories_keep_their_mtime_after_their_entries_are_written() {
        use std::os::unix::fs::MetadataExt;
        let (mut w, dir) = writer("mtime", 100);
        let mut d = entry("d");
        d.mode = 0o755;
        d.mtime = 1_000_000;
        w.add(&d, Body::Dir).unwrap();
        w.add(&entry("d/f"), Body::File(&mut &b"x"[..])).unwrap();
        w.finish();
        assert_eq!(std::fs::metadata(dir.join("d")).unwrap().mtime(), 1_000_000);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn the_entry_count_is_bounded() {
        let (mut w, dir) = writer("bound", 3);
        for name in ["a", "b", "c"] {
            w.add(&entry(name), Body::Dir).unwrap();
        }
        let err = w.add(&entry("d"), Body::Dir).unwrap_err();
        assert!(err.contains("more than 3 entries"), "{err}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn names_are_relative_paths_of_plain_components() {
        let ok = |n: &[u8]| split(n).map(|n| (n.parents.len(), n.leaf.is_some()));
        assert_eq!(ok(b"./bin/sh"), Ok((1, true)));
        assert_eq!(ok(b"bin//sh/"), Ok((1, true)));
        assert_eq!(ok(b"."), Ok((0, false)));
        assert_eq!(ok(b"./"), Ok((0, false)));
        assert!(split(b"../escape").is_err());
        assert!(split(b"a/../../b").is_err());
        assert!(split(b"/etc/passwd").is_err());
        assert!(split(&[b'a'; 300]).is_err());
        assert!(split(&vec![b'a'; PATH_MAX + 1]).is_err());
    }
}
