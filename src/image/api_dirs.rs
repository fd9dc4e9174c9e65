//! The directories liblxc mounts the kernel's file systems on (`/proc`,
//! `/sys`, and `/dev` for lxc.autodev) must be real directories in the
//! image: liblxc refuses to mount through a symlink there ("proc in
//! .../proc was a symbolic link!", "Not a directory - Failed to mount tmpfs")
//! and the start fails with its generic "Failed to setup container". Said
//! up front, in one line, with the fix.

use super::{FileKind, Image};

/// Each directory and what liblxc mounts on it.
const API_DIRS: [(&str, &str); 3] = [
    ("/proc", "proc (lxc.mount.auto)"),
    ("/sys", "sysfs (lxc.mount.auto)"),
    ("/dev", "a tmpfs with the device nodes (lxc.autodev)"),
];

/// The first of them that is not a plain directory in the image, as one
/// line; None when they all are (or are missing: liblxc creates those in
/// the writable layer).
pub fn api_dir_problem(image: &Image) -> Option<String> {
    API_DIRS.iter().find_map(|(dir, what)| {
        let resolved = image.resolve(dir).ok()?;
        if resolved.path != *dir {
            Some(format!(
                "{dir} is a symlink to {} in the image: liblxc mounts {what} on {dir} and \
                 refuses to follow a symlink there; the image needs {dir} as a directory",
                resolved.path
            ))
        } else if resolved.kind != FileKind::Dir {
            Some(format!(
                "{dir} is a {} in the image: liblxc mounts {what} on it; the image needs {dir} \
                 as a directory",
                resolved.kind
            ))
        } else {
            None
        }
    })
}
