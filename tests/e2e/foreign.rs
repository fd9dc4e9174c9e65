//! Foreign architectures under QEMU user emulation, for real: images built
//! from Debian's busybox-static for other CPUs, both binfmt_misc setups (the
//! system's F-flag handlers and a test handler without F), and the errors.
//! Tests that change binfmt_misc restore it through the frame's `Binfmt`,
//! even on panic, and hold the host lock exclusively (across processes) so
//! no other test sees the change.

use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rootrun::arch::{self, Arch, BINFMT_DIR};

use crate::harness::{
    is_root, mksquashfs, rootrun, rootrun_as_nobody, sh_command, sha256, text, wait_with_limit,
    Frame,
};

const LIMIT: Duration = Duration::from_secs(120);

/// Debian architecture, `uname -m` inside.
const ARCHES: [(&str, &str); 5] = [
    ("arm64", "aarch64"),
    ("armhf", "armv7l"),
    ("ppc64el", "ppc64le"),
    ("s390x", "s390x"),
    ("i386", "i686"),
];

#[test]
fn foreign_images_run_under_the_systems_f_handlers_and_pass_exit_status() {
    let Some(frame) = Frame::setup("foreign arches").emulation().start() else {
        return;
    };
    let Some(images) = every_arch(&frame) else {
        return;
    };
    for (image, uname) in &images {
        let hash = sha256(image);
        let out = frame.sh(image, "uname -m; exit 3", LIMIT);
        assert_eq!(
            text(&out.stdout).trim(),
            *uname,
            "{}: {}",
            image.display(),
            text(&out.stderr)
        );
        assert_eq!(out.status.code(), Some(3), "{}", image.display());
        assert_eq!(sha256(image), hash);
    }
    frame.check();
}

/// The BusyBox image of every architecture in `ARCHES`, with `uname -m`.
fn every_arch(frame: &Frame) -> Option<Vec<(PathBuf, &'static str)>> {
    ARCHES
        .iter()
        .map(|(deb, uname)| frame.busybox(deb).map(|image| (image, *uname)))
        .collect()
}

#[test]
fn foreign_boot_in_pipe_mode_reaches_the_shell_and_powers_off() {
    let Some((frame, image)) = Frame::setup("foreign boot").emulation().busybox("arm64") else {
        return;
    };
    let out = frame.run(rootrun().arg(&image), b"uname -m; poweroff -f\n", LIMIT);
    let stdout = text(&out.stdout);
    assert!(stdout.contains("ROOTRUN-BOOT-OK"), "{stdout}");
    assert!(stdout.lines().any(|l| l == "aarch64"), "{stdout}");
    assert_eq!(out.status.code(), Some(0));
    let banner = text(&out.stderr);
    assert!(
        banner.contains("aarch64 under /usr/libexec/qemu-binfmt/aarch64-binfmt-P"),
        "{banner}"
    );
    frame.check();
}

#[test]
fn handler_without_f_gets_its_interpreter_bind_mounted_at_the_registered_path() {
    let Some((frame, image)) = Frame::setup("non-F handler")
        .emulation()
        .exclusive()
        .busybox("arm64")
    else {
        return;
    };
    let qemu = frame.host_only_qemu("aarch64");
    let mut binfmt = frame.binfmt();
    // Registered last, it is the one the kernel tries first.
    binfmt.register_without_f(
        &format!("rootrun-test-nof-{}", std::process::id()),
        Arch::Aarch64,
        &qemu.path,
    );

    let plan = rootrun()
        .arg("--dry-run")
        .arg(&image)
        .output()
        .expect("dry run");
    let plan = text(&plan.stdout);
    assert!(
        plan.contains(&format!(
            "aarch64 under {}, bind-mounted",
            qemu.path.display()
        )),
        "{plan}"
    );

    let out = frame.run(rootrun().arg(&image), b"ps; kill -USR2 1\n", LIMIT);
    let stdout = text(&out.stdout);
    // The seed's `ps` inside a working foreign container: init runs under
    // the interpreter, at the path registered on the host.
    let init_line = format!("{} /sbin/init", qemu.path.display());
    assert!(
        stdout.contains(&init_line),
        "ps does not show {init_line:?}: {stdout}"
    );
    assert!(stdout.contains("ROOTRUN-SHUTDOWN"), "{stdout}");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let banner = text(&out.stderr);
    assert!(banner.contains("bind-mounted"), "{banner}");

    // Bind-mounted read-only: the guest cannot overwrite the host's emulator.
    let script = format!("echo x > {} ; echo rc=$?", qemu.path.display());
    let out = frame.sh(&image, &script, LIMIT);
    assert!(
        text(&out.stdout).contains("rc=1"),
        "interpreter writable: {}",
        text(&out.stdout)
    );
    drop(binfmt);
    drop(qemu);
    frame.check();
}

