//! The container's mounted root as `image::entry` sees it: every lookup
//! resolves inside it (openat2 with RESOLVE_IN_ROOT, in `sys::rootfs`).

use std::io::Read;
use std::os::fd::OwnedFd;
use std::path::Path;

use crate::image::entry::{ExecRoot, Executable};
use crate::sys::rootfs;

pub struct MountedRoot<'a>(pub &'a OwnedFd);

impl ExecRoot for MountedRoot<'_> {
    fn executable(&self, path: &Path) -> Executable {
        match rootfs::check_executable(self.0, path) {
            rootfs::Executable::Ok => Executable::Ok,
            rootfs::Executable::Missing => Executable::Missing,
            rootfs::Executable::NotExecutable => Executable::NotExecutable,
        }
    }

    fn head(&self, path: &Path, max: usize) -> Option<Vec<u8>> {
        let fd = rootfs::open_in_root(self.0, path, libc::O_RDONLY).ok()?;
        let mut head = Vec::new();
        std::fs::File::from(fd)
            .take(max as u64)
            .read_to_end(&mut head)
            .ok()?;
        Some(head)
    }
}
