//! The capabilities rootrun needs, checked up front so that "not root" is one
//! clear message instead of an EPERM from deep inside liblxc.

use caps::{CapSet, Capability};

/// Mounting and namespaces (SYS_ADMIN), pivot_root (SYS_CHROOT), /dev nodes
/// (MKNOD), network namespace (NET_ADMIN), id changes (SETUID, SETGID) and
/// reading root-owned state (DAC_OVERRIDE).
const NEEDED: [Capability; 7] = [
    Capability::CAP_SYS_ADMIN,
    Capability::CAP_SYS_CHROOT,
    Capability::CAP_MKNOD,
    Capability::CAP_NET_ADMIN,
    Capability::CAP_SETUID,
    Capability::CAP_SETGID,
    Capability::CAP_DAC_OVERRIDE,
];

/// The needed capabilities missing from the effective set.
pub fn missing() -> Vec<Capability> {
    NEEDED
        .into_iter()
        .filter(|cap| !caps::has_cap(None, CapSet::Effective, *cap).unwrap_or(false))
        .collect()
}