#[test]
fn mount_point_for_the_interpreter_never_follows_image_symlinks_onto_the_host() {
    let Some(frame) = Frame::setup("hostile symlink")
        .emulation()
        .exclusive()
        .start()
    else {
        return;
    };
    // The image's /usr/local is a symlink to /tmp: the interpreter's mount
    // point must be created in the container's /tmp, not the host's.
    let extra = frame.path("evil-usr-local");
    fs::create_dir_all(extra.join("usr")).unwrap();
    symlink("/tmp", extra.join("usr/local")).unwrap();
    let Some(image) = frame.busybox_with("arm64", &extra) else {
        return;
    };

    let qemu = frame.host_only_qemu("aarch64");
    let leaked = Path::new("/tmp/lib").join(qemu.dir.file_name().unwrap());
    let mut binfmt = frame.binfmt();
    binfmt.register_without_f(
        &format!("rootrun-test-evil-{}", std::process::id()),
        Arch::Aarch64,
        &qemu.path,
    );
    let out = frame.sh(&image, "uname -m; ls /tmp/lib", LIMIT);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).starts_with("aarch64\n"),
        "{}",
        text(&out.stdout)
    );
    assert!(!leaked.exists(), "created {} on the host", leaked.display());
    drop(binfmt);
    drop(qemu);
    frame.check();
}

