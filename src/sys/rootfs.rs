//! Lookups inside a container root that never leave it: `openat2(2)` with
//! `RESOLVE_IN_ROOT` resolves `..` and absolute symlinks against the root, as
//! a chroot would, so a hostile image cannot point rootrun at host files.

use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{openat2, OFlag, OpenHow, ResolveFlag};
use nix::sys::stat::{fstat, SFlag};

/// How often a lookup is tried again when the kernel says EAGAIN.
const IN_ROOT_RETRIES: usize = 64;

/// Opens `path` (absolute or relative, interpreted inside the root) relative
/// to the directory fd `root`, following symlinks only within it, and never
/// through a magic link such as `/proc/PID/exe` (openat2(2)).
///
/// With RESOLVE_IN_ROOT a `..` component (the fixture's `/sbin/init ->
/// ../bin/busybox`) fails with EAGAIN whenever any mount or rename happened
/// on the system during the lookup, which the kernel cannot tell from an
/// escape attempt; openat2(2) says to try again. Seen as a "/sbin/init not
/// found in the image" while other containers started on the machine.
pub fn open_in_root(root: &OwnedFd, path: &Path, flags: i32) -> Result<OwnedFd, Errno> {
    let how = OpenHow::new()
        .flags(OFlag::from_bits_truncate(flags) | OFlag::O_CLOEXEC)
        .resolve(ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS);
    let mut result = openat2(root, path, how);
    for _ in 0..IN_ROOT_RETRIES {
        if !matches!(result, Err(Errno::EAGAIN)) {
            break;
        }
        result = openat2(root, path, how);
    }
    result
}

/// What `check_executable` found.
#[derive(Debug, PartialEq, Eq)]
pub enum Executable {
    Ok,
    Missing,
    /// Exists but is not a regular file with an execute bit.
    NotExecutable,
}

/// Whether `path` inside the root is something exec(2) could run.
pub fn check_executable(root: &OwnedFd, path: &Path) -> Executable {
    match open_in_root(root, path, libc::O_PATH) {
        Err(_) => Executable::Missing,
        Ok(fd) => match fstat(&fd) {
            Ok(st)
                if SFlag::from_bits_truncate(st.st_mode & libc::S_IFMT) == SFlag::S_IFREG
                    && st.st_mode & 0o111 != 0 =>
            {
                Executable::Ok
            }
            _ => Executable::NotExecutable,
        },
    }
}

/// Makes sure a regular file exists at `path` inside the root, creating the
/// missing directories (0755) and the file (0644, empty) as needed, and
/// returns an `O_PATH` fd to it. Every lookup resolves inside the root, so an
/// image whose `usr/libexec` is a symlink to `/tmp` gets the file in *its*
/// /tmp, never the host's. A dangling symlink on the way is an error.
pub fn create_file_in_root(root: &OwnedFd, path: &Path) -> Result<OwnedFd, Errno> {
    let parts = normal_components(path);
    let Some((name, dirs)) = parts.split_last() else {
        return Err(Errno::EINVAL);
    };
    let prefix = make_dirs_in_root(root, dirs)?;
    let full = prefix.join(name);
    match open_in_root(root, &full, libc::O_PATH) {
        Ok(fd) => return regular(fd),
        Err(Errno::ENOENT) => {}
        Err(e) => return Err(e),
    }
    let parent = open_in_root(root, &prefix, libc::O_PATH | libc::O_DIRECTORY)?;
    // O_EXCL | O_NOFOLLOW: never create through a symlink someone placed there.
    let created = nix::fcntl::openat(
        &parent,
        *name,
        nix::fcntl::OFlag::O_CREAT
            | nix::fcntl::OFlag::O_EXCL
            | nix::fcntl::OFlag::O_NOFOLLOW
            | nix::fcntl::OFlag::O_WRONLY
            | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::from_bits_truncate(0o644),
    )?;
    drop(created);
    regular(open_in_root(root, &full, libc::O_PATH)?)
}

