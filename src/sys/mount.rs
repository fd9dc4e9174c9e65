//! Mount guards: each mount is undone (lazily, MNT_DETACH) when its guard
//! drops, in reverse order of creation by construction of the owners.

use std::ffi::CString;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

// open_tree(2), mount_setattr(2) and move_mount(2) have no wrappers in nix
// 0.32: the calls go through libc::syscall with libc's definitions.
use libc::{
    mount_attr, MOUNT_ATTR_IDMAP, MOUNT_ATTR_NODEV, MOUNT_ATTR_NOSUID, MOUNT_ATTR_RDONLY,
    MOVE_MOUNT_F_EMPTY_PATH, MOVE_MOUNT_T_EMPTY_PATH, OPEN_TREE_CLONE,
};
use nix::errno::Errno;
use nix::mount::{mount, umount2, MntFlags, MsFlags};

use super::SysError;

/// A mount point that rootrun created; unmounted on drop.
#[derive(Debug)]
pub struct Mount {
    target: PathBuf,
}

impl Drop for Mount {
    fn drop(&mut self) {
        // Errors are ignored: the private namespace disappears with rootrun
        // anyway, and a drop must never panic. NOFOLLOW: a target inside the
        // guest's root may have become a symlink meanwhile.
        let _ = umount2(
            &self.target,
            MntFlags::MNT_DETACH | MntFlags::UMOUNT_NOFOLLOW,
        );
    }
}

fn do_mount(
    what: &'static str,
    source: &Path,
    target: &Path,
    fstype: &str,
    flags: MsFlags,
    data: Option<&str>,
) -> Result<Mount, SysError> {
    mount(Some(source), target, Some(fstype), flags, data)
        .map_err(|e| SysError::new(what, target, e))?;
    Ok(Mount {
        target: target.to_path_buf(),
    })
}

/// A private tmpfs whose root has `mode`.
pub fn tmpfs(target: &Path, mode: u32, size: Option<&str>) -> Result<Mount, SysError> {
    let data = match size {
        Some(size) => format!("mode={mode:04o},size={size}"),
        None => format!("mode={mode:04o}"),
    };
    do_mount(
        "mount tmpfs on",
        Path::new("tmpfs"),
        target,
        "tmpfs",
        MsFlags::MS_NODEV | MsFlags::MS_NOSUID,
        Some(&data),
    )
}

/// A SquashFS from a (read-only) block device: `ro,nodev,nosuid`.
pub fn squashfs(device: &Path, target: &Path) -> Result<Mount, SysError> {
    do_mount(
        "mount squashfs on",
        device,
        target,
        "squashfs",
        MsFlags::MS_RDONLY | MsFlags::MS_NODEV | MsFlags::MS_NOSUID,
        None,
    )
}

/// A writable overlay; `nodev` so that device nodes in the image cannot reach
/// the host's devices (nodev on the lower layer alone does not stop that).
pub fn overlay(lower: &Path, upper: &Path, work: &Path, target: &Path) -> Result<Mount, SysError> {
    let data = format!(
        "lowerdir={},upperdir={},workdir={}",
        lower.display(),
        upper.display(),
        work.display()
    );
    do_mount(
        "mount overlay on",
        Path::new("overlay"),
        target,
        "overlay",
        MsFlags::MS_NODEV,
        Some(&data),
    )
}

/// `--unprivileged`: stacks on `path` (a mount point of rootrun's) a clone
/// of the mount there whose files appear with their ids shifted through the
/// user namespace `userns` (`sys::userns`): the image's root-owned files
/// are the container root's, and nothing is chowned (mount_setattr(2),
/// MOUNT_ATTR_IDMAP; SquashFS, ext4, EROFS and tmpfs took it on the 6.18
/// kernel this was tested on). The overlay is then made over this mount.
pub fn idmapped_onto_itself(path: &Path, userns: &OwnedFd) -> Result<Mount, SysError> {
    let tree = open_tree_clone(path)?;
    set_idmap(&tree, userns, path)?;
    attach(&tree, path)
}

