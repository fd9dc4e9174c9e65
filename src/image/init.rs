//! Which init system an image boots, told from the file `/sbin/init`
//! resolves to: that decides how rootrun asks it to halt.

use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum InitFlavor {
    BusyBox,
    Systemd,
    /// OpenWrt's procd.
    Procd,
    OpenRc,
    SysVinit,
    #[default]
    Other,
}

impl std::fmt::Display for InitFlavor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            InitFlavor::BusyBox => "busybox",
            InitFlavor::Systemd => "systemd",
            InitFlavor::Procd => "procd",
            InitFlavor::OpenRc => "openrc",
            InitFlavor::SysVinit => "sysvinit",
            InitFlavor::Other => "other",
        })
    }
}

impl InitFlavor {
    /// From the in-image path init resolves to (symlinks followed).
    pub fn from_resolved_path(path: &str) -> Self {
        let name = path.rsplit('/').next().unwrap_or_default();
        match name {
            "busybox" => InitFlavor::BusyBox,
            "systemd" => InitFlavor::Systemd,
            "procd" => InitFlavor::Procd,
            "openrc-init" => InitFlavor::OpenRc,
            // sysvinit installs itself as /sbin/init, a real file.
            "init" if path == "/sbin/init" => InitFlavor::SysVinit,
            _ => InitFlavor::Other,
        }
    }

    /// The signal that makes this init power off cleanly:
    /// BusyBox init and procd power off on SIGUSR2; systemd on SIGRTMIN+4
    /// (systemd(1), "Signals"); sysvinit, OpenRC and unknown inits get
    /// SIGPWR, liblxc's default.
    pub fn halt_signal(self) -> &'static str {
        match self {
            InitFlavor::BusyBox | InitFlavor::Procd => "SIGUSR2",
            InitFlavor::Systemd => "SIGRTMIN+4",
            InitFlavor::OpenRc | InitFlavor::SysVinit | InitFlavor::Other => "SIGPWR",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flavor_follows_the_resolved_file_name() {
        assert_eq!(
            InitFlavor::from_resolved_path("/bin/busybox"),
            InitFlavor::BusyBox
        );
        assert_eq!(
            InitFlavor::from_resolved_path("/usr/lib/systemd/systemd"),
            InitFlavor::Systemd
        );
        assert_eq!(
            InitFlavor::from_resolved_path("/sbin/procd"),
            InitFlavor::Procd
        );
        assert_eq!(
            InitFlavor::from_resolved_path("/sbin/init"),
            InitFlavor::SysVinit
        );
        assert_eq!(
            InitFlavor::from_resolved_path("/usr/bin/tini"),
            InitFlavor::Other
        );
        assert_eq!(InitFlavor::BusyBox.halt_signal(), "SIGUSR2");
    }
}