/// Writes `bytes` into a regular file at `path` inside the root (created
/// 0644 with its missing directories by the rules of `create_file_in_root`,
/// or truncated when it is there, as in a kept writable layer). The file is
/// opened through its parent with `O_NOFOLLOW`, so a symlink at `path`
/// fails (ELOOP) instead of being written through, and `O_NONBLOCK` makes
/// a FIFO the image put there fail (ENXIO) instead of waiting for a reader
/// (a device node cannot be opened at all on the `nodev` overlay).
pub fn write_file_in_root(root: &OwnedFd, path: &Path, bytes: &[u8]) -> Result<(), Errno> {
    let parts = normal_components(path);
    let Some((name, dirs)) = parts.split_last() else {
        return Err(Errno::EINVAL);
    };
    let prefix = make_dirs_in_root(root, dirs)?;
    let parent = open_in_root(root, &prefix, libc::O_DIRECTORY)?;
    let file = nix::fcntl::openat(
        &parent,
        *name,
        OFlag::O_CREAT
            | OFlag::O_TRUNC
            | OFlag::O_NOFOLLOW
            | OFlag::O_NONBLOCK
            | OFlag::O_WRONLY
            | OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::from_bits_truncate(0o644),
    )?;
    regular(file.try_clone().map_err(|_| Errno::EBADF)?)?;
    let written = nix::unistd::write(&file, bytes)?;
    if written == bytes.len() {
        Ok(())
    } else {
        Err(Errno::EIO)
    }
}

/// Makes sure a directory exists at `path` inside the root (creating what
/// is missing, 0755, by the same rules as `create_file_in_root`) and
/// returns an `O_PATH` fd to it.
pub fn create_dir_in_root(root: &OwnedFd, path: &Path) -> Result<OwnedFd, Errno> {
    let parts = normal_components(path);
    let prefix = make_dirs_in_root(root, &parts)?;
    open_in_root(root, &prefix, libc::O_PATH | libc::O_DIRECTORY)
}

fn normal_components(path: &Path) -> Vec<&std::ffi::OsStr> {
    path.components()
        .filter_map(|c| match c {
            std::path::Component::Normal(name) => Some(name),
            _ => None,
        })
        .collect()
}

/// Creates the directories `dirs` below the root, one component at a time,
/// each looked up inside the root; returns their path inside it.
fn make_dirs_in_root(root: &OwnedFd, dirs: &[&std::ffi::OsStr]) -> Result<PathBuf, Errno> {
    let mut prefix = PathBuf::from("/");
    for dir in dirs {
        let parent = open_in_root(root, &prefix, libc::O_PATH | libc::O_DIRECTORY)?;
        prefix.push(dir);
        if open_in_root(root, &prefix, libc::O_PATH | libc::O_DIRECTORY).is_err() {
            match nix::sys::stat::mkdirat(
                &parent,
                *dir,
                nix::sys::stat::Mode::from_bits_truncate(0o755),
            ) {
                Ok(()) | Err(Errno::EEXIST) => {}
                Err(e) => return Err(e),
            }
            // Still not a directory (a dangling symlink, a file): give up.
            open_in_root(root, &prefix, libc::O_PATH | libc::O_DIRECTORY)?;
        }
    }
    Ok(prefix)
}

fn regular(fd: OwnedFd) -> Result<OwnedFd, Errno> {
    let st = fstat(&fd)?;
    if SFlag::from_bits_truncate(st.st_mode & libc::S_IFMT) == SFlag::S_IFREG {
        Ok(fd)
    } else {
        Err(Errno::EISDIR)
    }
}

/// The host path an fd refers to (for messages and unmounting).
pub fn fd_path(fd: &OwnedFd) -> PathBuf {
    std::fs::read_link(format!("/proc/self/fd/{}", fd.as_raw_fd())).unwrap_or_default()
}