fn expect_125(frame: &Frame, image: &Path, args: &[&str], needles: &[&str]) {
    let out = frame.run(
        rootrun().args(args).arg(image).args(["--", "/bin/true"]),
        b"",
        LIMIT,
    );
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(125), "{stderr}");
    for needle in needles {
        assert!(stderr.contains(needle), "{needle:?} missing from: {stderr}");
    }
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn missing_disabled_gone_and_dynamic_handlers_are_clear_errors() {
    let Some((frame, image)) = Frame::setup("handler errors")
        .emulation()
        .exclusive()
        .busybox("s390x")
    else {
        return;
    };
    // Each case below assumes Debian's qemu-s390x is the only handler.
    let mut earlier = frame.binfmt();
    earlier.set_aside_if_enabled("rootrun-qemu-s390x");
    {
        let mut binfmt = frame.binfmt();
        binfmt.disable("qemu-s390x");
        expect_125(
            &frame,
            &image,
            &[],
            &[
                "qemu-s390x for s390x is disabled",
                "echo 1 > /proc/sys/fs/binfmt_misc/qemu-s390x",
            ],
        );
    }
    {
        let mut binfmt = frame.binfmt();
        binfmt.remove_system("qemu-s390x");
        expect_125(
            &frame,
            &image,
            &[],
            &[
                "no binfmt_misc handler for s390x",
                "apt-get install qemu-user-static",
                "register",
            ],
        );
        // --register-binfmt fixes exactly that; --dry-run shows the plan
        // with the handler it would register, and registers nothing.
        let out = frame.run(
            rootrun()
                .args(["--dry-run", "--register-binfmt"])
                .arg(&image),
            b"",
            LIMIT,
        );
        let plan = text(&out.stdout);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        // Debian's -binfmt-P name for it when there (with the P flag).
        assert!(
            plan.contains("/usr/bin/qemu-s390x-static")
                || plan.contains("/usr/libexec/qemu-binfmt/s390x-binfmt-P"),
            "{plan}"
        );
        assert!(!Path::new(BINFMT_DIR).join("rootrun-qemu-s390x").exists());
        // Registered by rootrun below, removed even if the run panics.
        binfmt.remove_on_drop("rootrun-qemu-s390x");
        let out = frame.run(
            rootrun()
                .arg("--register-binfmt")
                .arg(&image)
                .args(["--", "uname", "-m"]),
            b"",
            LIMIT,
        );
        let _ = arch::remove(Path::new(BINFMT_DIR), "rootrun-qemu-s390x");
        assert_eq!(text(&out.stdout).trim(), "s390x", "{}", text(&out.stderr));
        assert!(text(&out.stderr).contains("registered binfmt_misc handler rootrun-qemu-s390x"));
    }
    {
        let gone = frame.path("qemu-gone");
        fs::write(&gone, b"").unwrap();
        let mut binfmt = frame.binfmt();
        binfmt.register_without_f(
            &format!("rootrun-test-gone-{}", std::process::id()),
            Arch::S390x,
            &gone,
        );
        fs::remove_file(&gone).unwrap();
        expect_125(&frame, &image, &[], &["which does not exist"]);
    }
    {
        let mut binfmt = frame.binfmt();
        binfmt.register_without_f(
            &format!("rootrun-test-dyn-{}", std::process::id()),
            Arch::S390x,
            Path::new("/bin/true"),
        );
        expect_125(
            &frame,
            &image,
            &[],
            &["dynamically linked", "qemu-user-static"],
        );
    }
    drop(earlier);
    frame.check();
}

fn image_with(frame: &Frame, name: &str, build: impl FnOnce(&Path)) -> PathBuf {
    let tree = frame.path(name);
    fs::create_dir_all(tree.join("sbin")).unwrap();
    fs::create_dir_all(tree.join("bin")).unwrap();
    build(&tree);
    let image = frame.path(&format!("{name}.img"));
    mksquashfs(&tree, &image);
    frame.watch(&image);
    image
}

#[test]
fn init_symlink_loops_and_images_without_elf_are_refused() {
    let Some(frame) = Frame::new("detection errors") else {
        return;
    };
    let looped = image_with(&frame, "init-loop", |tree| {
        symlink("/sbin/init2", tree.join("sbin/init")).unwrap();
        symlink("init", tree.join("sbin/init2")).unwrap();
    });
    let script_only = image_with(&frame, "script-only", |tree| {
        fs::write(tree.join("sbin/init"), "#!/bin/sh\necho hi\n").unwrap();
        fs::write(tree.join("bin/sh"), "not a program\n").unwrap();
    });
    expect_125(
        &frame,
        &looped,
        &[],
        &["/sbin/init", "too many levels of symbolic links"],
    );
    expect_125(
        &frame,
        &script_only,
        &[],
        &[
            "cannot tell the image's CPU architecture",
            "a script",
            "--arch",
        ],
    );
    frame.check();
}