/// Gives the detached mount `tree` (of `source`) the id mapping of the user
/// namespace `userns`.
fn set_idmap(tree: &OwnedFd, userns: &OwnedFd, source: &Path) -> Result<(), SysError> {
    let attr = mount_attr {
        attr_set: MOUNT_ATTR_IDMAP,
        attr_clr: 0,
        propagation: 0,
        userns_fd: userns.as_raw_fd() as u64,
    };
    set_attributes(tree, &attr).map_err(|e| SysError::new("idmap (mount_setattr)", source, e))
}

/// binfmt_misc, for reading and registering handlers (they are kernel-wide;
/// the mount itself stays in rootrun's private namespace).
pub fn binfmt_misc(target: &Path) -> Result<Mount, SysError> {
    do_mount(
        "mount binfmt_misc on",
        Path::new("binfmt_misc"),
        target,
        "binfmt_misc",
        MsFlags::MS_NODEV | MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC,
        None,
    )
}

/// Bind-mounts the host file or directory `source` read-only (and nosuid,
/// nodev) onto what `target` (an `O_PATH` fd) refers to. The new mount API makes
/// this one detached, already read-only mount that is then attached by fd,
/// so no path is resolved twice and there is no writable moment
/// (open_tree(2), mount_setattr(2), move_mount(2); Linux 5.12+).
pub fn bind_read_only(
    source: &Path,
    target: &OwnedFd,
    target_path: &Path,
) -> Result<Mount, SysError> {
    bind(source, target, target_path, true, None)
}

/// Like `bind_read_only`, writable when `read_only` is false (still nosuid,
/// nodev): `--bind HOST:GUEST`. With `idmap` (`--unprivileged`) its files
/// appear through that user namespace's mapping, as on the lower layer.
pub fn bind(
    source: &Path,
    target: &OwnedFd,
    target_path: &Path,
    read_only: bool,
    idmap: Option<&OwnedFd>,
) -> Result<Mount, SysError> {
    let attrs =
        if read_only { MOUNT_ATTR_RDONLY } else { 0 } | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV;
    let tree = detached_clone(source, attrs)?;
    if let Some(userns) = idmap {
        set_idmap(&tree, userns, source)?;
    }
    // SAFETY: both fds are open; empty paths with the *_EMPTY_PATH flags
    // mean the fds themselves.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            tree.as_raw_fd(),
            c"".as_ptr(),
            target.as_raw_fd(),
            c"".as_ptr(),
            MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH,
        )
    };
    Errno::result(ret)
        .map_err(|e| SysError::new("bind-mount (move_mount) onto", target_path, e))?;
    Ok(Mount {
        target: target_path.to_path_buf(),
    })
}

/// Attaches the detached mount `tree` (`detached`) at the directory
/// `target`, by fd: move_mount(2) of a mount that belongs to no namespace
/// into the caller's.
pub fn attach(tree: &OwnedFd, target: &Path) -> Result<Mount, SysError> {
    let c_target = CString::new(target.as_os_str().as_bytes())
        .map_err(|_| SysError::new("attach mount on", target, Errno::EINVAL))?;
    // SAFETY: `tree` is open; the empty path with MOVE_MOUNT_F_EMPTY_PATH
    // means the fd itself; the target path is NUL-terminated.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            tree.as_raw_fd(),
            c"".as_ptr(),
            libc::AT_FDCWD,
            c_target.as_ptr(),
            MOVE_MOUNT_F_EMPTY_PATH,
        )
    };
    Errno::result(ret).map_err(|e| SysError::new("attach mount (move_mount) on", target, e))?;
    Ok(Mount {
        target: target.to_path_buf(),
    })
}

/// A detached bind mount of `source` (a file or a directory), not attached
/// anywhere, with mount attributes `attrs` set: open_tree(2) with
/// OPEN_TREE_CLONE, then mount_setattr(2).
fn detached_clone(source: &Path, attrs: u64) -> Result<OwnedFd, SysError> {
    let tree = open_tree_clone(source)?;
    let attr = mount_attr {
        attr_set: attrs,
        attr_clr: 0,
        propagation: 0,
        userns_fd: 0,
    };
    set_attributes(&tree, &attr)
        .map_err(|e| SysError::new("make read-only (mount_setattr)", source, e))?;
    Ok(tree)
}

