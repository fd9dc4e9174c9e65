//! Everything that changes kernel state: the private mount namespace, loop
//! devices, mounts, capability checks and lookups inside a container root.
//! `unsafe` lives here and in `src/lxc/` only.

pub mod binfmt_probe;
pub mod cgroup;
pub mod detached;
pub mod fsops;
pub mod interrupt;
pub mod loopdev;
pub mod lsm;
pub mod memfd;
pub mod mount;
pub mod namespace;
pub mod net;
pub mod privileges;
pub mod proc;
pub mod process;
pub mod rootfs;
pub mod tty;
pub mod userns;

use std::path::{Path, PathBuf};

/// A failed system call, naming the operation and its path.
#[derive(Debug, thiserror::Error)]
#[error("{op} {}: {errno}", path.display())]
pub struct SysError {
    pub op: &'static str,
    pub path: PathBuf,
    pub errno: nix::errno::Errno,
}

impl SysError {
    pub fn new(op: &'static str, path: impl AsRef<Path>, errno: nix::errno::Errno) -> Self {
        SysError {
            op,
            path: path.as_ref().to_path_buf(),
            errno,
        }
    }

    pub fn io(op: &'static str, path: impl AsRef<Path>, err: std::io::Error) -> Self {
        let errno = nix::errno::Errno::from_raw(err.raw_os_error().unwrap_or(libc::EIO));
        SysError::new(op, path, errno)
    }
}
