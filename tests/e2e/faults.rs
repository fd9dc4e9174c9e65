//! Faults built for real (issue #15): the writable layer fills up, no loop
//! device can be had, `/run/rootrun` is read-only or full, and `QEMU_*`
//! variables in the caller's environment. Whatever a test takes away from
//! the host (a device node, a writable `/run/rootrun`) it takes away only in
//! a private mount namespace of its own (`unshare -m --propagation
//! private`), which vanishes with the rootrun running in it: the host's
//! devices and `/run` are never touched, even when the test fails.

use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use crate::harness::{rootrun, text, Frame};

const LIMIT: Duration = Duration::from_secs(120);

/// rootrun's own lines on stderr, its warnings left out.
fn error_lines(out: &Output) -> Vec<String> {
    text(&out.stderr)
        .lines()
        .filter(|line| !line.starts_with("rootrun: warning:"))
        .map(str::to_owned)
        .collect()
}

/// `unshare -m --propagation private sh -c 'SETUP && exec rootrun ARGS...'`:
/// SETUP changes the mount namespace rootrun then runs in, and only that
/// one. unshare and sh exec, so the PID the frame records is rootrun's (its
/// container is named after it).
fn in_private_namespace(setup: &str, args: &[&str], image: &Path) -> Command {
    let mut cmd = Command::new("unshare");
    cmd.args(["-m", "--propagation", "private", "sh", "-c"])
        .arg(format!("{setup} && exec \"$@\""))
        .arg("sh")
        .arg(env!("CARGO_BIN_EXE_rootrun"))
        .arg("-q")
        .args(args)
        .arg(image);
    cmd
}