/// open_tree(2) with OPEN_TREE_CLONE: a detached copy of the mount at
/// `source` (only that one, not those below it).
fn open_tree_clone(source: &Path) -> Result<OwnedFd, SysError> {
    let c_source = CString::new(source.as_os_str().as_bytes())
        .map_err(|_| SysError::new("bind-mount", source, Errno::EINVAL))?;
    // SAFETY: open_tree reads the NUL-terminated path during the call and
    // returns a new fd (or -1), which is owned below.
    let tree = unsafe {
        libc::syscall(
            libc::SYS_open_tree,
            libc::AT_FDCWD,
            c_source.as_ptr(),
            OPEN_TREE_CLONE | libc::O_CLOEXEC as libc::c_uint,
        )
    };
    let tree = Errno::result(tree).map_err(|e| SysError::new("open_tree", source, e))?;
    let tree = i32::try_from(tree).map_err(|_| SysError::new("open_tree", source, Errno::EBADF))?;
    // SAFETY: a successful open_tree returned a fresh fd nobody else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(tree) })
}

/// mount_setattr(2) on the detached mount `tree`.
fn set_attributes(tree: &OwnedFd, attr: &mount_attr) -> Result<(), Errno> {
    // SAFETY: mount_setattr reads `attr` (size passed) during the call; the
    // empty path with AT_EMPTY_PATH means "the mount `tree` refers to".
    let ret = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            tree.as_raw_fd(),
            c"".as_ptr(),
            libc::AT_EMPTY_PATH as libc::c_uint,
            attr as *const mount_attr,
            std::mem::size_of::<mount_attr>(),
        )
    };
    Errno::result(ret).map(drop)
}

/// The file `path` on a detached, read-only (and nosuid, nodev) bind mount
/// of its own, as an `O_PATH` fd: exec'd through it, a program's
/// /proc/PID/exe cannot be opened for writing (EROFS), without a copy.
pub fn read_only_file_clone(path: &Path) -> Result<OwnedFd, SysError> {
    detached_clone(
        path,
        MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV,
    )
}

/// Bind-mounts the directory `dir` (with what is mounted below it) onto
/// itself, by fd only: no path is looked up again, so nothing mounted over
/// one of its parents meanwhile can redirect it. Returns an fd of the new
/// mount's root. Not undone on drop: it is made for the life of rootrun's
/// namespace (see `namespace`).
pub fn bind_onto_itself(dir: &OwnedFd) -> Result<OwnedFd, SysError> {
    let fail = |op: &'static str| move |e| SysError::new(op, "the chroot directory", e);
    // SAFETY: open_tree reads the empty NUL-terminated path during the
    // call (AT_EMPTY_PATH: `dir` itself) and returns a new fd (or -1),
    // which is owned below.
    let tree = unsafe {
        libc::syscall(
            libc::SYS_open_tree,
            dir.as_raw_fd(),
            c"".as_ptr(),
            OPEN_TREE_CLONE
                | libc::AT_RECURSIVE as libc::c_uint
                | libc::AT_EMPTY_PATH as libc::c_uint
                | libc::O_CLOEXEC as libc::c_uint,
        )
    };
    let tree = Errno::result(tree).map_err(fail("open_tree"))?;
    let tree = i32::try_from(tree)
        .map_err(|_| SysError::new("open_tree", "the chroot directory", Errno::EBADF))?;
    // SAFETY: a successful open_tree returned a fresh fd nobody else owns.
    let tree = unsafe { OwnedFd::from_raw_fd(tree) };
    // SAFETY: both fds are open; empty paths with the *_EMPTY_PATH flags
    // mean the fds themselves.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            tree.as_raw_fd(),
            c"".as_ptr(),
            dir.as_raw_fd(),
            c"".as_ptr(),
            MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH,
        )
    };
    Errno::result(ret).map_err(fail("bind-mount (move_mount) onto"))?;
    Ok(tree)
}
