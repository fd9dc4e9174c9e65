//! Which QEMU user-mode emulator runs the image, and how it maps host
//! real-time signals onto guest ones.
//!
//! qemu-user needs some host real-time signals for itself, so a host signal
//! N reaches the guest as a lower number. The offset changed over QEMU's
//! history (linux-user/signal.c, its `host_to_target_signal_table` set up):
//! 5.0 to 8.1 deliver host N as guest N-2, 8.2 to 9.2 as N-3, 10.0 and later
//! as N-4 (9.2 added `-t`/`QEMU_RTSIG_MAP` to choose the mapping).
//! Distributions patch QEMU, so `--halt-signal` overrides whatever this
//! module concludes.

use std::io::Read;
use std::os::fd::AsFd;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};

use serde::Serialize;

/// `qemu-ARCH --version`'s "version X.Y.Z".
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct QemuVersion {
    pub major: u32,
    pub minor: u32,
    pub patch: u32,
}

impl std::fmt::Display for QemuVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)
    }
}

/// The first "version X.Y[.Z]" in `qemu-ARCH --version`'s output.
pub fn parse_version(text: &str) -> Option<QemuVersion> {
    let rest = text.split("version ").nth(1)?;
    let number = rest
        .split(|c: char| !(c.is_ascii_digit() || c == '.'))
        .next()?;
    let mut parts = number.split('.').map(str::parse::<u32>);
    let major = parts.next()?.ok()?;
    let minor = parts.next()?.ok()?;
    let patch = parts.next().and_then(Result::ok).unwrap_or(0);
    Some(QemuVersion {
        major,
        minor,
        patch,
    })
}

/// How many numbers lower a host real-time signal arrives in the guest,
/// for the QEMU versions whose mapping is known (5.0 and later).
pub fn rt_signal_shift(version: QemuVersion) -> Option<i32> {
    let v = (version.major, version.minor);
    match v {
        _ if v < (5, 0) => None,
        _ if v < (8, 2) => Some(2),
        _ if v < (10, 0) => Some(3),
        _ => Some(4),
    }
}

/// Whether this QEMU's clone(2) takes `CLONE_PIDFD` when it forks, which
/// glibc's pidfd_spawn() needs (systemd 256 and later start every service
/// through it). QEMU's linux-user `do_fork()` returns EINVAL for any flag
/// outside `CLONE_OPTIONAL_FORK_FLAGS`: 7.2's list lacks `CLONE_PIDFD`
/// (so every earlier one does), 10.0's has it (both read in Debian's
/// sources and measured). Versions in between are not checked: None.
pub fn clone_pidfd(version: QemuVersion) -> Option<bool> {
    match (version.major, version.minor) {
        v if v < (8, 0) => Some(false),
        v if v >= (10, 0) => Some(true),
        _ => None,
    }
}

/// Runs the emulator's `--version` (symlinks resolved: Debian's
/// `/usr/libexec/qemu-binfmt/ARCH-binfmt-P` refuses to run under that name)
/// and reads its version. None when it cannot be run or does not say.
pub fn probe_version(interpreter: &Path) -> Option<QemuVersion> {
    let program = std::fs::canonicalize(interpreter).ok()?;
    let mut child = Command::new(program)
        .arg("--version")
        .env_clear()
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    // A real emulator answers at once; anything else gets a second.
    let deadline = Instant::now() + VERSION_DEADLINE;
    let output = child
        .stdout
        .take()
        .and_then(|stdout| read_until_closed(stdout, deadline));
    let exited = output.is_some() && reaped(&mut child, deadline);
    if !exited {
        let _ = child.kill();
        let _ = child.wait();
        return None;
    }
    parse_version(&String::from_utf8_lossy(&output?))
}

/// How long `--version` may take, its output and its exit together.
const VERSION_DEADLINE: Duration = Duration::from_secs(1);
/// More output than any `--version` prints.
const VERSION_MAX: usize = 64 * 1024;

/// What the pipe carries until its writer closes it (the emulator exits),
/// waking on each write rather than on a timer: None past `deadline` or
/// past [`VERSION_MAX`] bytes.
fn read_until_closed(mut pipe: impl Read + AsFd, deadline: Instant) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let left = deadline.checked_duration_since(Instant::now())?;
        let ms = u16::try_from(left.as_millis().max(1)).unwrap_or(u16::MAX);
        let mut fds = [PollFd::new(pipe.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, PollTimeout::from(ms)) {
            Ok(0) => return None,
            Ok(_) => {}
            Err(nix::errno::Errno::EINTR) => continue,
            Err(_) => return None,
        }
        match pipe.read(&mut chunk) {
            Ok(0) => return Some(out),
            Ok(n) if out.len() + n <= VERSION_MAX => out.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            _ => return None,
        }
    }
}

