//! systemd as init under QEMU user-mode emulation, and what rootrun does
//! about the calls qemu-user cannot emulate (README, "systemd 254 and later
//! under emulation").
//!
//! Two calls fail, both inside QEMU's linux-user `do_fork()`, which returns
//! EINVAL for a fork whose clone flags are not in its
//! `CLONE_OPTIONAL_FORK_FLAGS` before the host kernel sees anything (so no
//! seccomp rule or host setting changes the answer):
//!
//! - credentials: systemd sets up a unit's credentials
//!   (`ImportCredential=`, `LoadCredential=`, `SetCredential=`) in a child
//!   forked with `CLONE_NEWNS` (`exec_setup_credentials()` in
//!   src/core/exec-credential.c, through `safe_fork(FORK_NEW_MOUNTNS)`), and
//!   falls back to a plain directory only when that fork fails with a
//!   "not supported" or privilege errno, not on EINVAL. No QEMU takes
//!   `CLONE_NEWNS` for a fork (7.2 and 10.0 checked), so every unit with
//!   credentials fails "at step CREDENTIALS". systemd 254 gave journald,
//!   the gettys and tmpfiles `ImportCredential=` lines. An empty assignment
//!   resets each list (systemd.exec(5)), so a drop-in in the writable layer
//!   turns them off for this run: nothing passes credentials to a rootrun
//!   container anyway.
//! - pidfd_spawn: systemd 256 and later start every unit's sd-executor with
//!   glibc's pidfd_spawn() (`posix_spawn_wrapper()` in
//!   src/basic/process-util.c), which forks with `CLONE_PIDFD`; its fallback
//!   only drops `CLONE_INTO_CGROUP`. QEMU 7.2 rejects `CLONE_PIDFD`, so no
//!   unit starts ("Failed to spawn executor: Invalid argument"), and no
//!   drop-in helps: rootrun says so before the boot.

use serde::Serialize;

use crate::arch::{clone_pidfd, QemuVersion};

/// The first systemd whose own units import credentials (254's NEWS:
/// `ImportCredential=`).
pub const CREDENTIALS_SINCE: u32 = 254;

/// The first systemd that spawns through pidfd_spawn() (256's NEWS).
pub const PIDFD_SPAWN_SINCE: u32 = 256;

/// systemd's units that carry credential settings in 257 (its `units/`
/// directory; Debian 13 ships them unchanged): the ones a boot may start.
pub const CREDENTIAL_UNITS: [&str; 18] = [
    "console-getty.service",
    "container-getty@.service",
    "getty@.service",
    "serial-getty@.service",
    "systemd-firstboot.service",
    "systemd-homed-firstboot.service",
    "systemd-journald.service",
    "systemd-network-generator.service",
    "systemd-networkd.service",
    "systemd-resolved.service",
    "systemd-sysctl.service",
    "systemd-sysusers.service",
    "systemd-tmpfiles-clean.service",
    "systemd-tmpfiles-setup-dev-early.service",
    "systemd-tmpfiles-setup-dev.service",
    "systemd-tmpfiles-setup.service",
    "systemd-udev-load-credentials.service",
    "systemd-vconsole-setup.service",
];

/// The file name of rootrun's drop-in in each unit's `.d` directory.
pub const DROP_IN_NAME: &str = "zz-rootrun-qemu-user.conf";

/// Where the drop-ins go inside the container (the writable layer: the
/// image is never written).
pub const DROP_IN_DIR: &str = "/etc/systemd/system";

/// What every drop-in says.
pub const DROP_IN: &str = "\
# Written by rootrun into this run's writable layer, not the image:
# under qemu-user, systemd cannot set up credentials (it forks with
# CLONE_NEWNS, which QEMU rejects with EINVAL), so this unit gets none.
[Service]
ImportCredential=
LoadCredential=
LoadCredentialEncrypted=
SetCredential=
SetCredentialEncrypted=
";

/// A systemd that boots under emulation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EmulatedSystemd {
    /// systemd's major version.
    pub version: u32,
    /// The emulator's, when it told.
    pub qemu: Option<QemuVersion>,
    /// Units whose credentials a drop-in resets (empty before 254).
    pub drop_ins: Vec<String>,
    /// Why this emulator cannot start systemd's units at all, in one line.
    pub limitation: Option<String>,
}

