//! rootrun's private mount namespace.
//!
//! Every mount rootrun makes lives in a mount namespace of its own with
//! private propagation, so the kernel tears it all down when the last process
//! in it exits, even after SIGKILL (mount_namespaces(7)). This must run before
//! any thread exists: a namespace unshared by one thread is that thread's
//! alone (unshare(2)).

use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{open, OFlag};
use nix::mount::{mount, MsFlags};
use nix::sched::{unshare, CloneFlags};
use nix::sys::stat::{stat, Mode};
use nix::unistd::{chdir, chroot, getcwd};

use super::SysError;

pub fn enter_private_mount_namespace() -> Result<(), SysError> {
    unshare(CloneFlags::CLONE_NEWNS).map_err(|e| SysError::new("unshare(CLONE_NEWNS)", "/", e))?;
    // Without this, mounts would still propagate back to the host's shared
    // peer groups (systemd makes / shared).
    match make_private(Path::new("/")) {
        // mount(2) changes propagation only at a mount point: `/` is not
        // one in a plain chroot (build chroots, some CI setups).
        Err(Errno::EINVAL) => make_private_around_chroot(),
        other => other.map_err(|e| SysError::new("make mounts private under", "/", e)),
    }
}

fn make_private(path: &Path) -> Result<(), Errno> {
    mount(
        None::<&str>,
        path,
        None::<&str>,
        MsFlags::MS_REC | MsFlags::MS_PRIVATE,
        None::<&str>,
    )
}

/// In a chroot, the mount holding `/` is still a peer of the host's: any
/// mount under it would show on the host. In rootrun's own namespace (so
/// nothing of this is seen elsewhere): step out of the chroot to the
/// namespace's real root, make every mount private there, bind-mount the
/// chroot's directory onto itself so that `/` becomes a mount point (liblxc's
/// pivot_root(2) needs one: "the current root is not a mount point" is
/// EINVAL), and go back in, to the same working directory.
fn make_private_around_chroot() -> Result<(), SysError> {
    let fail = |op: &'static str, path: &Path| {
        let path = path.to_path_buf();
        move |e| SysError::new(op, path, e)
    };
    let inside = getcwd().map_err(fail("find the working directory", Path::new(".")))?;
    let chroot_dir = open_dir(Path::new("/"))?;
    escape_chroot()?;
    make_private(Path::new("/")).map_err(fail("make mounts private under", Path::new("/")))?;
    // Readable now that the root is the namespace's: the chroot's path.
    let dir = std::fs::read_link(format!("/proc/self/fd/{}", chroot_dir.as_raw_fd()))
        .map_err(|e| SysError::io("find the path of the chroot", "/", e))?;
    mount(
        Some(&dir),
        &dir,
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None::<&str>,
    )
    .map_err(fail("bind-mount the chroot onto itself at", &dir))?;
    chroot(&dir).map_err(fail("chroot back into", &dir))?;
    chdir(&inside)
        .or_else(|_| chdir("/"))
        .map_err(fail("change directory to", &inside))
}

/// chroot(2) into a subdirectory while the working directory stays at the
/// old root leaves it outside the new root, where `..` climbs to the
/// namespace's real root (path_resolution(7) stops `..` only at the
/// process's root); chroot there.
fn escape_chroot() -> Result<(), SysError> {
    let fail = |op: &'static str, path: PathBuf| move |e| SysError::new(op, path, e);
    chdir("/").map_err(fail("change directory to", "/".into()))?;
    let sub = any_subdirectory()?;
    chroot(&sub).map_err(fail("chroot", sub.clone()))?;
    // Deeper than any real tree: the loop ends at the root, where `.` and
    // `..` are the same directory.
    for _ in 0..4096 {
        let (here, up) = (stat("."), stat(".."));
        if let (Ok(here), Ok(up)) = (here, up) {
            if (here.st_dev, here.st_ino) == (up.st_dev, up.st_ino) {
                return chroot(".").map_err(fail("chroot", "/".into()));
            }
        }
        chdir("..").map_err(fail("change directory to", "..".into()))?;
    }
    Err(SysError::new("find the root from", "/", Errno::ELOOP))
}

/// A directory directly under `/` to chroot(2) into (any will do).
fn any_subdirectory() -> Result<PathBuf, SysError> {
    let entries = std::fs::read_dir("/").map_err(|e| SysError::io("read directory", "/", e))?;
    entries
        .flatten()
        .find(|entry| entry.file_type().is_ok_and(|t| t.is_dir()))
        .map(|entry| entry.path())
        .ok_or_else(|| SysError::new("find a directory in", "/", Errno::ENOENT))
}

fn open_dir(path: &Path) -> Result<OwnedFd, SysError> {
    open(
        path,
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| SysError::new("open", path, e))
}