#[test]
fn script_init_falls_back_to_busybox_and_metadata_disagreement_is_reported() {
    let Some(frame) = Frame::setup("fallback")
        .emulation()
        .tools(&["unsquashfs"])
        .start()
    else {
        return;
    };
    let extra = frame.path("script-init-extra");
    fs::create_dir_all(extra.join("sbin")).unwrap();
    fs::write(
        extra.join("metadata.yaml"),
        "architecture: x86_64\nproperties:\n  os: myrootfs\n",
    )
    .unwrap();
    let Some(built) = frame.busybox_with("arm64", &extra) else {
        return;
    };
    // Replace the init symlink by a script (build-image copies extra last),
    // in an image of the test's own: the cached one stays as it is.
    let image = frame.path("script-init.img");
    let tree = frame.path("script-init-tree");
    let status = std::process::Command::new("unsquashfs")
        .args(["-q", "-no-progress", "-d"])
        .arg(&tree)
        .arg(&built)
        .status()
        .unwrap();
    assert!(status.success());
    fs::remove_file(tree.join("sbin/init")).unwrap();
    fs::write(
        tree.join("sbin/init"),
        "#!/bin/sh\nexec /bin/busybox init\n",
    )
    .unwrap();
    mksquashfs(&tree, &image);
    frame.watch(&image);

    let inspect = rootrun()
        .args(["inspect", "--json"])
        .arg(&image)
        .output()
        .expect("inspect");
    let report: serde_json::Value = serde_json::from_slice(&inspect.stdout).expect("inspect JSON");
    assert_eq!(report["arch"], "aarch64");
    assert_eq!(report["evidence"]["file"], "/bin/busybox");
    assert_eq!(report["metadata_mismatch"], "x86_64");

    let out = frame.sh(&image, "uname -m", LIMIT);
    assert_eq!(text(&out.stdout).trim(), "aarch64", "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("metadata.yaml says architecture \"x86_64\""),
        "{}",
        text(&out.stderr)
    );
    frame.check();
}

#[test]
fn inspect_names_the_arch_in_every_dialect_and_the_handler() {
    // Any user; the frame's shared lock keeps binfmt_misc as the system set it.
    let Some((frame, image)) = Frame::setup("inspect dialects").any_user().busybox("armhf") else {
        return;
    };
    let out = rootrun()
        .args(["inspect", "--json"])
        .arg(&image)
        .output()
        .expect("inspect");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(report["names"]["uname"], "armv7l");
    assert_eq!(report["names"]["debian"], "armhf");
    assert_eq!(report["names"]["qemu"], "arm");
    assert_eq!(report["init_flavor"], "busybox");
    assert_eq!(report["evidence"]["resolved"], "/bin/busybox");
    assert_eq!(report["squashfs"]["compression"], "gzip");
    if Path::new(BINFMT_DIR).join("qemu-arm").exists() {
        assert_eq!(report["host"]["handler"]["name"], "qemu-arm");
        assert_eq!(report["host"]["emulation"]["how"], "preloaded");
    }
    let text_out = rootrun()
        .arg("inspect")
        .arg(&image)
        .output()
        .expect("inspect");
    let text_out = text(&text_out.stdout);
    assert!(
        text_out.contains("architecture arm (uname armv7l, Debian armhf, QEMU arm"),
        "{text_out}"
    );
    frame.check();
}

/// The systemd halt signal rootrun sends to an emulated image (host
/// SIGRTMIN+6, see plan.rs) rests on qemu-user delivering host real-time
/// signal N as N-2. Measured here with the installed emulator: a guest shell
/// traps every real-time signal and names the one it got.
#[test]
fn qemu_delivers_host_sigrtmin_plus_6_as_guest_sigrtmin_plus_4() {
    let Some((frame, image)) = Frame::setup("signal shift").emulation().busybox("arm64") else {
        return;
    };
    let script = "for s in $(seq 34 64); do trap \"echo got-$s\" $s; done; echo ready; while :; do sleep 0.1; done";
    let mut run = frame.live(
        &mut sh_command(&image, &[], script),
        std::process::Stdio::null(),
    );
    run.expect("ready", LIMIT);
    // rootrun -> liblxc monitor -> liblxc init -> the shell (under qemu).
    let children = |pid: u32| -> Vec<u32> {
        let list =
            fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).unwrap_or_default();
        list.split_whitespace()
            .filter_map(|p| p.parse().ok())
            .collect()
    };
    // rootrun's children: the monitor (which has the container under it)
    // and a short-lived page-cache prefetcher.
    let monitor = children(run.id())
        .into_iter()
        .find(|p| !children(*p).is_empty())
        .unwrap_or(0);
    let init = children(monitor).first().copied().unwrap_or(0);
    let shell = children(init).first().copied().unwrap_or(0);
    assert!(shell > 0, "no shell process found; output: {}", run.seen);
    let host_signal = libc::SIGRTMIN() + 6;
    // nix's Signal has no real-time signals; kill(1) sends any number.
    let sent = std::process::Command::new("kill")
        .arg(format!("-{host_signal}"))
        .arg(shell.to_string())
        .status()
        .expect("run kill");
    assert!(sent.success(), "kill -{host_signal} {shell} failed");
    let expected = format!("got-{}", libc::SIGRTMIN() + 4);
    run.wait_for("got-", Duration::from_secs(20));
    run.signal(nix::sys::signal::Signal::SIGTERM);
    let (_, seen) = run.finish(LIMIT);
    assert!(
        seen.contains(&expected),
        "host signal {host_signal} did not arrive as {expected}: {seen}"
    );
    frame.check();
}

