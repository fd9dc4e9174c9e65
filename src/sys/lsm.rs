//! Which Linux security modules confine processes on this host, as far as
//! liblxc's choices depend on them.

use std::path::Path;

/// The host's AppArmor and SELinux state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Lsm {
    /// AppArmor is enabled in the kernel (Debian's and Ubuntu's defaults).
    pub apparmor: bool,
    /// `apparmor_parser` is installed: liblxc needs it to load the profile
    /// it generates for a container.
    pub apparmor_parser: bool,
    /// SELinux is enabled (enforcing or permissive; Fedora's default).
    pub selinux: bool,
}

/// Reads the host's state from sysfs (Documentation/admin-guide/LSM/).
pub fn detect() -> Lsm {
    // The very file liblxc's apparmor_enabled() reads: rootrun's choice
    // must match the one liblxc makes.
    let apparmor = std::fs::read_to_string("/sys/module/apparmor/parameters/enabled")
        .is_ok_and(|text| text.trim() == "Y");
    let apparmor_parser = ["/sbin/apparmor_parser", "/usr/sbin/apparmor_parser"]
        .iter()
        .any(|path| Path::new(path).exists());
    let selinux = Path::new("/sys/fs/selinux/enforce").exists();
    Lsm {
        apparmor,
        apparmor_parser,
        selinux,
    }
}
