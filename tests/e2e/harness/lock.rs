//! Serializing tests that change host-global state with the tests that
//! depend on it, across processes: two suites (two checkouts, a developer
//! and CI) may run on one machine at once. A test that changes binfmt_misc
//! holds an exclusive flock(2) on `LOCK_FILE`, every other test a shared
//! one. flock locks belong to the open file description, so two frames of
//! one process would exclude each other the same way (they also run one at
//! a time, frame.rs).

use std::fs::{File, OpenOptions};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use nix::fcntl::{Flock, FlockArg};

pub const LOCK_FILE: &str = "/run/lock/rootrun-tests.lock";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// The test relies on host-global state (binfmt_misc handlers).
    Shared,
    /// The test changes it.
    Exclusive,
}

/// A held flock; released (and closed) on drop, even on panic.
pub struct Held {
    _flock: Flock<File>,
}

/// Blocks until `path` is locked with `access`; the file is created if
/// missing (mode 0666 before umask, so a normal user's run can lock it too).
pub fn lock(path: &Path, access: Access) -> Result<Held, String> {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o666)
        .open(path)
        .or_else(|_| File::open(path))
        .map_err(|e| format!("open lock file {}: {e}", path.display()))?;
    let arg = match access {
        Access::Shared => FlockArg::LockShared,
        Access::Exclusive => FlockArg::LockExclusive,
    };
    Flock::lock(file, arg)
        .map(|flock| Held { _flock: flock })
        .map_err(|(_, errno)| format!("flock {}: {errno}", path.display()))
}

/// The tests of `--net` (the NAT network, rootrun0, is one per host) hold
/// this one exclusively besides the host lock: they run one at a time
/// across processes, while every other test goes on beside them.
pub const NET_LOCK_FILE: &str = "/run/lock/rootrun-net-tests.lock";

/// The network tests' lock.
pub fn network() -> Result<Held, String> {
    lock(Path::new(NET_LOCK_FILE), Access::Exclusive)
}

/// The host lock every frame holds.
pub fn host(access: Access) -> Result<Held, String> {
    lock(Path::new(LOCK_FILE), access)
}