/// Whether `child`, whose output has ended, exits by `deadline`: it
/// normally already has, so the first look answers.
fn reaped(child: &mut Child, deadline: Instant) -> bool {
    loop {
        match child.try_wait() {
            Ok(Some(_)) => return true,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(1)),
            _ => return false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(major: u32, minor: u32, patch: u32) -> QemuVersion {
        QemuVersion {
            major,
            minor,
            patch,
        }
    }

    #[test]
    fn versions_are_read_from_debian_and_upstream_banners() {
        let debian12 = "qemu-aarch64 version 7.2.22 (Debian 1:7.2+dfsg-7+deb12u18+b3)\n\
                        Copyright (c) 2003-2022 Fabrice Bellard and the QEMU Project developers\n";
        assert_eq!(parse_version(debian12), Some(v(7, 2, 22)));
        assert_eq!(
            parse_version("qemu-aarch64 version 10.0.3 (Debian 1:10.0.3+ds-1)"),
            Some(v(10, 0, 3))
        );
        assert_eq!(parse_version("qemu-arm version 9.2\n"), Some(v(9, 2, 0)));
        assert_eq!(parse_version("no version here"), None);
        assert_eq!(parse_version(""), None);
    }

    #[test]
    fn the_shift_follows_qemus_history() {
        assert_eq!(rt_signal_shift(v(4, 2, 1)), None);
        assert_eq!(rt_signal_shift(v(5, 0, 0)), Some(2));
        assert_eq!(rt_signal_shift(v(7, 2, 22)), Some(2));
        assert_eq!(rt_signal_shift(v(8, 1, 5)), Some(2));
        assert_eq!(rt_signal_shift(v(8, 2, 0)), Some(3));
        assert_eq!(rt_signal_shift(v(9, 2, 4)), Some(3));
        assert_eq!(rt_signal_shift(v(10, 0, 13)), Some(4));
        assert_eq!(rt_signal_shift(v(11, 1, 0)), Some(4));
    }

    #[test]
    fn clone_pidfd_is_known_for_the_versions_checked() {
        assert_eq!(clone_pidfd(v(7, 2, 22)), Some(false));
        assert_eq!(clone_pidfd(v(5, 2, 0)), Some(false));
        assert_eq!(clone_pidfd(v(8, 2, 0)), None);
        assert_eq!(clone_pidfd(v(9, 2, 4)), None);
        assert_eq!(clone_pidfd(v(10, 0, 13)), Some(true));
        assert_eq!(clone_pidfd(v(11, 0, 0)), Some(true));
    }

    #[test]
    fn the_installed_emulator_reports_a_version() {
        // Debian's qemu-user-static (12) or qemu-user (13) is set up on
        // every machine that runs the suite (tests/setup-host.sh).
        let found = ["/usr/bin/qemu-aarch64-static", "/usr/bin/qemu-aarch64"]
            .iter()
            .find(|p| Path::new(p).exists())
            .copied();
        let path =
            found.expect("no qemu-aarch64 emulator installed (tests/setup-host.sh installs it)");
        let version = probe_version(Path::new(path));
        assert!(version.is_some_and(|v| v.major >= 5), "{path}: {version:?}");
        assert_eq!(probe_version(Path::new("/nonexistent/qemu")), None);
    }

    /// A stand-in emulator: a shell script with `body`.
    fn script(dir: &Path, name: &str, body: &str) -> std::path::PathBuf {
        use std::os::unix::fs::PermissionsExt;
        let path = dir.join(name);
        std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).expect("write script");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        path
    }

    #[test]
    fn a_version_is_read_when_the_program_ends_and_a_hung_one_is_given_up() {
        let dir = std::env::temp_dir().join(format!("rootrun-qemu-version-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("mkdir");
        let quick = script(&dir, "quick", "echo 'qemu-aarch64 version 9.2.1 (x)'");
        assert_eq!(probe_version(&quick), Some(v(9, 2, 1)));
        // Output, then no end: the pipe stays open.
        let hung = script(&dir, "hung", "echo 'qemu version 9.2.1'; exec sleep 30");
        // Its output closed, but the program still running.
        let lingering = script(
            &dir,
            "lingering",
            "echo 'qemu version 9.2.1'; exec >&-; exec sleep 30",
        );
        for program in [hung, lingering] {
            let started = Instant::now();
            assert_eq!(probe_version(&program), None, "{}", program.display());
            let took = started.elapsed();
            assert!(
                took < Duration::from_secs(10),
                "{}: {took:?}",
                program.display()
            );
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}
