//! Re-executing rootrun from a sealed memory file before it puts a process
//! into a container (CVE-2019-5736).
//!
//! A process that enters a container's namespaces while its image is the
//! rootrun binary can be reached by the guest through /proc/PID/exe: guest
//! root could open that file and write the host's rootrun. Run from a copy
//! in a memfd whose seals forbid every write, the file behind
//! /proc/PID/exe is that copy, and nothing written through it can happen.
//! liblxc's own tools do the same (`LXC_MEMFD_REXEC`).

use std::ffi::{CStr, CString, OsString};
use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStringExt;

use nix::errno::Errno;

use super::SysError;

/// The memfd's name: /proc/PID/exe then reads `/memfd:rootrun (deleted)`.
const NAME: &CStr = c"rootrun";

/// Every seal: no write, no resize, and no removing or adding seals.
const SEALS: i32 = libc::F_SEAL_SEAL | libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_WRITE;

/// Whether this process already runs from a sealed memfd.
pub fn running_sealed() -> bool {
    File::open("/proc/self/exe")
        .ok()
        .and_then(|exe| {
            // SAFETY: F_GET_SEALS on a valid fd; no pointers.
            let seals = unsafe { libc::fcntl(exe.as_raw_fd(), libc::F_GET_SEALS) };
            (seals >= 0).then_some(seals)
        })
        .is_some_and(|seals| seals & SEALS == SEALS)
}

/// Replaces this process by the same program with the same arguments and
/// environment, run from a sealed memfd copy of /proc/self/exe. Returns
/// only on failure.
pub fn reexec_sealed() -> SysError {
    match copy_to_sealed_memfd() {
        Ok(memfd) => exec(&memfd),
        Err(e) => e,
    }
}

fn copy_to_sealed_memfd() -> Result<OwnedFd, SysError> {
    // SAFETY: NAME is NUL-terminated; memfd_create returns a new fd or -1.
    let raw =
        unsafe { libc::memfd_create(NAME.as_ptr(), libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING) };
    let raw = Errno::result(raw).map_err(|e| SysError::new("memfd_create", "rootrun", e))?;
    // SAFETY: a fresh fd that nothing else owns.
    let memfd = unsafe { OwnedFd::from_raw_fd(raw) };
    let mut exe =
        File::open("/proc/self/exe").map_err(|e| SysError::io("open", "/proc/self/exe", e))?;
    let mut copy = File::from(memfd);
    io::copy(&mut exe, &mut copy).map_err(|e| SysError::io("copy", "/proc/self/exe", e))?;
    // SAFETY: F_ADD_SEALS on a valid fd with an int argument.
    let sealed = unsafe { libc::fcntl(copy.as_raw_fd(), libc::F_ADD_SEALS, SEALS) };
    Errno::result(sealed).map_err(|e| SysError::new("seal", "memfd:rootrun", e))?;
    Ok(copy.into())
}

fn exec(memfd: &OwnedFd) -> SysError {
    let to_c = |s: OsString| CString::new(s.into_vec()).ok();
    let args: Option<Vec<CString>> = std::env::args_os().map(to_c).collect();
    let env: Option<Vec<CString>> = std::env::vars_os()
        .map(|(k, v)| {
            let mut kv = k.into_vec();
            kv.push(b'=');
            kv.extend(v.into_vec());
            CString::new(kv).ok()
        })
        .collect();
    let (Some(args), Some(env)) = (args, env) else {
        return SysError::new("re-execute", "/proc/self/exe", Errno::EINVAL);
    };
    // fexecve goes through /proc/self/fd; with the memfd close-on-exec the
    // kernel still reads it (execveat with AT_EMPTY_PATH).
    let err = match nix::unistd::fexecve(memfd, &args, &env) {
        Err(e) => e,
        Ok(never) => match never {},
    };
    SysError::new("re-execute from a sealed memfd", "/proc/self/exe", err)
}