impl EmulatedSystemd {
    /// What rootrun does, for the banner, `inspect` and `--dry-run`.
    pub fn describe(&self) -> String {
        let mut text = format!("systemd {} under emulation", self.version);
        if !self.drop_ins.is_empty() {
            text.push_str(&format!(
                ": credentials of {} units turned off by drop-ins in the writable layer \
                 ({DROP_IN_DIR}/UNIT.d/{DROP_IN_NAME}), as qemu-user cannot fork with CLONE_NEWNS",
                self.drop_ins.len()
            ));
        }
        text
    }
}

/// What an emulated systemd `version` needs from rootrun, and what
/// cannot work under QEMU `qemu`; None when init is not a systemd
/// rootrun knows the version of, or runs natively.
pub fn emulated_systemd(
    version: Option<u32>,
    emulated: bool,
    qemu: Option<QemuVersion>,
) -> Option<EmulatedSystemd> {
    let version = version.filter(|_| emulated)?;
    let drop_ins = if version >= CREDENTIALS_SINCE {
        CREDENTIAL_UNITS.iter().map(|u| (*u).to_owned()).collect()
    } else {
        Vec::new()
    };
    let limitation = match qemu {
        Some(q) if version >= PIDFD_SPAWN_SINCE && clone_pidfd(q) == Some(false) => Some(format!(
            "systemd {version} cannot start any unit under QEMU {q}: it spawns them with \
             pidfd_spawn(), i.e. clone(CLONE_PIDFD), which QEMU 7.2 and older reject with \
             EINVAL (\"Failed to spawn executor: Invalid argument\"); QEMU 10 works \
             (Debian 13's qemu-user)"
        )),
        _ => None,
    };
    Some(EmulatedSystemd {
        version,
        qemu,
        drop_ins,
        limitation,
    })
}

/// The path of the drop-in for `unit` inside the container.
pub fn drop_in_path(unit: &str) -> std::path::PathBuf {
    std::path::Path::new(DROP_IN_DIR)
        .join(format!("{unit}.d"))
        .join(DROP_IN_NAME)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(major: u32, minor: u32) -> Option<QemuVersion> {
        Some(QemuVersion {
            major,
            minor,
            patch: 0,
        })
    }

    #[test]
    fn a_native_or_unknown_systemd_gets_nothing() {
        assert_eq!(emulated_systemd(Some(257), false, None), None);
        assert_eq!(emulated_systemd(None, true, q(10, 0)), None);
    }

    #[test]
    fn debian_12s_systemd_needs_nothing_and_works_under_qemu_7_2() {
        let found = emulated_systemd(Some(252), true, q(7, 2)).expect("emulated");
        assert!(found.drop_ins.is_empty());
        assert_eq!(found.limitation, None);
        assert_eq!(found.describe(), "systemd 252 under emulation");
    }

    #[test]
    fn systemd_257_gets_drop_ins_and_works_under_qemu_10() {
        let found = emulated_systemd(Some(257), true, q(10, 0)).expect("emulated");
        assert_eq!(found.drop_ins.len(), CREDENTIAL_UNITS.len());
        assert!(found
            .drop_ins
            .contains(&"systemd-journald.service".to_owned()));
        assert_eq!(found.limitation, None);
        assert!(found.describe().contains("credentials of 18 units"));
    }

    #[test]
    fn systemd_257_under_qemu_7_2_is_a_stated_limitation() {
        let found = emulated_systemd(Some(257), true, q(7, 2)).expect("emulated");
        let line = found.limitation.expect("a limitation");
        assert!(line.contains("systemd 257 cannot start any unit under QEMU 7.2.0"));
        assert!(line.contains("QEMU 10 works"));
        assert!(!line.contains('\n'));
        // 254 and 255 spawn with posix_spawn() without CLONE_PIDFD.
        let older = emulated_systemd(Some(255), true, q(7, 2)).expect("emulated");
        assert_eq!(older.limitation, None);
        assert!(!older.drop_ins.is_empty());
        // Versions nobody checked get no claim either way.
        let unknown = emulated_systemd(Some(257), true, q(9, 2)).expect("emulated");
        assert_eq!(unknown.limitation, None);
        assert_eq!(
            emulated_systemd(Some(257), true, None)
                .expect("emulated")
                .limitation,
            None
        );
    }

    #[test]
    fn drop_ins_reset_every_credential_setting() {
        for key in [
            "ImportCredential=\n",
            "LoadCredential=\n",
            "LoadCredentialEncrypted=\n",
            "SetCredential=\n",
            "SetCredentialEncrypted=\n",
        ] {
            assert!(DROP_IN.contains(key), "{key}");
        }
        assert_eq!(
            drop_in_path("getty@.service"),
            std::path::Path::new("/etc/systemd/system/getty@.service.d/zz-rootrun-qemu-user.conf")
        );
    }
}
