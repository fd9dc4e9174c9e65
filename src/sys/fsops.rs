//! File creation relative to directory fds, for unpacking a hostile image into a host
//! directory. Every call takes a directory fd and a single name component: nothing here
//! resolves a path under the destination, and nothing follows a symlink at the last component
//! (`O_NOFOLLOW`, `AT_SYMLINK_NOFOLLOW`, `O_EXCL`), so an entry the image planted cannot
//! redirect a later write (openat(2), mknodat(2), symlinkat(2), linkat(2), fchownat(2)).

use std::ffi::{CStr, CString};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, IntoRawFd, OwnedFd};

use nix::errno::Errno;

/// Opens the existing directory `name` in `dir`, refusing a symlink or anything not a directory.
pub fn open_dir_at(dir: BorrowedFd<'_>, name: &CStr) -> Result<OwnedFd, Errno> {
    open_raw(
        dir,
        name,
        libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW,
        0,
    )
}

/// Opens a directory given by a host path the user chose (not from the image); the last
/// component must not be a symlink.
pub fn open_dir_path(path: &CStr) -> Result<OwnedFd, Errno> {
    // SAFETY: AT_FDCWD is a valid dirfd for openat; the path is NUL-terminated.
    let cwd = unsafe { BorrowedFd::borrow_raw(libc::AT_FDCWD) };
    open_dir_at(cwd, path)
}

/// Creates the regular file `name` in `dir` (it must not exist) and opens it for writing.
pub fn create_file_at(dir: BorrowedFd<'_>, name: &CStr, mode: u32) -> Result<OwnedFd, Errno> {
    open_raw(
        dir,
        name,
        libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL | libc::O_NOFOLLOW,
        mode,
    )
}

/// Opens `name` in `dir` as an `O_PATH` handle without following a symlink, so attributes of a
/// device node, FIFO or symlink can be changed without opening (and triggering) it.
pub fn open_path_at(dir: BorrowedFd<'_>, name: &CStr) -> Result<OwnedFd, Errno> {
    open_raw(dir, name, libc::O_PATH | libc::O_NOFOLLOW, 0)
}

