//! Re-executing rootrun from a copy of itself that no process can write,
//! before it puts a process into a container (CVE-2019-5736).
//!
//! A process that enters a container's namespaces while its image is the
//! rootrun binary can be reached by the guest through /proc/PID/exe: guest
//! root could open that file and, once the process is gone, write the
//! host's rootrun through the open file. rootrun therefore re-executes
//! itself first from one of:
//!
//! - the binary on a detached, read-only bind mount of its own (open_tree(2)
//!   with OPEN_TREE_CLONE, mount_setattr(2) MOUNT_ATTR_RDONLY, then
//!   execveat(2) on it): an open for writing fails with EROFS, whoever
//!   tries, and nothing is copied (Linux 5.12+);
//! - else a memfd copy sealed against every write (`F_SEAL_WRITE`, `SHRINK`,
//!   `GROW`, `SEAL`), as liblxc's tools do with `LXC_MEMFD_REXEC`.

use std::ffi::{CStr, CString, OsString};
use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStringExt;
use std::path::Path;

use nix::errno::Errno;

use super::SysError;

/// The memfd's name: /proc/PID/exe then reads `/memfd:rootrun (deleted)`.
const NAME: &CStr = c"rootrun";

/// Set in the re-executed process's environment: a second pass that is
/// still not protected is an error, never a loop.
pub const MARKER: &str = "ROOTRUN_REEXECUTED";

/// Every seal: no write, no resize, and no removing or adding seals.
const SEALS: i32 = libc::F_SEAL_SEAL | libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_WRITE;

const SELF_EXE: &str = "/proc/self/exe";

/// Whether this process's program file cannot be written: it is on a
/// read-only mount, or a sealed memfd.
pub fn running_protected() -> bool {
    let read_only_mount = nix::sys::statvfs::statvfs(SELF_EXE)
        .is_ok_and(|fs| fs.flags().contains(nix::sys::statvfs::FsFlags::ST_RDONLY));
    read_only_mount || running_sealed()
}

fn running_sealed() -> bool {
    File::open(SELF_EXE)
        .ok()
        .and_then(|exe| {
            // SAFETY: F_GET_SEALS on a valid fd; no pointers.
            let seals = unsafe { libc::fcntl(exe.as_raw_fd(), libc::F_GET_SEALS) };
            (seals >= 0).then_some(seals)
        })
        .is_some_and(|seals| seals & SEALS == SEALS)
}

/// Replaces this process by the same program with the same arguments and
/// environment (plus `MARKER`), run from a copy that cannot be written.
/// Returns only on failure.
pub fn reexec_protected() -> SysError {
    if std::env::var_os(MARKER).is_some() {
        return SysError::new(
            "re-executed, yet still writable through",
            SELF_EXE,
            Errno::EPERM,
        );
    }
    let program = match super::mount::read_only_file_clone(Path::new(SELF_EXE)) {
        Ok(clone) => clone,
        // An older kernel, or mounts not allowed here: a sealed copy.
        Err(_) => match copy_to_sealed_memfd() {
            Ok(memfd) => memfd,
            Err(e) => return e,
        },
    };
    exec(&program)
}

fn copy_to_sealed_memfd() -> Result<OwnedFd, SysError> {
    // SAFETY: NAME is NUL-terminated; memfd_create returns a new fd or -1.
    let raw =
        unsafe { libc::memfd_create(NAME.as_ptr(), libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING) };
    let raw = Errno::result(raw).map_err(|e| SysError::new("memfd_create", "rootrun", e))?;
    // SAFETY: a fresh fd that nothing else owns.
    let memfd = unsafe { OwnedFd::from_raw_fd(raw) };
    let mut exe = File::open(SELF_EXE).map_err(|e| SysError::io("open", SELF_EXE, e))?;
    let mut copy = File::from(memfd);
    io::copy(&mut exe, &mut copy).map_err(|e| SysError::io("copy", SELF_EXE, e))?;
    // SAFETY: F_ADD_SEALS on a valid fd with an int argument.
    let sealed = unsafe { libc::fcntl(copy.as_raw_fd(), libc::F_ADD_SEALS, SEALS) };
    Errno::result(sealed).map_err(|e| SysError::new("seal", "memfd:rootrun", e))?;
    Ok(copy.into())
}

fn exec(program: &OwnedFd) -> SysError {
    let to_c = |s: OsString| CString::new(s.into_vec()).ok();
    let args: Option<Vec<CString>> = std::env::args_os().map(to_c).collect();
    let env: Option<Vec<CString>> = std::env::vars_os()
        .map(|(k, v)| {
            let mut kv = k.into_vec();
            kv.push(b'=');
            kv.extend(v.into_vec());
            CString::new(kv).ok()
        })
        .chain(std::iter::once(CString::new(format!("{MARKER}=1")).ok()))
        .collect();
    let (Some(args), Some(env)) = (args, env) else {
        return SysError::new("re-execute", SELF_EXE, Errno::EINVAL);
    };
    // execveat(fd, "", AT_EMPTY_PATH): an O_PATH fd (the clone) will do.
    let err = match nix::unistd::fexecve(program, &args, &env) {
        Err(e) => e,
        Ok(never) => match never {},
    };
    SysError::new("re-execute from a protected copy", SELF_EXE, err)
}
