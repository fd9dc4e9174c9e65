//! `rootrun doctor`: this machine as it is (ready), binfmt_misc hidden in
//! a private mount namespace (still ready: its handlers work, with the
//! mount command), and a newer handler whose interpreter is missing
//! shadowing Debian's (not ready, exit 1, the fix named).

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use rootrun::arch::Arch;

use crate::harness::{rootrun, text, Frame};

const LIMIT: Duration = Duration::from_secs(60);

fn line<'a>(stdout: &'a str, check: &str) -> &'a str {
    stdout
        .lines()
        .find(|l| l.get(6..).is_some_and(|rest| rest.starts_with(check)))
        .unwrap_or_else(|| panic!("no {check:?} line:\n{stdout}"))
}

#[test]
fn doctor_says_this_host_is_ready_and_how_an_arm64_image_runs() {
    let Some((frame, image)) = Frame::setup("doctor ready").emulation().busybox("arm64") else {
        return;
    };
    let out = frame.run(rootrun().arg("doctor").arg(&image), b"", LIMIT);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}{}", text(&out.stderr));
    assert!(line(&stdout, "root").starts_with("ok "), "{stdout}");
    assert!(
        line(&stdout, "liblxc").contains("liblxc 5.")
            || line(&stdout, "liblxc").contains("liblxc 6."),
        "{stdout}"
    );
    assert!(line(&stdout, "overlay").starts_with("ok "), "{stdout}");
    let aarch64 = line(&stdout, "binfmt aarch64");
    assert!(aarch64.starts_with("ok "), "{aarch64}");
    assert!(aarch64.contains("QEMU "), "{aarch64}");
    assert!(aarch64.contains("static"), "{aarch64}");
    let img = line(&stdout, "image ");
    assert!(img.contains("aarch64 under"), "{img}");
    assert!(
        stdout.ends_with("ready: rootrun can run containers here\n"),
        "{stdout}"
    );

    let json = frame.run(rootrun().args(["doctor", "--json"]), b"", LIMIT);
    let report: serde_json::Value =
        serde_json::from_slice(&json.stdout).expect("doctor --json is JSON");
    assert_eq!(report["ready"], true);
    assert!(report["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .any(|c| c["check"] == "cgroups" && c["status"] == "ok"));
    frame.check();
}

#[test]
fn doctor_with_binfmt_misc_hidden_names_the_mount_command() {
    let Some(frame) = Frame::setup("doctor no binfmt").emulation().start() else {
        return;
    };
    // Hidden by a tmpfs of the test's own, in a private mount namespace
    // that goes with the shell: the host's mount is untouched.
    let script = format!(
        "mount -t tmpfs rootrun-doctor-test /proc/sys/fs/binfmt_misc && exec {} doctor",
        env!("CARGO_BIN_EXE_rootrun")
    );
    let out = frame.run(
        Command::new("unshare").args(["-m", "--propagation", "private", "sh", "-c", &script]),
        b"",
        LIMIT,
    );
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}{}", text(&out.stderr));
    let binfmt = line(&stdout, "binfmt_misc");
    assert!(binfmt.starts_with("warn "), "{binfmt}");
    assert!(
        binfmt.contains("[fix: mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc"),
        "{binfmt}"
    );
    frame.check();
}

#[test]
fn doctor_is_not_ready_when_a_newer_handler_lacks_its_interpreter() {
    let Some((frame, image)) = Frame::setup("doctor broken handler")
        .emulation()
        .exclusive()
        .busybox("arm64")
    else {
        return;
    };
    let name = format!("rootrun-test-doctor-{}", std::process::id());
    let missing = frame.path("no-such-qemu-aarch64");
    let mut binfmt = frame.binfmt();
    // Registered last, the kernel tries it first: it shadows Debian's.
    binfmt.register_without_f(&name, Arch::Aarch64, &missing);

    let out = frame.run(rootrun().arg("doctor").arg(&image), b"", LIMIT);
    drop(binfmt);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}{}", text(&out.stderr));
    let aarch64 = line(&stdout, "binfmt aarch64");
    assert!(aarch64.starts_with("FAIL "), "{aarch64}");
    assert!(
        aarch64.contains(&format!("{name} -> {}", missing.display())),
        "{aarch64}"
    );
    assert!(aarch64.contains("interpreter missing"), "{aarch64}");
    assert!(aarch64.contains("shadows qemu-aarch64"), "{aarch64}");
    assert!(
        aarch64.contains(&format!("echo -1 > /proc/sys/fs/binfmt_misc/{name}")),
        "{aarch64}"
    );
    assert!(line(&stdout, "image ").starts_with("FAIL "), "{stdout}");
    assert!(
        stdout.ends_with("not ready: fix the FAIL lines above\n"),
        "{stdout}"
    );
    assert!(!Path::new("/proc/sys/fs/binfmt_misc").join(&name).exists());
    frame.check();
}
