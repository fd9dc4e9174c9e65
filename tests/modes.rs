//! `run --unpack` and `run --rootfs DIR`: booting without loop-mounting the
//! SquashFS, native and foreign, with nothing left behind and the extracted
//! tree unchanged.

mod common;

use std::fs;
use std::path::Path;
use std::time::Duration;

use common::*;

const LIMIT: Duration = Duration::from_secs(120);

fn uname_in(args: &[&str], target: &Path) -> std::process::Output {
    run_with_input(
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
    if !require_root("run --unpack") {
        return;
    }
    let images = [
        (busybox_image("amd64"), "x86_64"),
        (busybox_image("arm64"), "aarch64"),
    ];
    let _lock = host_lock();
    let before = HostState::capture();
    for (image, uname) in &images {
        let hash = sha256(image);
        let out = uname_in(&["--unpack"], image);
        assert_eq!(text(&out.stdout).trim(), *uname, "{}", text(&out.stderr));
        assert_eq!(out.status.code(), Some(4));
        assert_eq!(sha256(image), hash);
    }
    before.assert_restored("run --unpack");
}

#[test]
fn rootfs_mode_boots_an_extracted_tree_and_never_writes_to_it() {
    if !require_root("run --rootfs") {
        return;
    }
    let image = busybox_image("armhf");
    let tree = work_dir().join("modes-armhf-tree");
    let _ = fs::remove_dir_all(&tree);
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

    let _lock = host_lock();
    let before = HostState::capture();
    let out = uname_in(&["--rootfs"], &tree);
    assert_eq!(text(&out.stdout).trim(), "armv7l", "{}", text(&out.stderr));
    assert_eq!(out.status.code(), Some(4));
    assert!(
        !tree.join("etc/new").exists(),
        "the guest wrote into the --rootfs tree"
    );
    before.assert_restored("run --rootfs");

    // Mixing up the two kinds of source is a clear error.
    let out = run_with_input(rootrun().arg("--rootfs").arg(&image), b"", LIMIT);
    assert_eq!(out.status.code(), Some(125));
    assert!(
        text(&out.stderr).contains("--rootfs takes a directory"),
        "{}",
        text(&out.stderr)
    );
    let out = run_with_input(rootrun().arg(&tree), b"", LIMIT);
    assert_eq!(out.status.code(), Some(125));
    assert!(
        text(&out.stderr).contains("use --rootfs DIR"),
        "{}",
        text(&out.stderr)
    );
}