/// On a fresh host binfmt_misc is not mounted; rootrun mounts it in its own
/// namespace to find the handler. Simulated by unmounting it in a private
/// mount namespace of the test's own.
#[test]
fn rootrun_mounts_binfmt_misc_itself_when_the_host_has_not() {
    let Some((frame, image)) = Frame::setup("binfmt_misc not mounted")
        .emulation()
        .tools(&["unshare"])
        .busybox("arm64")
    else {
        return;
    };
    let script = format!(
        "umount {BINFMT_DIR} && test ! -e {BINFMT_DIR}/register && exec {} -q {} -- uname -m",
        env!("CARGO_BIN_EXE_rootrun"),
        image.display()
    );
    // unshare and sh exec rootrun: its PID is the spawned child's.
    let out = frame.run(
        std::process::Command::new("unshare").args([
            "--mount",
            "--propagation",
            "private",
            "sh",
            "-c",
            &script,
        ]),
        b"",
        LIMIT,
    );
    assert_eq!(text(&out.stdout).trim(), "aarch64", "{}", text(&out.stderr));
    assert!(
        Path::new(BINFMT_DIR).join("register").exists(),
        "the host's binfmt_misc was unmounted"
    );
    frame.check();
}

#[test]
fn inspect_works_as_a_normal_user() {
    let Some((frame, image)) = Frame::setup("inspect as nobody")
        .any_user()
        .tools(&["setpriv"])
        .busybox("arm64")
    else {
        return;
    };
    // As root, nobody's inspect; as a normal user already, our own.
    let mut inspect = if is_root() {
        rootrun_as_nobody()
    } else {
        rootrun()
    };
    let out = inspect
        .args(["inspect", "--json"])
        .arg(&image)
        .output()
        .expect("run inspect as nobody");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(report["arch"], "aarch64");
    assert_eq!(report["evidence"]["elf"]["machine"], 183);
    frame.check();
}

/// CI jobs boot-test several architectures at once: concurrent runs must
/// not disturb each other (names, locks, mounts are per run).
#[test]
fn concurrent_runs_of_several_architectures_do_not_interfere() {
    let Some(frame) = Frame::setup("concurrent runs").emulation().start() else {
        return;
    };
    let Some(images) = every_arch(&frame) else {
        return;
    };
    let children: Vec<_> = images
        .iter()
        .map(|(image, _)| {
            frame.spawn(
                rootrun()
                    .arg("-q")
                    .arg(image)
                    .args(["--", "/bin/sh", "-c", "sleep 1; uname -m"])
                    .stdin(std::process::Stdio::null())
                    .stdout(std::process::Stdio::piped())
                    .stderr(std::process::Stdio::piped()),
            )
        })
        .collect();
    for (child, (image, uname)) in children.into_iter().zip(&images) {
        let out = wait_with_limit(child, LIMIT);
        assert_eq!(
            text(&out.stdout).trim(),
            *uname,
            "{}: {}",
            image.display(),
            text(&out.stderr)
        );
        assert_eq!(out.status.code(), Some(0));
    }
    frame.check();
}
