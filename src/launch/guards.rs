//! What a launch holds, released in reverse order of acquisition: its
//! mounts and its place in the shared NAT network. (The loop device needs
//! no guard of its own once mounted: autoclear detaches it with its last
//! mount; the prefetch child has its own.)

use crate::sys::mount::Mount;
use crate::sys::net::NatUser;

/// One held resource; released when dropped (held only for that).
#[allow(dead_code)]
pub enum Guard {
    Mount(Mount),
    /// Leaves the NAT network (the last user takes it down).
    Nat(NatUser),
}

impl From<Mount> for Guard {
    fn from(mount: Mount) -> Self {
        Guard::Mount(mount)
    }
}

impl From<NatUser> for Guard {
    fn from(user: NatUser) -> Self {
        Guard::Nat(user)
    }
}

/// Guards in acquisition order; released last-first, whatever happened.
#[derive(Default)]
pub struct GuardStack(Vec<Guard>);

impl GuardStack {
    pub fn push(&mut self, guard: impl Into<Guard>) {
        self.0.push(guard.into());
    }
}

impl Drop for GuardStack {
    fn drop(&mut self) {
        // A Vec drops front to back; mounts must go inside-out (the
        // interpreter inside the overlay, the overlay over the SquashFS...),
        // and the network after the container is gone.
        while let Some(guard) = self.0.pop() {
            drop(guard);
        }
    }
}
