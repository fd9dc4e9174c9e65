//! One line instead of liblxc's raw text when a container cannot start,
//! each from the broken situation built for real (issue 11).

use std::fs;
use std::os::unix::fs::symlink;
use std::time::Duration;

use rootrun::arch::Arch;

use crate::cli::image_changed;
use crate::harness::{rootrun, text, Frame};

const LIMIT: Duration = Duration::from_secs(120);

#[test]
fn proc_sys_or_dev_as_a_symlink_in_the_image_is_named_before_anything_starts() {
    let Some(frame) = Frame::new("api dirs as symlinks") else {
        return;
    };
    let cases = [
        ("proc", "/tmp", "/proc is a symlink to /tmp in the image"),
        ("sys", "proc", "/sys is a symlink to /proc in the image"),
        (
            "dev",
            "devices",
            "/dev is a symlink to /devices in the image",
        ),
    ];
    for (dir, target, needle) in cases {
        let Some(image) = image_changed(&frame, &format!("{dir}-link"), |tree| {
            fs::remove_dir_all(tree.join(dir)).expect("remove the directory");
            if target == "devices" {
                fs::create_dir(tree.join("devices")).expect("mkdir devices");
            }
            symlink(target, tree.join(dir)).expect("symlink");
        }) else {
            return;
        };
        frame.watch(&image);
        // A command, a boot, and the plan: all refused the same way.
        for args in [&["--", "/bin/true"][..], &[], &["--dry-run"]] {
            let out = frame.run(rootrun().arg(&image).args(args), b"", LIMIT);
            let stderr = text(&out.stderr);
            assert_eq!(out.status.code(), Some(125), "{dir} {args:?}: {stderr}");
            assert!(stderr.contains(needle), "{dir} {args:?}: {stderr}");
            assert!(
                stderr.contains(&format!("the image needs /{dir} as a directory")),
                "{stderr}"
            );
            assert!(!stderr.contains("Failed to setup container"), "{stderr}");
            assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
        }
    }
    frame.check();
}

#[test]
fn a_handler_with_the_c_flag_is_named_with_its_risk() {
    let Some((frame, image)) = Frame::setup("C flag handler")
        .emulation()
        .exclusive()
        .busybox("arm64")
    else {
        return;
    };
    let qemu = frame.host_only_qemu("aarch64");
    let name = format!("rootrun-test-cflag-{}", std::process::id());
    let mut binfmt = frame.binfmt();
    // Registered last, the kernel picks it for arm64 programs.
    binfmt.register_with_flags(&name, Arch::Aarch64, &qemu.path, "OC");
    let out = frame.run(
        rootrun().arg(&image).args(["--", "/bin/uname", "-m"]),
        b"",
        LIMIT,
    );
    drop(binfmt);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert_eq!(text(&out.stdout), "aarch64\n");
    assert!(
        stderr.contains(&format!(
            "warning: binfmt_misc handler {name} has the C flag: setuid programs in the image \
             run the emulator with their credentials"
        )),
        "{stderr}"
    );
    frame.check();
}
