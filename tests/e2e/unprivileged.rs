//! `--unprivileged`: guest root is an unprivileged host id, the image's
//! files keep their owners inside through idmapped mounts, and a foreign
//! image runs through a binfmt_misc of the container's own, whatever the
//! host's table holds (or whether the host mounted one at all); the host's
//! table is the same before, during and after. And the escape probes, as
//! guest root, in both modes side by side: what each mode lets through is
//! what the README's security section says.

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use rootrun::arch::BINFMT_DIR;

use crate::harness::{binfmt_table, host_disk, rootrun, text, Frame};

const LIMIT: Duration = Duration::from_secs(120);
const BOOT_LIMIT: Duration = Duration::from_secs(240);

/// Runs `script` with /bin/sh as guest root, in `mode`.
fn as_guest_root(frame: &Frame, mode: &str, args: &[&str], image: &Path, script: &str) -> Output {
    frame.run(
        rootrun()
            .args(["-q", mode])
            .args(args)
            .arg(image)
            .args(["--", "/bin/sh", "-c", script]),
        b"",
        LIMIT,
    )
}

/// Ids inside, as seen from inside: uname, the uid map's line, the owner of
/// an image file and of a file the guest makes, and its binfmt_misc.
const IDS: &str = "uname -m; cat /proc/self/uid_map; stat -c %u:%g /bin/busybox; \
                   echo new > /etc/new && stat -c %u:%g /etc/new; \
                   ls /proc/sys/fs/binfmt_misc | tr '\\n' ' '; echo";

fn check_ids(out: &Output, uname: &str, foreign: bool) {
    let stdout = text(&out.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(out.status.code(), Some(0), "{stdout} {}", text(&out.stderr));
    assert_eq!(lines.first(), Some(&uname), "{stdout}");
    // Container uid 0 is a host id other than 0, 65536 of them.
    let map: Vec<&str> = lines[1].split_whitespace().collect();
    assert_eq!(map[0], "0", "{stdout}");
    assert_ne!(map[1], "0", "guest root is host root: {stdout}");
    assert_eq!(map[2], "65536", "{stdout}");
    // The image's files are root's inside (idmapped, not nobody's), and
    // so is what root makes.
    assert_eq!(lines[2], "0:0", "{stdout}");
    assert_eq!(lines[3], "0:0", "{stdout}");
    if foreign {
        // Only the entry rootrun registered, in the container's own table.
        let names: Vec<&str> = lines[4].split_whitespace().collect();
        assert_eq!(names, ["qemu-aarch64", "register", "status"], "{stdout}");
    }
}

#[test]
fn unprivileged_runs_map_ids_for_every_lower_and_leave_the_hosts_binfmt_misc_alone() {
    let Some(frame) = Frame::setup("--unprivileged command mode")
        .emulation()
        .start()
    else {
        return;
    };
    let (Some(amd64), Some(arm64)) = (frame.busybox("amd64"), frame.busybox("arm64")) else {
        return;
    };
    let before = binfmt_table();
    for (image, uname, foreign) in [(&amd64, "x86_64", false), (&arm64, "aarch64", true)] {
        for lower in [&[][..], &["--unpack"][..]] {
            let out = as_guest_root(&frame, "--unprivileged", lower, image, IDS);
            check_ids(&out, uname, foreign);
        }
    }
    // An extracted tree (--rootfs DIR, here on the host's file system).
    let tree = frame.path("unprivileged-tree");
    let out = rootrun()
        .args(["unpack", "-q"])
        .arg(&arm64)
        .arg(&tree)
        .output()
        .expect("rootrun unpack");
    assert!(out.status.success(), "{}", text(&out.stderr));
    frame.watch(&tree);
    let out = as_guest_root(&frame, "--unprivileged", &["--rootfs"], &tree, IDS);
    check_ids(&out, "aarch64", true);
    assert!(!tree.join("etc/new").exists(), "the guest wrote into DIR");
    // A --bind directory is the host's as it is: host root's files are
    // nobody's inside and guest root (an unprivileged host id) cannot write
    // into host root's 0755 directory, so it cannot plant host root's
    // files (a set-uid program, say) there.
    use std::os::unix::fs::MetadataExt;
    let shared = frame.dir("unprivileged-bind");
    std::fs::write(shared.join("from-host"), "host\n").unwrap();
    let probe = "stat -c %u:%g /mnt/from-host; echo guest > /mnt/from-guest || echo refused";
    let bind = format!("{}:/mnt", shared.display());
    let out = as_guest_root(&frame, "--unprivileged", &["--bind", &bind], &amd64, probe);
    let stdout = text(&out.stdout);
    assert_eq!(
        stdout.lines().collect::<Vec<_>>(),
        ["65534:65534", "refused"],
        "{stdout}"
    );
    assert!(!shared.join("from-guest").exists());
    // `:idmap` asks for an idmapped mount: host owners inside, and what
    // guest root writes there is host root's (nothing chowned).
    let bind = format!("{}:/mnt:idmap", shared.display());
    let out = as_guest_root(&frame, "--unprivileged", &["--bind", &bind], &amd64, probe);
    assert_eq!(text(&out.stdout).trim(), "0:0", "{}", text(&out.stderr));
    let made = std::fs::metadata(shared.join("from-guest")).expect("the guest's file");
    assert_eq!((made.uid(), made.gid()), (0, 0));
    // A file system that cannot be idmapped (sysfs) is one line naming
    // --privileged.
    let out = as_guest_root(
        &frame,
        "--unprivileged",
        &["--bind", "/sys/kernel:/mnt:ro,idmap"],
        &amd64,
        "true",
    );
    assert_eq!(out.status.code(), Some(125));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("idmapped") && stderr.contains("--privileged"),
        "{stderr}"
    );
    assert_eq!(binfmt_table(), before, "the host's binfmt_misc changed");
    frame.check();
}

