//! Boot checks for CI (#10): `--expect REGEX` stops cleanly and exits 0 when
//! the console shows it, `--timeout` gives up with 124, a container that
//! ends first gives 123; both report the console's last lines, and
//! `--console-log` keeps everything.

use std::fs;
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::harness::{rootrun, text, Frame};

const LIMIT: Duration = Duration::from_secs(60);

#[test]
fn expect_passes_times_out_or_sees_the_end_with_distinct_statuses() {
    let Some((frame, image)) = Frame::with_busybox("boot checks", "amd64") else {
        return;
    };
    let log = frame.path("console.log");
    // Matched: stopped through init's own path (BusyBox prints its
    // shutdown marker), exit 0, whatever stdin does (kept open here).
    let started = Instant::now();
    let run = frame.live(
        rootrun()
            .args(["-q", "--expect", "ROOTRUN-BOOT-O[K]", "--console-log"])
            .arg(&log)
            .arg(&image),
        Stdio::piped(),
    );
    let (out, _) = run.finish(LIMIT);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(started.elapsed() < Duration::from_secs(30));
    let kept = fs::read_to_string(&log).unwrap_or_default();
    assert!(kept.contains("ROOTRUN-BOOT-OK"), "{kept}");
    assert!(
        kept.contains("ROOTRUN-SHUTDOWN"),
        "not a clean stop: {kept}"
    );

    // Never matched within --timeout: 124, the last lines on stderr.
    let run = frame.live(
        rootrun()
            .args(["-q", "--expect", "never-printed", "--timeout", "2"])
            .arg(&image),
        Stdio::piped(),
    );
    let (out, _) = run.finish(LIMIT);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(124), "{stderr}");
    assert!(
        stderr.contains("did not appear on the console within 2 s"),
        "{stderr}"
    );
    assert!(
        stderr.contains("ROOTRUN-BOOT-OK"),
        "no console lines: {stderr}"
    );
    assert!(!stderr.contains('\x1b'), "{stderr:?}");

    // The container ends first (poweroff inside): 123.
    let out = frame.run(
        rootrun()
            .args(["-q", "--expect", "never-printed"])
            .arg(&image),
        b"poweroff -f\n",
        LIMIT,
    );
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(123), "{stderr}");
    assert!(
        stderr.contains("ended before \"never-printed\" appeared"),
        "{stderr}"
    );

    // A console log that cannot be created fails before the boot.
    let out = frame.run(
        rootrun()
            .args(["-v", "--console-log", "/nonexistent-dir/console.log"])
            .arg(&image),
        b"",
        LIMIT,
    );
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(125), "{stderr}");
    assert!(
        stderr.contains("create /nonexistent-dir/console.log"),
        "{stderr}"
    );
    assert!(
        !text(&out.stdout).contains("ROOTRUN-BOOT-OK"),
        "it booted first"
    );
    frame.check();
}

#[test]
fn stop_on_eof_halts_once_the_piped_input_has_run() {
    let Some((frame, image)) = Frame::with_busybox("--stop-on-eof", "amd64") else {
        return;
    };
    let out = frame.run(
        rootrun().args(["-q", "--stop-on-eof"]).arg(&image),
        b"echo piped-$((40+2))\n",
        LIMIT,
    );
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}{}", text(&out.stderr));
    assert!(
        stdout.lines().any(|l| l == "piped-42"),
        "the input did not run: {stdout}"
    );
    // Halted through init's own path, not killed.
    assert!(stdout.contains("ROOTRUN-SHUTDOWN"), "{stdout}");
    frame.check();
}
