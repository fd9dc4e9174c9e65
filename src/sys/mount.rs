//! Mount guards: each mount is undone (lazily, MNT_DETACH) when its guard
//! drops, in reverse order of creation by construction of the owners.

use std::path::{Path, PathBuf};

use nix::mount::{mount, umount2, MntFlags, MsFlags};

use super::SysError;

/// A mount point that rootrun created; unmounted on drop.
#[derive(Debug)]
pub struct Mount {
    target: PathBuf,
}

impl Mount {
    pub fn target(&self) -> &Path {
        &self.target
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        // Errors are ignored: the private namespace disappears with rootrun
        // anyway, and a drop must never panic.
        let _ = umount2(&self.target, MntFlags::MNT_DETACH);
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

/// A private tmpfs, mode 0700.
pub fn tmpfs(target: &Path) -> Result<Mount, SysError> {
    do_mount(
        "mount tmpfs on",
        Path::new("tmpfs"),
        target,
        "tmpfs",
        MsFlags::MS_NODEV | MsFlags::MS_NOSUID,
        Some("mode=0700"),
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