#[test]
fn unprivileged_foreign_images_run_without_a_host_handler_or_host_binfmt_misc() {
    let Some((frame, image)) = Frame::setup("--unprivileged without host emulation")
        .emulation()
        .exclusive()
        .tools(&["unshare"])
        .busybox("arm64")
    else {
        return;
    };
    // binfmt_misc not mounted: unmounted in a private mount namespace.
    let script = format!(
        "umount {BINFMT_DIR} && test ! -e {BINFMT_DIR}/register && \
         exec {} -q --unprivileged {} -- uname -m",
        env!("CARGO_BIN_EXE_rootrun"),
        image.display()
    );
    let out = frame.run(
        Command::new("unshare").args(["--mount", "--propagation", "private", "sh", "-c", &script]),
        b"",
        LIMIT,
    );
    assert_eq!(text(&out.stdout).trim(), "aarch64", "{}", text(&out.stderr));

    // No handler for aarch64 on the host: privileged runs cannot, and say
    // so; unprivileged ones use the installed emulator.
    let mut binfmt = frame.binfmt();
    binfmt.set_aside_if_enabled("rootrun-qemu-aarch64");
    if Path::new(BINFMT_DIR).join("qemu-aarch64").exists() {
        binfmt.remove_system("qemu-aarch64");
    }
    let before = binfmt_table();
    let privileged = as_guest_root(&frame, "--privileged", &[], &image, "uname -m");
    assert_eq!(privileged.status.code(), Some(125));
    assert!(
        text(&privileged.stderr).contains("no binfmt_misc handler for aarch64"),
        "{}",
        text(&privileged.stderr)
    );
    let out = as_guest_root(&frame, "--unprivileged", &[], &image, IDS);
    check_ids(&out, "aarch64", true);
    assert_eq!(binfmt_table(), before, "the host's binfmt_misc changed");
    drop(binfmt);
    frame.check();
}

#[test]
fn unprivileged_boots_keep_the_hosts_table_while_they_run_and_power_off() {
    let Some(frame) = Frame::setup("--unprivileged boot").emulation().start() else {
        return;
    };
    let (Some(amd64), Some(arm64)) = (frame.busybox("amd64"), frame.busybox("arm64")) else {
        return;
    };
    let before = binfmt_table();
    // The echo of an empty listing: nothing between the words.
    for (image, table) in [
        (amd64, "table: :end"),
        (arm64, "table: qemu-aarch64 register status :end"),
    ] {
        let mut boot = frame.live(
            rootrun()
                .args(["-q", "--unprivileged", "--stop-timeout=60"])
                .arg(&image),
            Stdio::piped(),
        );
        boot.expect("ROOTRUN-BOOT-OK", BOOT_LIMIT);
        assert_eq!(binfmt_table(), before, "the host's binfmt_misc changed");
        boot.write_and_close_stdin(
            b"echo uid-map $(cat /proc/self/uid_map); \
              echo table: $(ls /proc/sys/fs/binfmt_misc) :end; poweroff\n",
        );
        let (out, seen) = boot.finish(LIMIT);
        assert_eq!(out.status.code(), Some(0), "{seen} {}", text(&out.stderr));
        assert!(seen.contains("ROOTRUN-SHUTDOWN"), "{seen}");
        assert!(seen.contains(table), "{seen}");
        assert!(seen.contains("uid-map 0 "), "{seen}");
        assert!(
            !seen.contains("uid-map 0 0 "),
            "guest root is host root: {seen}"
        );
    }
    assert_eq!(binfmt_table(), before, "the host's binfmt_misc changed");
    frame.check();
}

