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
