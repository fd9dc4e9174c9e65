//! Hosts other than a plain Debian 12 VM (issue 8): rootrun inside a chroot
//! whose `/` is not a mount point.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::harness::{text, Frame};

const LIMIT: Duration = Duration::from_secs(90);

/// A frame with `tools` and the QEMU handlers, and the native and arm64
/// BusyBox images.
fn frame_with_images(test: &str, tools: &[&'static str]) -> Option<(Frame, PathBuf, PathBuf)> {
    let frame = Frame::setup(test).tools(tools).emulation().start()?;
    let native = frame.busybox("amd64")?;
    let foreign = frame.busybox("arm64")?;
    Some((frame, native, foreign))
}

/// Runs rootrun with `args` in a chroot (tests/fixtures/run-in-chroot.sh);
/// returns its output, its exit status and the mounts it leaked into the
/// shared namespace around the chroot.
fn in_chroot(
    frame: &Frame,
    image: &Path,
    args: &[&str],
    input: &[u8],
) -> (String, Option<i32>, String) {
    let base = frame.dir("chroot");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/run-in-chroot.sh");
    let out = frame.run(
        Command::new("unshare")
            .arg("--mount")
            .arg(script)
            .arg(&base)
            .arg(env!("CARGO_BIN_EXE_rootrun"))
            .arg(image)
            .args(args),
        input,
        LIMIT,
    );
    // Everything was made on a tmpfs in the namespace, gone with it.
    std::fs::remove_dir(&base).expect("the chroot base is empty again");
    let stdout = text(&out.stdout);
    let field = |key: &str| {
        stdout
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .map(str::to_owned)
    };
    if let Some(pid) = field("rootrun-pid=").and_then(|p| p.trim().parse().ok()) {
        // Its containers are named for it: the frame's to check.
        frame.adopt(pid);
    }
    let code = field("rootrun-exit=").and_then(|c| c.trim().parse().ok());
    let leaked =
        field("leaked=").unwrap_or_else(|| format!("(script failed: {})", text(&out.stderr)));
    (
        format!("{stdout}{}", text(&out.stderr)),
        code,
        leaked.trim().to_owned(),
    )
}

#[test]
fn rootrun_runs_in_a_chroot_whose_root_is_not_a_mount_point() {
    let Some((frame, native, foreign)) = frame_with_images("chroot", &["unshare", "chroot"]) else {
        return;
    };

    // Before the fix: "make mounts private under /: EINVAL".
    let (out, code, leaked) = in_chroot(
        &frame,
        &native,
        &["--", "/bin/sh", "-c", "uname -m; exit 3"],
        b"",
    );
    assert_eq!(code, Some(3), "{out}");
    assert!(out.contains("x86_64"), "{out}");
    assert_eq!(
        leaked, "",
        "mounts leaked out of rootrun's namespace: {out}"
    );

    let (out, code, leaked) = in_chroot(&frame, &foreign, &[], b"uname -m; poweroff -f\n");
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("aarch64"), "{out}");
    assert!(out.contains("ROOTRUN-BOOT-OK"), "{out}");
    assert_eq!(
        leaked, "",
        "mounts leaked out of rootrun's namespace: {out}"
    );
    frame.check();
}

#[test]
fn rootrun_works_with_only_the_unified_cgroup_hierarchy() {
    let Some((frame, native, foreign)) = frame_with_images("unified cgroups", &["unshare"]) else {
        return;
    };
    let script =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/run-unified-cgroups.sh");
    let unified = || {
        let mut cmd = Command::new("unshare");
        cmd.args(["--mount", "--propagation", "private"])
            .arg(&script)
            .arg(env!("CARGO_BIN_EXE_rootrun"));
        cmd
    };
    // The devices policy holds through cgroup2's BPF device programs: a
    // node the guest makes for a host disk cannot be read.
    let probe = "mknod /tmp/disk b 8 0; head -c1 /tmp/disk; echo read=$?; exit 4";
    let out = frame.run(
        unified().arg(&native).args(["--", "/bin/sh", "-c", probe]),
        b"",
        LIMIT,
    );
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(4), "{stdout}{}", text(&out.stderr));
    assert!(
        stdout.contains("read=1"),
        "a host disk was readable: {stdout}"
    );
    assert!(
        text(&out.stderr).contains("Permission denied"),
        "{}",
        text(&out.stderr)
    );

    let out = frame.run(unified().arg(&foreign), b"uname -m; poweroff -f\n", LIMIT);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}{}", text(&out.stderr));
    assert!(stdout.lines().any(|l| l == "aarch64"), "{stdout}");
    frame.check();
}

/// The kernel refuses a user namespace to a chrooted process
/// (user_namespaces(7)): `--unprivileged` says so before mounting anything.
#[test]
fn unprivileged_in_a_chroot_is_one_line_naming_privileged() {
    let Some((frame, native, foreign)) =
        frame_with_images("chroot --unprivileged", &["unshare", "chroot"])
    else {
        return;
    };
    for image in [&native, &foreign] {
        let (out, code, leaked) =
            in_chroot(&frame, image, &["--unprivileged", "--", "/bin/true"], b"");
        assert_eq!(code, Some(125), "{out}");
        assert!(
            out.contains("chroot") && out.contains("--privileged"),
            "{out}"
        );
        assert_eq!(leaked, "", "{out}");
    }
    frame.check();
}
