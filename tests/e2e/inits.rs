//! Stock Debian 12 roots with other inits than systemd, booted natively
//! with `--rootfs` in pipe mode: their getty's login prompt reaches
//! rootrun's console (bound onto /dev/tty1), and SIGTERM to rootrun takes
//! each init through its own shutdown, well before --stop-timeout, so no
//! SIGKILL ends the run. The roots are built once with debootstrap and
//! cached by content (harness/fixtures.rs).

use std::process::Stdio;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;

use crate::harness::{rootrun, text, Frame};

const BOOT_LIMIT: Duration = Duration::from_secs(60);
/// Long, so that a stop that only ends by SIGKILL cannot pass for a clean
/// one: the test wants it over in a fraction of this.
const STOP_TIMEOUT: Duration = Duration::from_secs(60);

/// Boots `packages`' root to its login prompt, SIGTERMs rootrun and
/// returns the frame (to `check`) and the console output, after checking
/// the exit status and that the stop did not wait for the timeout.
fn boot_to_login_and_stop(test: &str, packages: &str) -> Option<(Frame, String)> {
    boot_and_stop(test, packages, "login:")
}

/// Boots `packages`' root until the console shows `stop_at`, SIGTERMs
/// rootrun and checks and returns as `boot_to_login_and_stop`.
fn boot_and_stop(test: &str, packages: &str, stop_at: &str) -> Option<(Frame, String)> {
    let frame = Frame::setup(test).tools(&["debootstrap"]).start()?;
    let tree = frame.debian_rootfs(packages)?;
    let started = Instant::now();
    // stdin a pipe kept open (Live holds it): pipe mode, nothing typed.
    let mut boot = frame.live(
        rootrun()
            .arg("-q")
            .arg(format!("--stop-timeout={}", STOP_TIMEOUT.as_secs()))
            .arg("--rootfs")
            .arg(&tree),
        Stdio::piped(),
    );
    boot.expect(stop_at, BOOT_LIMIT);
    let to_login = started.elapsed();
    let stopping = Instant::now();
    boot.signal(Signal::SIGTERM);
    let (out, seen) = boot.finish(STOP_TIMEOUT + Duration::from_secs(30));
    let stop = stopping.elapsed();
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(143), "{stderr}\n{seen}");
    assert!(
        stop < STOP_TIMEOUT / 2,
        "the stop took {stop:?}: init did not halt by itself\n{seen}"
    );
    eprintln!(
        "{packages}: {stop_at:?} {:.2} s after start, stopped {:.2} s after SIGTERM",
        to_login.as_secs_f64(),
        stop.as_secs_f64()
    );
    Some((frame, seen))
}

#[test]
fn sysvinit_reaches_a_login_prompt_and_halts_by_runlevel_0_request() {
    let Some((frame, seen)) = boot_to_login_and_stop("sysvinit to login and halt", "sysvinit-core")
    else {
        return;
    };
    // The runlevel 0 request, not SIGPWR (whose powerfail script Debian no
    // longer ships: "cannot execute /etc/init.d/powerfail"): /etc/init.d/rc
    // ran for runlevel 0. init's own "INIT: Switching to runlevel: 0" is
    // not asked for: it often goes missing when the stop comes soon after
    // boot (a stop 6 s after start shows it). Probably sysvinit's own
    // doing: for runlevel 0 it resets the console (console_stty in its
    // init.c), which ends in tcflush(TCIOFLUSH) and so discards what
    // liblxc's monitor has not read from the pty yet (not verified).
    assert!(
        seen.contains("concurrent boot in runlevel 0"),
        "no runlevel 0: {seen}"
    );
    assert!(seen.contains("Will now halt."), "no halt: {seen}");
    assert!(!seen.contains("powerfail"), "SIGPWR was sent: {seen}");
    frame.check();
}

#[test]
fn sysvinit_stopped_early_in_boot_still_halts_by_runlevel_0_request() {
    // rcS's swap step comes right after it mounted a tmpfs on /run, which
    // hides the /run/initctl init made at its start; init makes it again
    // only once its main loop comes round. A stop then used to send SIGPWR
    // (ignored) and wait for --stop-timeout; rootrun writes the request
    // again until init takes it.
    let Some((frame, seen)) =
        boot_and_stop("sysvinit stopped early", "sysvinit-core", "Activating swap")
    else {
        return;
    };
    assert!(seen.contains("Will now halt."), "no halt: {seen}");
    assert!(!seen.contains("powerfail"), "SIGPWR was sent: {seen}");
    frame.check();
}

#[test]
fn runit_reaches_a_login_prompt_and_runs_stage_3() {
    let Some((frame, seen)) = boot_to_login_and_stop("runit to login and power off", "runit-init")
    else {
        return;
    };
    assert!(
        seen.contains("runit: enter stage: /etc/runit/3"),
        "no stage 3: {seen}"
    );
    assert!(seen.contains("runit: power off"), "no power off: {seen}");
    frame.check();
}

#[test]
fn openrc_under_sysvinit_reaches_a_login_prompt_and_runs_its_shutdown() {
    // Debian's OpenRC runs under sysvinit's /sbin/init, whose inittab calls
    // /etc/init.d/rc, OpenRC's wrapper; sysv-rc (which openrc replaces)
    // comes first with sysvinit-core, so openrc is installed afterwards.
    let Some((frame, seen)) =
        boot_to_login_and_stop("openrc to login and halt", "sysvinit-core,+openrc")
    else {
        return;
    };
    assert!(
        seen.contains("is starting up"),
        "OpenRC did not boot: {seen}"
    );
    // Runlevel 0 is `openrc off && openrc shutdown && /etc/init.d/halt
    // stop`: the shutdown runlevel's savecache, then the halt.
    assert!(
        seen.contains("Saving dependency cache"),
        "no OpenRC shutdown: {seen}"
    );
    assert!(seen.contains("Will now halt."), "no halt: {seen}");
    assert!(!seen.contains("powerfail"), "SIGPWR was sent: {seen}");
    // inspect names both: sysvinit is what a stop talks to.
    let Some(tree) = frame.debian_rootfs("sysvinit-core,+openrc") else {
        return;
    };
    let out = frame.run(
        rootrun().arg("inspect").arg(&tree),
        b"",
        Duration::from_secs(30),
    );
    let report = text(&out.stdout);
    assert!(
        report.contains("/usr/sbin/init (sysvinit, services by OpenRC)"),
        "{report}"
    );
    frame.check();
}
