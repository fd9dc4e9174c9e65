//! Which init system an image boots, told from the file `/sbin/init`
//! resolves to (and, for runit, from its files): that decides how rootrun
//! asks it to halt.

use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum InitFlavor {
    BusyBox,
    Systemd,
    /// OpenWrt's procd.
    Procd,
    /// openrc-init, OpenRC's own PID 1 (not OpenRC under sysvinit).
    OpenRc,
    SysVinit,
    /// runit (`runit-init`, Void Linux and Debian's runit-init).
    Runit,
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
            InitFlavor::Runit => "runit",
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
            // Debian's runit-init package makes /sbin/init a link to it.
            "runit-init" | "runit" => InitFlavor::Runit,
            // sysvinit installs itself as /sbin/init, a real file (under
            // /usr/sbin once /sbin is a link to usr/sbin, as in Debian 12).
            "init" if matches!(path, "/sbin/init" | "/usr/sbin/init") => InitFlavor::SysVinit,
            _ => InitFlavor::Other,
        }
    }

    /// The flavour once the image's other files are known: runit's stage
    /// scripts (runit(8): /etc/runit/1, 2 and 3) make an init whose file
    /// name told nothing runit; OpenWrt's /sbin/init is a file of procd's
    /// own (its `initd`, which runs preinit and then execs /sbin/procd as
    /// PID 1), not sysvinit's, in an image that has /sbin/procd.
    /// `exists` tells whether a path is in the image; it is asked only
    /// what this flavour needs (every lookup costs metadata blocks).
    pub fn refined(self, exists: impl Fn(&str) -> bool) -> Self {
        match self {
            InitFlavor::Other if RUNIT_STAGES.iter().all(|stage| exists(stage)) => {
                InitFlavor::Runit
            }
            InitFlavor::SysVinit if exists(PROCD) => InitFlavor::Procd,
            other => other,
        }
    }

    /// The signal that makes this init power off cleanly, and the one
    /// rootrun falls back to when its request cannot be made:
    /// BusyBox init powers off on SIGUSR2; so does procd (its signal.c:
    /// SIGUSR2 and SIGPWR are poweroff, SIGUSR1 halt, SIGTERM and SIGINT
    /// reboot; it then runs inittab's `shutdown` action, `rcS K shutdown`,
    /// and ends its processes); systemd on SIGRTMIN+4 (systemd(1),
    /// "Signals"); runit (Debian's, runit(8)) runs stage 3 on SIGPWR;
    /// openrc-init runs the `shutdown` runlevel and halts on SIGPWR or
    /// SIGTERM (its dispatch_signal; SIGINT reboots); sysvinit and unknown
    /// inits get SIGPWR, liblxc's default.
    pub fn halt_signal(self) -> &'static str {
        match self {
            InitFlavor::BusyBox | InitFlavor::Procd => "SIGUSR2",
            InitFlavor::Systemd => "SIGRTMIN+4",
            InitFlavor::OpenRc | InitFlavor::SysVinit | InitFlavor::Runit | InitFlavor::Other => {
                "SIGPWR"
            }
        }
    }

    /// Whether this init reads /etc/inittab: BusyBox init, sysvinit and
    /// procd do (and an unknown init may); systemd, openrc-init and runit
    /// never open it, whatever a leftover file says.
    pub fn reads_inittab(self) -> bool {
        !matches!(
            self,
            InitFlavor::Systemd | InitFlavor::OpenRc | InitFlavor::Runit
        )
    }

    /// How rootrun asks this init to halt. sysvinit reacts to SIGPWR with
    /// inittab's `powerfail` action, which runs a script Debian no longer
    /// ships (/etc/init.d/powerfail): nothing halts. `telinit 0` instead
    /// writes a runlevel request to init's FIFO, which every sysvinit
    /// reads (initctl(5)).
    pub fn halt_method(self) -> HaltMethod {
        match self {
            InitFlavor::SysVinit => HaltMethod::Runlevel0,
            other => HaltMethod::Signal(other.halt_signal()),
        }
    }
}

/// runit's stage scripts (runit(8)).
const RUNIT_STAGES: [&str; 3] = ["/etc/runit/1", "/etc/runit/2", "/etc/runit/3"];
/// OpenWrt's PID 1.
const PROCD: &str = "/sbin/procd";
/// OpenRC's service manager, run by sysvinit's inittab.
const OPENRC: &str = "/sbin/openrc";

/// What starts the services of an init that leaves them to another
/// program; only told where it changes what a user sees.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Services {
    /// OpenRC under sysvinit, as Debian's `openrc` package sets it up:
    /// inittab's /etc/init.d/rc becomes its wrapper (`openrc default`,
    /// `openrc off && openrc shutdown` for runlevel 0). Stopped as
    /// sysvinit: its runlevel 0 is OpenRC's shutdown.
    OpenRc,
}

impl std::fmt::Display for Services {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Services::OpenRc => "OpenRC",
        })
    }
}

impl Services {
    /// The service manager of an init of `flavor` in an image where
    /// `exists` tells which paths are (asked only for sysvinit: /sbin/openrc).
    /// openrc-init is OpenRC itself.
    pub fn of(flavor: InitFlavor, exists: impl Fn(&str) -> bool) -> Option<Self> {
        (flavor == InitFlavor::SysVinit && exists(OPENRC)).then_some(Services::OpenRc)
    }
}