#[test]
fn unprivileged_emulated_systemd_boots_to_login_and_powers_off() {
    let Some(frame) = Frame::setup("--unprivileged systemd").emulation().start() else {
        return;
    };
    let Some(tree) = frame.systemd_rootfs("arm64") else {
        return;
    };
    let before = binfmt_table();
    let mut boot = frame.live(
        rootrun()
            .args(["-q", "--unprivileged", "--stop-timeout=90", "--rootfs"])
            .arg(&tree),
        Stdio::piped(),
    );
    if !boot.wait_for("login:", BOOT_LIMIT) {
        boot.signal(nix::sys::signal::Signal::SIGKILL);
        let (_, seen) = boot.finish(BOOT_LIMIT);
        panic!("no login prompt unprivileged; console:\n{seen}");
    }
    assert_eq!(binfmt_table(), before, "the host's binfmt_misc changed");
    boot.signal(nix::sys::signal::Signal::SIGTERM);
    let (out, seen) = boot.finish(Duration::from_secs(120));
    assert_eq!(out.status.code(), Some(143), "{}", text(&out.stderr));
    assert!(
        seen.contains("Reached target poweroff.target"),
        "systemd did not power off: {seen}"
    );
    frame.check();
}

/// One probe in both modes: what guest root got, privileged then
/// unprivileged.
fn side_by_side(frame: &Frame, image: &Path, script: &str) -> [String; 2] {
    ["--privileged", "--unprivileged"].map(|mode| {
        let out = as_guest_root(frame, mode, &[], image, script);
        let stdout = text(&out.stdout);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{mode}: {stdout} {}",
            text(&out.stderr)
        );
        stdout.trim().to_owned()
    })
}

/// `sh -c 'exec 3>>FILE'`: opened for writing, never written.
fn open_for_writing(file: &str) -> String {
    format!("if (exec 3>>{file}) 2>/dev/null; then echo writable; else echo refused; fi")
}

#[test]
fn escape_probe_binfmt_misc_registration_reaches_the_host_only_when_privileged() {
    let Some((frame, image)) = Frame::setup("escape: binfmt_misc")
        .exclusive()
        .busybox("amd64")
    else {
        return;
    };
    let pid = std::process::id();
    let names = [
        format!("rootrun-probe-privileged-{pid}"),
        format!("rootrun-probe-unprivileged-{pid}"),
    ];
    // Whatever a privileged guest registers on the host goes at the end.
    let mut binfmt = frame.binfmt();
    for name in &names {
        binfmt.remove_on_drop(name);
    }
    let before = binfmt_table();
    let mut results = Vec::new();
    for (mode, name) in ["--privileged", "--unprivileged"].iter().zip(&names) {
        let script = format!(
            "mkdir -p /tmp/b && mount -t binfmt_misc binfmt_misc /tmp/b && \
             echo ':{name}:E::rootrunprobe::/bin/true:' > /tmp/b/register && \
             test -e /tmp/b/{name} && echo registered"
        );
        let out = as_guest_root(&frame, mode, &[], &image, &script);
        results.push(text(&out.stdout).trim().to_owned());
    }
    let on_host = |name: &str| Path::new(BINFMT_DIR).join(name).exists();
    // Privileged: guest root registers a handler the whole host then uses
    // (the README says so: boot only images you would flash).
    assert_eq!(results[0], "registered");
    assert!(
        on_host(&names[0]),
        "a privileged guest's entry is the host's"
    );
    // Unprivileged: it registers in its own instance; the host's is as it
    // was.
    assert_eq!(results[1], "registered");
    assert!(
        !on_host(&names[1]),
        "an unprivileged guest reached the host"
    );
    binfmt.remove_now(&names[0]);
    assert_eq!(binfmt_table(), before);
    drop(binfmt);
    frame.check();
}

