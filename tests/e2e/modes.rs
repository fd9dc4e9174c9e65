//! `run --unpack` and `run --rootfs DIR`: booting without loop-mounting the
//! SquashFS, native and foreign, with nothing left behind and the extracted
//! tree unchanged.

use std::path::Path;
use std::time::Duration;

use crate::harness::{rootrun, sha256, text, Frame};

const LIMIT: Duration = Duration::from_secs(120);

fn uname_in(frame: &Frame, args: &[&str], target: &Path) -> std::process::Output {
    frame.run(
        rootrun().arg("-q").args(args).arg(target).args([
            "--",
            "/bin/sh",
            "-c",
            "uname -m; echo scribble > /etc/new; exit 4",
        ]),
        b"",
        LIMIT,
    )
}

#[test]
fn unpack_mode_boots_native_and_foreign_images_without_a_loop_device() {
    let Some(frame) = Frame::setup("run --unpack").emulation().start() else {
        return;
    };
    let (Some(amd64), Some(arm64)) = (frame.busybox("amd64"), frame.busybox("arm64")) else {
        return;
    };
    let images = [(amd64, "x86_64"), (arm64, "aarch64")];
    for (image, uname) in &images {
        let hash = sha256(image);
        let out = uname_in(&frame, &["--unpack"], image);
        assert_eq!(text(&out.stdout).trim(), *uname, "{}", text(&out.stderr));
        assert_eq!(out.status.code(), Some(4));
        assert_eq!(sha256(image), hash);
    }
    frame.check();
}

#[test]
fn rootfs_mode_boots_an_extracted_tree_and_never_writes_to_it() {
    let Some((frame, image)) = Frame::setup("run --rootfs").emulation().busybox("armhf") else {
        return;
    };
    let tree = frame.path("modes-armhf-tree");
    let out = rootrun()
        .args(["unpack", "-q"])
        .arg(&image)
        .arg(&tree)
        .output()
        .expect("rootrun unpack");
    assert!(out.status.success(), "{}", text(&out.stderr));

    let inspect = rootrun()
        .args(["inspect", "--json"])
        .arg(&tree)
        .output()
        .expect("inspect DIR");
    let report: serde_json::Value = serde_json::from_slice(&inspect.stdout).expect("JSON");
    assert_eq!(report["arch"], "arm");

    frame.watch(&tree);
    let out = uname_in(&frame, &["--rootfs"], &tree);
    assert_eq!(text(&out.stdout).trim(), "armv7l", "{}", text(&out.stderr));
    assert_eq!(out.status.code(), Some(4));
    assert!(
        !tree.join("etc/new").exists(),
        "the guest wrote into the --rootfs tree"
    );
    frame.assert_restored();

    // Mixing up the two kinds of source is a clear error.
    let out = frame.run(rootrun().arg("--rootfs").arg(&image), b"", LIMIT);
    assert_eq!(out.status.code(), Some(125));
    assert!(
        text(&out.stderr).contains("--rootfs takes a directory"),
        "{}",
        text(&out.stderr)
    );
    let out = frame.run(rootrun().arg(&tree), b"", LIMIT);
    assert_eq!(out.status.code(), Some(125));
    assert!(
        text(&out.stderr).contains("use --rootfs DIR"),
        "{}",
        text(&out.stderr)
    );
    frame.check();
}
