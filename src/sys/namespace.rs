//! rootrun's private mount namespace.
//!
//! Every mount rootrun makes lives in a mount namespace of its own with
//! private propagation, so the kernel tears it all down when the last process
//! in it exits, even after SIGKILL (mount_namespaces(7)). This must run before
//! any thread exists: a namespace unshared by one thread is that thread's
//! alone (unshare(2)).

use nix::mount::{mount, MsFlags};
use nix::sched::{unshare, CloneFlags};

use super::SysError;

pub fn enter_private_mount_namespace() -> Result<(), SysError> {
    unshare(CloneFlags::CLONE_NEWNS).map_err(|e| SysError::new("unshare(CLONE_NEWNS)", "/", e))?;
    // Without this, mounts would still propagate back to the host's shared
    // peer groups (systemd makes / shared).
    mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_REC | MsFlags::MS_PRIVATE,
        None::<&str>,
    )
    .map_err(|e| SysError::new("make mounts private under", "/", e))
}
