//! rootrun's private mount namespace.
//!
//! Every mount rootrun makes lives in a mount namespace of its own with
//! private propagation, so the kernel tears it all down when the last process
//! in it exits, even after SIGKILL (mount_namespaces(7)). This must run before
//! any thread exists: a namespace unshared by one thread is that thread's
//! alone (unshare(2)).

use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{open, OFlag};
use nix::mount::{mount, MsFlags};
use nix::sched::{unshare, CloneFlags};
use nix::sys::stat::{fstat, stat, Mode};
use nix::unistd::{chdir, chroot, fchdir, getcwd};

use super::{mount, SysError};

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
/// EINVAL), and go back in, to the same working directory. Everything after
/// the step out goes by fd, never by a path name that something mounted
/// meanwhile could redirect; on any failure rootrun goes back into the
/// chroot it came from before it reports.
fn make_private_around_chroot() -> Result<(), SysError> {
    let inside = getcwd().map_err(|e| SysError::new("find the working directory", ".", e))?;
    let chroot_dir = open_dir(Path::new("/"))?;
    escape_chroot()?;
    let entered = make_private(Path::new("/"))
        .map_err(|e| SysError::new("make mounts private under", "/", e))
        .and_then(|()| mount::bind_onto_itself(&chroot_dir))
        .and_then(|root| enter(&root, &chroot_dir));
    if let Err(err) = entered {
        // Back where rootrun was, whatever failed.
        let _ = enter(&chroot_dir, &chroot_dir);
        return Err(err);
    }
    chdir(&inside)
        .or_else(|_| chdir("/"))
        .map_err(|e| SysError::new("change directory to", &inside, e))
}

/// chroot(2) into the directory `root` and check that `/` is now `expected`
/// (the same directory, seen through a bind mount or not).
fn enter(root: &OwnedFd, expected: &OwnedFd) -> Result<(), SysError> {
    let fail = |op: &'static str| move |e| SysError::new(op, "the chroot directory", e);
    fchdir(root).map_err(fail("change directory to"))?;
    chroot(".").map_err(fail("chroot back into"))?;
    let (now, want) = (stat("/"), fstat(expected));
    match (now, want) {
        (Ok(now), Ok(want)) if (now.st_dev, now.st_ino) == (want.st_dev, want.st_ino) => Ok(()),
        (Err(e), _) | (_, Err(e)) => Err(fail("look at")(e)),
        _ => Err(SysError::new(
            "chroot back into",
            "the chroot directory (another directory came in its place)",
            Errno::ESTALE,
        )),
    }
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

/// Joins the mount namespace of process `pid` (setns(2)); the process must
/// have no other thread. `rootrun exec` does so to reach the liblxc
/// configuration a container's supervisor keeps on its private tmpfs.
pub fn join_mount_namespace_of(pid: i32) -> Result<(), SysError> {
    let path = PathBuf::from(format!("/proc/{pid}/ns/mnt"));
    let fd = open(&path, OFlag::O_RDONLY | OFlag::O_CLOEXEC, Mode::empty())
        .map_err(|e| SysError::new("open", &path, e))?;
    nix::sched::setns(fd, CloneFlags::CLONE_NEWNS).map_err(|e| SysError::new("setns", &path, e))
}
