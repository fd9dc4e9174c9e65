//! A Debian 12 arm64 root with systemd, booted under QEMU user emulation and
//! stopped by rootrun: systemd reaches multi-user.target and powers off
//! cleanly on rootrun's halt signal. (liblxc's default SIGRTMIN+3 arrives as
//! SIGRTMIN+1 under qemu-user and only isolates rescue.target; LXD never
//! stops such a container.) The root is built once with debootstrap and
//! cached by content (harness/fixtures.rs).

use std::process::Stdio;
use std::time::Duration;

use crate::harness::{rootrun, text, Frame};

const BOOT_LIMIT: Duration = Duration::from_secs(240);

#[test]
fn emulated_systemd_boots_to_multi_user_and_powers_off_on_sigterm() {
    let Some(frame) = Frame::setup("systemd under emulation").emulation().start() else {
        return;
    };
    // Built (minutes) or found in the cache; checked unchanged at the end.
    let Some(tree) = frame.systemd_rootfs("arm64") else {
        return;
    };
    // A stop timeout long enough that a wrong halt signal shows up as a
    // missing poweroff, not as a kill that happens to end the run.
    let mut boot = frame.live(
        rootrun()
            .args(["-q", "--stop-timeout=90", "--rootfs"])
            .arg(&tree),
        Stdio::piped(),
    );
    if !boot.wait_for("Reached target multi-user.target", BOOT_LIMIT) {
        boot.signal(nix::sys::signal::Signal::SIGKILL);
        let (_, seen) = boot.finish(BOOT_LIMIT);
        panic!("systemd did not reach multi-user.target; console:\n{seen}");
    }
    boot.signal(nix::sys::signal::Signal::SIGTERM);
    let (out, seen) = boot.finish(Duration::from_secs(120));
    assert_eq!(out.status.code(), Some(143), "{}", text(&out.stderr));
    assert!(
        seen.contains("Reached target poweroff.target"),
        "systemd did not power off: {seen}"
    );
    assert!(
        !seen.contains("rescue.target"),
        "the halt signal isolated rescue.target: {seen}"
    );
    frame.check();
}

/// The host's handler for aarch64 and its QEMU version (`qemu-aarch64
/// --version`, the emulator file resolved), read here rather than taken
/// from rootrun.
fn host_qemu_major() -> Option<u32> {
    let entry = std::fs::read_to_string("/proc/sys/fs/binfmt_misc/qemu-aarch64").ok()?;
    let interpreter = entry
        .lines()
        .find_map(|line| line.strip_prefix("interpreter "))?;
    let program = std::fs::canonicalize(interpreter).ok()?;
    let out = std::process::Command::new(program)
        .arg("--version")
        .output()
        .ok()?;
    let banner = text(&out.stdout);
    let version = banner.split("version ").nth(1)?;
    version.split('.').next()?.parse().ok()
}

/// Issue 9: Debian 13's systemd 257 spawns every unit with pidfd_spawn(),
/// which forks with CLONE_PIDFD; QEMU 7.2 (Debian 12's handler) rejects
/// that flag, so no unit starts and nothing rootrun can write fixes it.
/// rootrun says so in one line before the boot (before its banner), and
/// the boot shows the failure the line names. Under an emulator that takes
/// the flag (QEMU 10), the line must not appear.
#[test]
fn emulated_systemd_257_under_qemu_7_2_is_named_in_one_line_before_the_boot() {
    let Some(frame) = Frame::setup("systemd 257 under the host's emulator")
        .emulation()
        .start()
    else {
        return;
    };
    let Some(tree) = frame.debian13_systemd_rootfs("arm64") else {
        return;
    };
    let major = host_qemu_major().expect("the host's qemu-aarch64 handler tells its version");
    // inspect says what a boot would do, and what cannot work.
    let inspect = frame.run(
        rootrun().arg("inspect").arg(&tree),
        b"",
        Duration::from_secs(60),
    );
    let report = text(&inspect.stdout);
    assert_eq!(inspect.status.code(), Some(0), "{}", text(&inspect.stderr));
    assert!(
        report.contains("(systemd 257)")
            && report.contains("systemd 257 under emulation: credentials of 18 units turned off"),
        "{report}"
    );
    assert_eq!(
        report
            .lines()
            .any(|l| l.starts_with("WARNING") && l.contains("cannot start any unit")),
        major < 8,
        "{report}"
    );
    let started = std::time::Instant::now();
    let out = frame.run(
        rootrun()
            .args([
                "--expect",
                "Failed to spawn executor|login:",
                "--timeout",
                "240",
                "--stop-timeout",
                "5",
                "--rootfs",
            ])
            .arg(&tree),
        b"",
        Duration::from_secs(300),
    );
    let stderr = text(&out.stderr);
    let console = text(&out.stdout);
    eprintln!(
        "systemd 257 under the host's QEMU {major}: {:.1} s to the pattern and the stop",
        started.elapsed().as_secs_f64()
    );
    assert_eq!(out.status.code(), Some(0), "{stderr}{console}");
    let warnings: Vec<&str> = stderr
        .lines()
        .filter(|line| line.contains("cannot start any unit"))
        .collect();
    if major < 8 {
        assert_eq!(warnings.len(), 1, "{stderr}");
        let warning = warnings[0];
        assert!(
            warning
                .starts_with("rootrun: warning: systemd 257 cannot start any unit under QEMU 7.")
                && warning.contains("CLONE_PIDFD")
                && warning.contains("QEMU 10 works"),
            "{warning}"
        );
        let banner = stderr.find("rootrun: booting").expect("the start banner");
        assert!(
            stderr.find(warning).is_some_and(|at| at < banner),
            "the warning comes after the banner: {stderr}"
        );
        assert!(
            console.contains("Failed to spawn executor: Invalid argument"),
            "the failure the warning names did not happen: {console}"
        );
    } else {
        assert!(warnings.is_empty(), "{stderr}");
    }
    frame.check();
}