/// How a booted init is asked to halt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum HaltMethod {
    /// A signal to init (a name as `lxc.signal.halt` takes it).
    Signal(&'static str),
    /// A runlevel 0 request on /run/initctl (sysvinit), as `telinit 0`.
    Runlevel0,
}

/// The FIFO sysvinit reads requests from (initctl(5)); /dev/initctl is a
/// link to it on current systems.
pub const INITCTL: &str = "/run/initctl";

impl HaltMethod {
    /// For `inspect` and `--dry-run`: "signal SIGUSR2", "runlevel 0 request
    /// on /run/initctl (...)".
    pub fn describe(self) -> String {
        match self {
            HaltMethod::Signal(signal) => format!("signal {signal}"),
            HaltMethod::Runlevel0 => {
                format!("runlevel 0 request on {INITCTL} (written again until init opens it)")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flavor_follows_the_resolved_file_name() {
        for (path, flavor) in [
            ("/bin/busybox", InitFlavor::BusyBox),
            ("/usr/lib/systemd/systemd", InitFlavor::Systemd),
            ("/sbin/procd", InitFlavor::Procd),
            ("/sbin/init", InitFlavor::SysVinit),
            ("/usr/sbin/init", InitFlavor::SysVinit),
            ("/sbin/runit-init", InitFlavor::Runit),
            ("/sbin/openrc-init", InitFlavor::OpenRc),
            ("/usr/bin/tini", InitFlavor::Other),
            // An init called `init` elsewhere is not sysvinit's.
            ("/opt/init", InitFlavor::Other),
        ] {
            assert_eq!(InitFlavor::from_resolved_path(path), flavor, "{path}");
        }
        assert_eq!(InitFlavor::BusyBox.halt_signal(), "SIGUSR2");
    }

    /// An image holding `paths`, as `refined` and `Services::of` ask.
    fn image_of<'a>(paths: &'a [&'a str]) -> impl Fn(&str) -> bool + 'a {
        move |path| paths.contains(&path)
    }

    /// For a flavour whose name told all: nothing may be looked up.
    fn nothing(path: &str) -> bool {
        panic!("{path} looked up")
    }

    #[test]
    fn runit_is_told_from_its_stage_scripts() {
        let runit = image_of(&RUNIT_STAGES);
        assert_eq!(InitFlavor::Other.refined(&runit), InitFlavor::Runit);
        assert_eq!(InitFlavor::Other.refined(image_of(&[])), InitFlavor::Other);
        let two = image_of(&RUNIT_STAGES[..2]);
        assert_eq!(InitFlavor::Other.refined(two), InitFlavor::Other);
        // A file name that told already wins.
        assert_eq!(InitFlavor::SysVinit.refined(&runit), InitFlavor::SysVinit);
        for flavor in [
            InitFlavor::BusyBox,
            InitFlavor::Systemd,
            InitFlavor::OpenRc,
            InitFlavor::Runit,
            InitFlavor::Procd,
        ] {
            assert_eq!(flavor.refined(nothing), flavor);
            assert_eq!(Services::of(flavor, nothing), None, "{flavor}");
        }
    }

    #[test]
    fn openwrts_init_is_procd_where_procd_is() {
        let openwrt = image_of(&[PROCD]);
        assert_eq!(InitFlavor::SysVinit.refined(&openwrt), InitFlavor::Procd);
        assert_eq!(
            InitFlavor::SysVinit.refined(image_of(&[])),
            InitFlavor::SysVinit
        );
        // BusyBox's init in an image that also has procd stays BusyBox.
        assert_eq!(InitFlavor::BusyBox.refined(&openwrt), InitFlavor::BusyBox);
        assert_eq!(
            InitFlavor::Procd.halt_method(),
            HaltMethod::Signal("SIGUSR2")
        );
        assert_eq!(
            InitFlavor::OpenRc.halt_method(),
            HaltMethod::Signal("SIGPWR")
        );
    }

    #[test]
    fn openrc_is_told_as_the_services_of_sysvinit_only() {
        let openrc = image_of(&[OPENRC]);
        assert_eq!(
            Services::of(InitFlavor::SysVinit, &openrc),
            Some(Services::OpenRc)
        );
        assert_eq!(Services::of(InitFlavor::SysVinit, image_of(&[])), None);
        // openrc-init is OpenRC; other inits do not run /etc/init.d/rc.
        for flavor in [InitFlavor::OpenRc, InitFlavor::Runit, InitFlavor::Systemd] {
            assert_eq!(Services::of(flavor, &openrc), None, "{flavor}");
        }
        assert_eq!(Services::OpenRc.to_string(), "OpenRC");
    }

    #[test]
    fn sysvinit_halts_by_request_the_others_by_signal() {
        assert_eq!(InitFlavor::SysVinit.halt_method(), HaltMethod::Runlevel0);
        assert_eq!(
            InitFlavor::Runit.halt_method(),
            HaltMethod::Signal("SIGPWR")
        );
        assert_eq!(
            InitFlavor::Systemd.halt_method(),
            HaltMethod::Signal("SIGRTMIN+4")
        );
        assert_eq!(
            HaltMethod::Runlevel0.describe(),
            "runlevel 0 request on /run/initctl (written again until init opens it)"
        );
    }
}