fn open_raw(dir: BorrowedFd<'_>, name: &CStr, flags: i32, mode: u32) -> Result<OwnedFd, Errno> {
    // SAFETY: `name` is NUL-terminated and outlives the call; openat returns a new fd or -1.
    let fd = unsafe {
        libc::openat(
            dir.as_raw_fd(),
            name.as_ptr(),
            flags | libc::O_CLOEXEC,
            mode as libc::c_uint,
        )
    };
    let fd = Errno::result(fd)?;
    // SAFETY: a successful openat returned a fresh fd that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

pub fn mkdir_at(dir: BorrowedFd<'_>, name: &CStr, mode: u32) -> Result<(), Errno> {
    // SAFETY: `name` is NUL-terminated; mkdirat does not keep the pointer.
    let ret = unsafe { libc::mkdirat(dir.as_raw_fd(), name.as_ptr(), mode as libc::mode_t) };
    Errno::result(ret).map(drop)
}

pub fn symlink_at(target: &CStr, dir: BorrowedFd<'_>, name: &CStr) -> Result<(), Errno> {
    // SAFETY: both strings are NUL-terminated; symlinkat never follows `target`.
    let ret = unsafe { libc::symlinkat(target.as_ptr(), dir.as_raw_fd(), name.as_ptr()) };
    Errno::result(ret).map(drop)
}

/// Creates a device node, FIFO or socket (`mode` holds the file type bits), never replacing one.
pub fn mknod_at(dir: BorrowedFd<'_>, name: &CStr, mode: u32, dev: u64) -> Result<(), Errno> {
    // SAFETY: `name` is NUL-terminated; mknodat fails with EEXIST rather than replacing.
    let ret = unsafe {
        libc::mknodat(
            dir.as_raw_fd(),
            name.as_ptr(),
            mode as libc::mode_t,
            dev as libc::dev_t,
        )
    };
    Errno::result(ret).map(drop)
}

/// Hard-links `old_name` in `old_dir` as `new_name` in `new_dir`; flags 0 means a symlink
/// at `old_name` would be linked itself, never followed.
pub fn link_at(
    old_dir: BorrowedFd<'_>,
    old_name: &CStr,
    new_dir: BorrowedFd<'_>,
    new_name: &CStr,
) -> Result<(), Errno> {
    // SAFETY: both names are NUL-terminated; linkat does not keep them.
    let ret = unsafe {
        libc::linkat(
            old_dir.as_raw_fd(),
            old_name.as_ptr(),
            new_dir.as_raw_fd(),
            new_name.as_ptr(),
            0,
        )
    };
    Errno::result(ret).map(drop)
}

/// Removes `name` from `dir` (a directory when `dir_entry`), without following symlinks.
pub fn unlink_at(dir: BorrowedFd<'_>, name: &CStr, dir_entry: bool) -> Result<(), Errno> {
    let flags = if dir_entry { libc::AT_REMOVEDIR } else { 0 };
    // SAFETY: `name` is NUL-terminated; unlinkat never follows a symlink.
    let ret = unsafe { libc::unlinkat(dir.as_raw_fd(), name.as_ptr(), flags) };
    Errno::result(ret).map(drop)
}

/// chown on an fd; on an `O_PATH` fd too (AT_EMPTY_PATH), so symlinks and nodes work.
pub fn chown_fd(fd: BorrowedFd<'_>, uid: u32, gid: u32) -> Result<(), Errno> {
    // SAFETY: the empty path is a NUL-terminated literal; AT_EMPTY_PATH acts on `fd` itself.
    let ret = unsafe {
        libc::fchownat(
            fd.as_raw_fd(),
            c"".as_ptr(),
            uid,
            gid,
            libc::AT_EMPTY_PATH | libc::AT_SYMLINK_NOFOLLOW,
        )
    };
    Errno::result(ret).map(drop)
}

/// chmod on an fd opened for reading or writing (not `O_PATH`).
pub fn chmod_fd(fd: BorrowedFd<'_>, mode: u32) -> Result<(), Errno> {
    // SAFETY: plain syscall on a valid fd.
    let ret = unsafe { libc::fchmod(fd.as_raw_fd(), mode as libc::mode_t) };
    Errno::result(ret).map(drop)
}

/// chmod of `name` in `dir` without following a symlink there (fchmodat2(2), Linux 6.6). Older
/// kernels fall back to fchmodat, which is safe here because callers pass only names they
/// have just created with mknodat in a directory nobody else can write to.
pub fn chmod_at_nofollow(dir: BorrowedFd<'_>, name: &CStr, mode: u32) -> Result<(), Errno> {
    // SAFETY: `name` is NUL-terminated; fchmodat2 takes (dirfd, path, mode, flags).
    let ret = unsafe {
        libc::syscall(
            libc::SYS_fchmodat2,
            dir.as_raw_fd(),
            name.as_ptr(),
            mode as libc::c_uint,
            libc::AT_SYMLINK_NOFOLLOW,
        )
    };
    match Errno::result(ret) {
        Ok(_) => Ok(()),
        Err(Errno::ENOSYS) => {
            // SAFETY: as above, without flags.
            let ret =
                unsafe { libc::fchmodat(dir.as_raw_fd(), name.as_ptr(), mode as libc::mode_t, 0) };
            Errno::result(ret).map(drop)
        }
        Err(e) => Err(e),
    }
}

/// Sets atime and mtime of `fd` (any kind, `O_PATH` included) to `mtime` seconds.
pub fn set_mtime_fd(fd: BorrowedFd<'_>, mtime: i64) -> Result<(), Errno> {
    let ts = libc::timespec {
        tv_sec: mtime,
        tv_nsec: 0,
    };
    let times = [ts, ts];
    // SAFETY: `times` is two timespecs as utimensat(2) requires; with AT_EMPTY_PATH and an
    // empty path the call acts on `fd` itself, whatever it refers to.
    let ret = unsafe {
        libc::utimensat(
            fd.as_raw_fd(),
            c"".as_ptr(),
            times.as_ptr(),
            libc::AT_EMPTY_PATH | libc::AT_SYMLINK_NOFOLLOW,
        )
    };
    Errno::result(ret).map(drop)
}

/// Sets an extended attribute through an fd. An `O_PATH` fd (symlinks, nodes) cannot take
/// fsetxattr, so it goes through its /proc/self/fd magic link, which names the inode itself
/// and is not resolved again (proc(5)).
pub fn set_xattr_fd(
    fd: BorrowedFd<'_>,
    name: &CStr,
    value: &[u8],
    o_path: bool,
) -> Result<(), Errno> {
    let ret = if o_path {
        let proc_path =
            CString::new(format!("/proc/self/fd/{}", fd.as_raw_fd())).map_err(|_| Errno::EINVAL)?;
        // SAFETY: both strings are NUL-terminated and `value` is valid for its length.
        unsafe {
            libc::setxattr(
                proc_path.as_ptr(),
                name.as_ptr(),
                value.as_ptr().cast(),
                value.len(),
                0,
            )
        }
    } else {
        // SAFETY: `name` is NUL-terminated and `value` is valid for its length.
        unsafe {
            libc::fsetxattr(
                fd.as_raw_fd(),
                name.as_ptr(),
                value.as_ptr().cast(),
                value.len(),
                0,
            )
        }
    };
    Errno::result(ret).map(drop)
}

/// The names in directory `dir`, `.` and `..` excluded (fdopendir(3) on a duplicate fd, so
/// `dir` itself stays open and unchanged).
pub fn list_names(dir: BorrowedFd<'_>) -> Result<Vec<CString>, Errno> {
    let dup = dir
        .try_clone_to_owned()
        .map_err(|e| Errno::from_raw(e.raw_os_error().unwrap_or(libc::EBADF)))?;
    let raw = dup.into_raw_fd();
    // SAFETY: `raw` is an fd we own; fdopendir takes it over on success.
    let stream = unsafe { libc::fdopendir(raw) };
    if stream.is_null() {
        let errno = Errno::last();
        // SAFETY: fdopendir failed, so `raw` is still ours alone; this closes it.
        drop(unsafe { OwnedFd::from_raw_fd(raw) });
        return Err(errno);
    }
    // The stream may hold a position from an earlier listing of the same open file.
    // SAFETY: `stream` is a valid DIR* until closedir.
    unsafe { libc::rewinddir(stream) };
    let mut names = Vec::new();
    let result = loop {
        Errno::clear();
        // SAFETY: `stream` is valid; the returned entry stays valid until the next readdir.
        let entry = unsafe { libc::readdir(stream) };
        if entry.is_null() {
            let errno = Errno::last_raw();
            break if errno == 0 {
                Ok(())
            } else {
                Err(Errno::from_raw(errno))
            };
        }
        // SAFETY: d_name of a returned entry is a NUL-terminated string inside it.
        let name = unsafe { CStr::from_ptr((*entry).d_name.as_ptr()) };
        if name.to_bytes() != b"." && name.to_bytes() != b".." {
            names.push(name.to_owned());
        }
    };
    // SAFETY: `stream` came from fdopendir and is closed exactly once.
    unsafe { libc::closedir(stream) };
    result.map(|()| names)
}

/// Whether directory `dir` has no entries besides `.` and `..`.
pub fn dir_is_empty(dir: BorrowedFd<'_>) -> Result<bool, Errno> {
    Ok(list_names(dir)?.is_empty())
}

/// Empties directory `dir` recursively, never following a symlink: subdirectories are opened
/// with `O_NOFOLLOW` relative to their parent's fd. `depth_left` bounds the recursion.
pub fn remove_contents(dir: BorrowedFd<'_>, depth_left: usize) -> Result<(), Errno> {
    if depth_left == 0 {
        return Err(Errno::ELOOP);
    }
    // A directory the image made read-only must be writable again to be emptied.
    let _ = chmod_fd(dir, 0o700);
    for name in list_names(dir)? {
        match unlink_at(dir, &name, false) {
            Ok(()) => continue,
            Err(Errno::EISDIR) | Err(Errno::EPERM) => {}
            Err(e) => return Err(e),
        }
        let sub = open_dir_at(dir, &name)?;
        remove_contents(sub.as_fd(), depth_left - 1)?;
        unlink_at(dir, &name, true)?;
    }
    Ok(())
}

/// Renames `from` to `to` in `dir`, failing with EEXIST rather than
/// replacing what is there (renameat2(2) RENAME_NOREPLACE): a directory
/// made under a temporary name appears whole or not at all.
pub fn rename_noreplace(dir: BorrowedFd<'_>, from: &CStr, to: &CStr) -> Result<(), Errno> {
    // SAFETY: both names are NUL-terminated and outlive the call; the
    // syscall takes plain ints and pointers and keeps none of them.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_renameat2,
            dir.as_raw_fd(),
            from.as_ptr(),
            dir.as_raw_fd(),
            to.as_ptr(),
            libc::RENAME_NOREPLACE,
        )
    };
    Errno::result(ret).map(drop)
}

/// Takes flock(2) `LOCK_EX` on `fd` without waiting; false when another
/// open file holds a lock on it.
pub fn try_lock_exclusive(fd: BorrowedFd<'_>) -> Result<bool, Errno> {
    flock(fd, libc::LOCK_EX | libc::LOCK_NB)
}

/// Whether another open file holds a flock(2) lock on `fd`'s file: a
/// shared lock is tried (and dropped again by closing `fd`).
pub fn locked_elsewhere(fd: BorrowedFd<'_>) -> Result<bool, Errno> {
    flock(fd, libc::LOCK_SH | libc::LOCK_NB).map(|taken| !taken)
}

fn flock(fd: BorrowedFd<'_>, operation: i32) -> Result<bool, Errno> {
    loop {
        // SAFETY: flock on a valid fd; no pointers.
        let ret = unsafe { libc::flock(fd.as_raw_fd(), operation) };
        match Errno::result(ret) {
            Ok(_) => return Ok(true),
            Err(Errno::EWOULDBLOCK) => return Ok(false),
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(e),
        }
    }
}