/// Writes `bytes` in one write(2) to the FIFO at `path` inside the root of
/// process `pid` (its mount namespace's view: `/proc/PID/root`, proc(5)),
/// without blocking: sysvinit's /run/initctl lives on the guest's own
/// tmpfs, which rootrun's mount namespace never sees.
///
/// The guest owns that path: it is looked up with `O_PATH` inside the root
/// and must be a FIFO before anything opens it for writing, since opening a
/// device node the guest made there (it may mknod) would reach the host's
/// device from rootrun, outside the container's devices cgroup. The FIFO is
/// then reopened through /proc/self/fd, the same inode.
pub fn write_fifo_in_root(pid: i32, path: &Path, bytes: &[u8]) -> Result<(), String> {
    let root_path = format!("/proc/{pid}/root");
    let root = nix::fcntl::open(
        root_path.as_str(),
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .map_err(|e| format!("open {root_path}: {e}"))?;
    let found =
        open_in_root(&root, path, libc::O_PATH).map_err(|e| format!("{}: {e}", path.display()))?;
    let st = fstat(&found).map_err(|e| format!("fstat {}: {e}", path.display()))?;
    if SFlag::from_bits_truncate(st.st_mode & libc::S_IFMT) != SFlag::S_IFIFO {
        return Err(format!("{} is not a FIFO", path.display()));
    }
    // O_NONBLOCK: ENXIO instead of waiting when nobody reads (fifo(7)), and
    // EAGAIN instead of waiting when the pipe is full.
    let fifo = nix::fcntl::open(
        format!("/proc/self/fd/{}", found.as_raw_fd()).as_str(),
        OFlag::O_WRONLY | OFlag::O_NONBLOCK | OFlag::O_NOCTTY | OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .map_err(|e| format!("open {} for writing: {e}", path.display()))?;
    // At most PIPE_BUF bytes go into a pipe in one piece or not at all
    // (pipe(7)), so the reader never sees half a request.
    match nix::unistd::write(&fifo, bytes) {
        Ok(n) if n == bytes.len() => Ok(()),
        Ok(n) => Err(format!(
            "write {}: {n} of {} bytes",
            path.display(),
            bytes.len()
        )),
        Err(e) => Err(format!("write {}: {e}", path.display())),
    }
}

/// The root directory of process `pid` (a container's init), as an
/// `O_PATH` fd for `open_in_root`.
pub fn open_root_of(pid: i32) -> Result<OwnedFd, Errno> {
    nix::fcntl::open(
        format!("/proc/{pid}/root").as_str(),
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fresh directory under the system's temporary directory, removed
    /// at the end of the test that made it.
    struct Scratch(PathBuf);

    impl Scratch {
        fn new(name: &str) -> Scratch {
            let dir = std::env::temp_dir()
                .join(format!("rootrun-rootfs-test-{name}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).expect("create the scratch directory");
            Scratch(dir)
        }

        fn root(&self) -> OwnedFd {
            std::fs::File::open(&self.0).expect("open the root").into()
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn a_written_file_lands_inside_the_root_even_through_an_absolute_symlink() {
        let scratch = Scratch::new("write");
        // etc -> /elsewhere: inside the root it names <root>/elsewhere.
        std::fs::create_dir(scratch.0.join("elsewhere")).unwrap();
        std::os::unix::fs::symlink("/elsewhere", scratch.0.join("etc")).unwrap();
        let path = Path::new("/etc/systemd/system/a.service.d/x.conf");
        write_file_in_root(&scratch.root(), path, b"first\n").unwrap();
        let landed = scratch
            .0
            .join("elsewhere/systemd/system/a.service.d/x.conf");
        assert_eq!(std::fs::read(&landed).unwrap(), b"first\n");
        // Written again (a kept writable layer): replaced, not appended.
        write_file_in_root(&scratch.root(), path, b"2\n").unwrap();
        assert_eq!(std::fs::read(&landed).unwrap(), b"2\n");
    }

    #[test]
    fn a_symlink_or_a_fifo_at_the_name_is_refused() {
        let scratch = Scratch::new("refuse");
        std::os::unix::fs::symlink("/target", scratch.0.join("link")).unwrap();
        assert_eq!(
            write_file_in_root(&scratch.root(), Path::new("/link"), b"x"),
            Err(Errno::ELOOP)
        );
        assert!(!scratch.0.join("target").exists());
        nix::unistd::mkfifo(
            &scratch.0.join("fifo"),
            nix::sys::stat::Mode::from_bits_truncate(0o644),
        )
        .unwrap();
        // Without O_NONBLOCK this would wait for a reader forever.
        assert_eq!(
            write_file_in_root(&scratch.root(), Path::new("/fifo"), b"x"),
            Err(Errno::ENXIO)
        );
    }
}
