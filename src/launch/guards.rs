//! The mounts a launch holds, released in reverse order of acquisition.
//! (The loop device needs no guard of its own once mounted: autoclear
//! detaches it with its last mount; the prefetch child has its own.)

use crate::sys::mount::Mount;

/// Mounts in acquisition order; unmounted last-first, whatever happened.
#[derive(Default)]
pub struct GuardStack(Vec<Mount>);

impl GuardStack {
    pub fn push(&mut self, mount: Mount) {
        self.0.push(mount);
    }
}

impl Drop for GuardStack {
    fn drop(&mut self) {
        // A Vec drops front to back; mounts must go inside-out (the
        // interpreter inside the overlay, the overlay over the SquashFS...).
        while let Some(mount) = self.0.pop() {
            drop(mount);
        }
    }
}
