//! A Debian 12 arm64 root with systemd, booted under QEMU user emulation and
//! stopped by rootrun: systemd reaches multi-user.target and powers off
//! cleanly on rootrun's halt signal. (liblxc's default SIGRTMIN+3 arrives as
//! SIGRTMIN+1 under qemu-user and only isolates rescue.target; LXD never
//! stops such a container.)

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;

const BOOT_LIMIT: Duration = Duration::from_secs(240);

#[test]
fn emulated_systemd_boots_to_multi_user_and_powers_off_on_sigterm() {
    if !require_root("systemd under emulation") {
        return;
    }
    let tree = work_dir().join("systemd-arm64");
    let script =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/build-systemd-rootfs.sh");
    let built = Command::new(script)
        .arg(&tree)
        .arg("arm64")
        .output()
        .expect("run build-systemd-rootfs.sh");
    assert!(
        built.status.success(),
        "building the systemd arm64 rootfs failed (debootstrap from deb.debian.org; see tests/setup-host.sh): {}",
        text(&built.stderr)
    );

    let _lock = host_lock();
    let before = HostState::capture();
    // A stop timeout long enough that a wrong halt signal shows up as a
    // missing poweroff, not as a kill that happens to end the run.
    let mut boot = Live::spawn(
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
    before.assert_restored("systemd under emulation");
}