#[test]
fn escape_probe_host_disks_through_mknod_or_devtmpfs() {
    let Some((frame, image)) = Frame::with_busybox("escape: disks", "amd64") else {
        return;
    };
    let (major, minor) = host_disk().expect("this host has a block device to test with");
    let script = format!(
        "mknod /tmp/disk b {major} {minor} 2>/dev/null && echo mknod-made || echo mknod-refused; \
         [ -b /tmp/disk ] && head -c 16 /tmp/disk >/dev/null 2>&1 && echo disk-read; \
         mkdir -p /tmp/d && mount -t devtmpfs devtmpfs /tmp/d 2>/dev/null && echo devtmpfs-mounted \
         || echo devtmpfs-refused; \
         for d in /tmp/d/*; do [ -b \"$d\" ] && head -c 16 \"$d\" >/dev/null 2>&1 && echo disk-read; done; true"
    );
    let [privileged, unprivileged] = side_by_side(&frame, &image, &script);
    // Privileged: nodes can be made and devtmpfs mounted; the devices
    // controller refuses every read.
    assert_eq!(privileged, "mknod-made\ndevtmpfs-mounted", "{privileged}");
    // Unprivileged: neither.
    assert_eq!(
        unprivileged, "mknod-refused\ndevtmpfs-refused",
        "{unprivileged}"
    );
    frame.check();
}

#[test]
fn escape_probe_kernel_knobs_core_pattern_sysrq_uevent_helper() {
    let Some((frame, image)) = Frame::with_busybox("escape: kernel knobs", "amd64") else {
        return;
    };
    let files = [
        "/proc/sys/kernel/core_pattern",
        "/proc/sysrq-trigger",
        "/sys/kernel/uevent_helper",
    ];
    for file in files {
        let [privileged, unprivileged] = side_by_side(&frame, &image, &open_for_writing(file));
        assert_eq!(privileged, "refused", "{file} privileged");
        assert_eq!(unprivileged, "refused", "{file} unprivileged");
    }
    frame.check();
}

#[test]
fn escape_probe_loading_a_kernel_module() {
    let Some((frame, image)) = Frame::with_busybox("escape: modules", "amd64") else {
        return;
    };
    // A bogus module: a kernel that let the call through would answer
    // ENOEXEC ("invalid module format"), not EPERM.
    let script = "printf '\\177ELF' > /tmp/x.ko; insmod /tmp/x.ko 2>&1; true";
    for seen in side_by_side(&frame, &image, script) {
        assert!(seen.contains("Operation not permitted"), "{seen}");
    }
    frame.check();
}

#[test]
fn escape_probe_host_processes_and_rootruns_file_descriptors() {
    let Some((frame, image)) = Frame::with_busybox("escape: processes", "amd64") else {
        return;
    };
    // The test's own PID is a host process the guest must not see; no
    // process inside holds a descriptor of rootrun's (its state, the image,
    // the checkout).
    let pid = std::process::id();
    let script = format!(
        "echo procs $(ls -d /proc/[0-9]* | wc -l); \
         grep -qs e2e /proc/{pid}/cmdline && echo sees-host-process; \
         kill -0 {pid} 2>/dev/null && grep -qs e2e /proc/{pid}/cmdline && echo signals-host-process; \
         echo host-fds $(ls -l /proc/[0-9]*/fd/ 2>/dev/null | grep -c -e /run/rootrun -e '\\.img' -e {checkout})",
        checkout = env!("CARGO_MANIFEST_DIR")
    );
    for seen in side_by_side(&frame, &image, &script) {
        let procs: usize = seen
            .lines()
            .find_map(|l| l.strip_prefix("procs "))
            .and_then(|n| n.trim().parse().ok())
            .unwrap_or(usize::MAX);
        assert!(procs < 10, "the guest sees {procs} processes: {seen}");
        assert!(!seen.contains("host-process"), "{seen}");
        assert!(seen.ends_with("host-fds 0"), "{seen}");
    }
    frame.check();
}

#[test]
fn unprivileged_sysvinit_gets_its_getty_on_the_console_and_stops() {
    let Some(frame) = Frame::setup("--unprivileged getty")
        .tools(&["debootstrap", "chroot"])
        .emulation()
        .start()
    else {
        return;
    };
    // A getty opens /dev/tty1, rootrun's console bound there: the pty must
    // be the container root's, or no login prompt ever comes.
    let Some(tree) = frame.foreign_debian_rootfs("arm64", "sysvinit-core") else {
        return;
    };
    let out = frame.run(
        rootrun()
            .args([
                "-q",
                "--unprivileged",
                "--expect",
                "login:",
                "--timeout",
                "150",
            ])
            .arg("--rootfs")
            .arg(&tree),
        b"",
        BOOT_LIMIT,
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    frame.check();
}