#[test]
fn a_full_writable_layer_is_enospc_for_the_guest_and_the_run_ends_cleanly() {
    let Some((frame, image)) = Frame::with_busybox("tmpfs full", "amd64") else {
        return;
    };
    // The plan says what the option does.
    let out = frame.run(
        rootrun()
            .args(["--dry-run", "--json", "--tmpfs-size", "4m"])
            .arg(&image),
        b"",
        LIMIT,
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let plan: serde_json::Value = serde_json::from_slice(&out.stdout).expect("plan JSON");
    let sizes: Vec<&serde_json::Value> = plan["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .filter(|s| s["step"] == "tmpfs")
        .map(|s| &s["size"])
        .collect();
    assert_eq!(
        sizes,
        [&serde_json::Value::Null, &serde_json::json!("4194304")]
    );

    // 16 MiB into a 4 MiB layer; then the guest frees it and writes again.
    let script = "df -k / | tail -1; \
                  dd if=/dev/zero of=/fill bs=64k count=256 2>&1; echo dd=$?; \
                  rm /fill; echo again > /again && cat /again; exit 7";
    let out = frame.run(
        rootrun()
            .args(["-q", "--tmpfs-size", "4m"])
            .arg(&image)
            .args(["--", "/bin/sh", "-c", script]),
        b"",
        LIMIT,
    );
    let stdout = text(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(7),
        "{stdout}\n{}",
        text(&out.stderr)
    );
    let df: Vec<&str> = stdout
        .lines()
        .next()
        .unwrap_or("")
        .split_whitespace()
        .collect();
    assert_eq!(
        df.get(1),
        Some(&"4096"),
        "the guest's / is not 4 MiB: {stdout}"
    );
    assert!(
        stdout.contains("No space left on device") && stdout.contains("dd=1"),
        "the guest did not see ENOSPC: {stdout}"
    );
    assert!(
        stdout.contains("\nagain\n"),
        "no write after freeing: {stdout}"
    );
    assert!(
        error_lines(&out).is_empty(),
        "rootrun itself complained: {}",
        text(&out.stderr)
    );
    // With --unpack the extracted image must fit too: refused before
    // anything is written, in one line.
    let out = frame.run(
        rootrun()
            .args(["-q", "--unpack", "--tmpfs-size", "1m"])
            .arg(&image)
            .args(["--", "/bin/true"]),
        b"",
        LIMIT,
    );
    assert_eq!(out.status.code(), Some(125), "{}", text(&out.stderr));
    let lines = error_lines(&out);
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(lines[0].contains("add up to"), "{lines:?}");
    // Too small for liblxc's files, or not tmpfs's syntax: refused up front.
    for bad in ["512k", "4mb", "0%"] {
        let out = frame.run(
            rootrun().args(["--tmpfs-size", bad]).arg(&image),
            b"",
            LIMIT,
        );
        assert_eq!(out.status.code(), Some(125), "--tmpfs-size {bad}");
        assert!(
            text(&out.stderr).contains("--tmpfs-size"),
            "{}",
            text(&out.stderr)
        );
    }
    frame.check();
}

#[test]
fn no_loop_device_is_one_line_and_125_and_unpack_still_runs() {
    let Some((frame, image)) = Frame::setup("no loop device")
        .tools(&["unshare", "mount"])
        .busybox("amd64")
    else {
        return;
    };
    // /dev/null over /dev/loop-control: LOOP_CTL_GET_FREE gets ENOTTY.
    let hide = "mount --bind /dev/null /dev/loop-control";
    let cmd = &mut in_private_namespace(hide, &[], &image);
    let out = frame.run(cmd.args(["--", "/bin/true"]), b"", LIMIT);
    assert_eq!(out.status.code(), Some(125), "{}", text(&out.stderr));
    let lines = error_lines(&out);
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(
        lines[0].contains("no loop device") && lines[0].contains("/dev/loop-control"),
        "{lines:?}"
    );
    assert!(lines[0].contains("--unpack"), "{lines:?}");
    frame.assert_restored();

    // The way out the line names works in the same situation.
    let cmd = &mut in_private_namespace(hide, &["--unpack"], &image);
    let out = frame.run(cmd.args(["--", "/bin/sh", "-c", "exit 3"]), b"", LIMIT);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    frame.check();
}

#[test]
fn a_read_only_or_full_run_rootrun_is_one_line_naming_it() {
    let Some((frame, image)) = Frame::setup("/run/rootrun read-only")
        .tools(&["unshare", "mount"])
        .busybox("amd64")
    else {
        return;
    };
    // It stays on the host anyway (README: the two empty mount points).
    std::fs::create_dir_all("/run/rootrun").expect("mkdir /run/rootrun");
    let cases = [
        (
            // A read-only bind of the directory onto itself, in the
            // namespace only: the host's /run keeps its flags.
            "mount --bind /run/rootrun /run/rootrun && \
             mount -o remount,bind,ro /run/rootrun",
            "Read-only file system",
        ),
        (
            "mount -t tmpfs -o size=4k,nr_inodes=1 rootrun-full /run/rootrun",
            "No space left on device",
        ),
    ];
    for (setup, says) in cases {
        let cmd = &mut in_private_namespace(setup, &[], &image);
        let out = frame.run(cmd.args(["--", "/bin/true"]), b"", LIMIT);
        assert_eq!(
            out.status.code(),
            Some(125),
            "{setup}: {}",
            text(&out.stderr)
        );
        let lines = error_lines(&out);
        assert_eq!(lines.len(), 1, "{setup}: {lines:?}");
        assert!(
            lines[0].contains("/run/rootrun/") && lines[0].contains(says),
            "{setup}: {lines:?}"
        );
        frame.assert_restored();
    }
    frame.check();
}

#[test]
fn qemu_variables_of_the_caller_stay_out_of_the_container_unless_asked_for() {
    let Some((frame, image)) = Frame::setup("QEMU_* environment")
        .emulation()
        .busybox("arm64")
    else {
        return;
    };
    // Each would show if it reached the emulator: QEMU_STRACE traces every
    // system call on stderr, an unknown QEMU_CPU stops qemu before the guest
    // runs at all.
    let leaky = [
        ("QEMU_STRACE", "1"),
        ("QEMU_CPU", "rootrun-no-such-cpu"),
        ("QEMU_ROOTRUN_PROBE", "leaked"),
    ];
    let out = frame.run(
        rootrun()
            .envs(leaky)
            .arg("-q")
            .arg(&image)
            .args(["--", "/bin/sh", "-c", "env; uname -m"]),
        b"",
        LIMIT,
    );
    let stdout = text(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}\n{}",
        text(&out.stderr)
    );
    assert!(stdout.ends_with("aarch64\n"), "{stdout}");
    assert!(!stdout.contains("QEMU_"), "leaked into CMD: {stdout}");
    assert!(error_lines(&out).is_empty(), "{}", text(&out.stderr));

    // Boot mode: init's environment, which every process inherits.
    let out = frame.run(
        rootrun().envs(leaky).arg("-q").arg(&image),
        b"env; poweroff -f\n",
        LIMIT,
    );
    let console = text(&out.stdout);
    assert!(console.contains("PATH="), "no env output: {console}");
    assert!(!console.contains("QEMU_"), "leaked into init: {console}");

    // Asked for with -e, they are there.
    let out = frame.run(
        rootrun()
            .args([
                "-q",
                "-e",
                "QEMU_ROOTRUN_PROBE=asked",
                "-e",
                "QEMU_STRACE=1",
            ])
            .arg(&image)
            .args(["--", "/bin/sh", "-c", "env"]),
        b"",
        LIMIT,
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("QEMU_ROOTRUN_PROBE=asked"),
        "{}",
        text(&out.stdout)
    );
    assert!(
        text(&out.stderr).contains("brk("),
        "QEMU_STRACE=1 given with -e did not trace: {}",
        text(&out.stderr)
    );
    frame.check();
}

#[test]
fn an_image_truncated_under_a_running_container_gives_the_guest_io_errors_and_is_named() {
    use std::process::Stdio;
    let Some(frame) = Frame::new("image truncated while running") else {
        return;
    };
    // 2 MiB of random bytes: incompressible, and read only when asked for.
    let extra = frame.path("random-tree");
    std::fs::create_dir_all(extra.join("data")).unwrap();
    let mut random = vec![0u8; 2 << 20];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut random))
        .unwrap();
    std::fs::write(extra.join("data/blob"), &random).unwrap();
    let Some(cached) = frame.busybox_with("amd64", &extra) else {
        return;
    };
    // A copy of its own: the cached image (and its hard links) stay whole.
    let image = frame.path("truncated.img");
    std::fs::copy(&cached, &image).unwrap();
    let mut run = frame.live(
        rootrun().arg("-q").arg(&image).args([
            "--",
            "/bin/sh",
            "-c",
            "echo ready; read go; cat /data/blob > /dev/null; echo cat=$?",
        ]),
        Stdio::piped(),
    );
    run.expect("ready", LIMIT);
    let size = std::fs::metadata(&image).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&image)
        .unwrap()
        .set_len(size / 4)
        .unwrap();
    run.write_and_close_stdin(b"go\n");
    let (out, seen) = run.finish(LIMIT);
    assert!(
        seen.contains("cat=1"),
        "the guest read the blob whole: {seen}"
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("was truncated") && text(&out.stderr).contains("truncated.img"),
        "{}",
        text(&out.stderr)
    );
    frame.check();
}
