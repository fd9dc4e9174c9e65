//! Image formats besides SquashFS, for real: the BusyBox fixture repacked as
//! an ext4 and an EROFS image (loop-mounted read-only, detached), tar in
//! every compression and cpio newc (unpacked into a detached tmpfs), each
//! booted in command mode and inspected; an ext4 image booted to init; an
//! arm64 ext4 image under emulation; and hostile archives and damaged
//! superblocks refused with one line, with nothing written outside and
//! nothing (loop device, mount, state) left behind.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::harness::{rootrun, text, Frame};

const NATIVE: &str = "amd64";
const LIMIT: Duration = Duration::from_secs(60);
const FORMATS: [&str; 9] = [
    "ext4", "erofs", "tar", "tar.gz", "tar.xz", "tar.zst", "tar.bz2", "cpio", "cpio.gz",
];

/// `rootrun -q IMAGE -- /bin/busybox ARGS...`.
fn busybox_command(image: &Path, args: &[&str]) -> Command {
    let mut cmd = rootrun();
    cmd.arg("-q")
        .arg(image)
        .args(["--", "/bin/busybox"])
        .args(args);
    cmd
}

#[test]
fn every_format_boots_in_command_mode_and_inspect_names_it_and_its_arch() {
    let Some(frame) = Frame::new("formats command mode") else {
        return;
    };
    for format in FORMATS {
        let Some(image) = frame.busybox_in_format(NATIVE, format) else {
            return;
        };
        let out = frame.run(
            &mut busybox_command(
                &image,
                &["sh", "-c", "uname -m; test -x /sbin/init && echo init-ok"],
            ),
            b"",
            LIMIT,
        );
        assert_eq!(
            text(&out.stdout),
            "x86_64\ninit-ok\n",
            "{format}: {}",
            text(&out.stderr)
        );
        assert_eq!(out.status.code(), Some(0), "{format}");

        let out = frame.run(rootrun().arg("inspect").arg(&image), b"", LIMIT);
        let report = text(&out.stdout);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{format}: {}",
            text(&out.stderr)
        );
        assert!(report.contains("architecture x86_64"), "{format}: {report}");
        let kind = match format {
            "ext4" => "ext4 file system",
            "erofs" => "erofs file system",
            f if f.starts_with("tar") => "tar archive",
            _ => "cpio archive",
        };
        let format_line = report
            .lines()
            .find(|l| l.starts_with("format"))
            .unwrap_or_default();
        assert!(format_line.contains(kind), "{format}: {report}");
        // Nothing stays between two runs.
        assert!(
            frame.leftovers().is_empty(),
            "{format}: {:?}",
            frame.leftovers()
        );
    }
    frame.check();
}

#[test]
fn an_ext4_image_boots_to_init_and_powers_off() {
    let Some(frame) = Frame::new("ext4 boot") else {
        return;
    };
    let Some(image) = frame.busybox_in_format(NATIVE, "ext4") else {
        return;
    };
    let out = frame.run(
        rootrun().arg(&image),
        b"echo hello-$((6*7)) > /etc/written; cat /etc/written; poweroff -f\n",
        LIMIT,
    );
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("ROOTRUN-BOOT-OK"),
        "no boot marker: {stdout}"
    );
    assert!(stdout.lines().any(|l| l == "hello-42"), "{stdout}");
    assert_eq!(out.status.code(), Some(0), "stderr: {}", text(&out.stderr));
    frame.check();
}

#[test]
fn a_foreign_ext4_image_boots_under_emulation() {
    let Some(frame) = Frame::setup("arm64 ext4").emulation().start() else {
        return;
    };
    let Some(image) = frame.busybox_in_format("arm64", "ext4") else {
        return;
    };
    let out = frame.run(&mut busybox_command(&image, &["uname", "-m"]), b"", LIMIT);
    assert_eq!(text(&out.stdout), "aarch64\n", "{}", text(&out.stderr));
    assert_eq!(out.status.code(), Some(0));
    frame.check();
}

/// Runs rootrun on `image` and returns its stderr, which must be one line
/// with exit status 125.
fn refused(frame: &Frame, image: &Path) -> String {
    let out = frame.run(&mut busybox_command(image, &["true"]), b"", LIMIT);
    let stderr = text(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(125),
        "{}: {stderr}",
        image.display()
    );
    assert_eq!(stderr.lines().count(), 1, "not one line: {stderr}");
    assert!(text(&out.stdout).is_empty());
    stderr
}

/// One ustar header block for `name` (type `kind`, `link` target), then
/// `data` padded to 512 bytes.
fn tar_entry(name: &str, kind: u8, link: &str, data: &[u8]) -> Vec<u8> {
    let mut header = [0u8; 512];
    header[..name.len()].copy_from_slice(name.as_bytes());
    header[100..107].copy_from_slice(b"0000644");
    header[108..115].copy_from_slice(b"0000000");
    header[116..123].copy_from_slice(b"0000000");
    header[124..135].copy_from_slice(format!("{:011o}", data.len()).as_bytes());
    header[136..147].copy_from_slice(b"00000000000");
    header[156] = kind;
    header[157..157 + link.len()].copy_from_slice(link.as_bytes());
    header[257..263].copy_from_slice(b"ustar\0");
    header[263..265].copy_from_slice(b"00");
    header[148..156].copy_from_slice(b"        ");
    let sum: u32 = header.iter().map(|&b| u32::from(b)).sum();
    header[148..155].copy_from_slice(format!("{sum:06o}\0").as_bytes());
    let mut out = header.to_vec();
    out.extend_from_slice(data);
    out.resize(out.len().div_ceil(512) * 512, 0);
    out
}

fn tar(entries: &[Vec<u8>]) -> Vec<u8> {
    let mut out = entries.concat();
    out.extend_from_slice(&[0u8; 1024]);
    out
}

/// One cpio newc entry (`mode` with its type bits) and its data.
fn cpio_entry(name: &str, mode: u32, data: &[u8]) -> Vec<u8> {
    let mut out = format!(
        "070701{:08x}{mode:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}",
        1,
        0,
        0,
        1,
        0,
        data.len(),
        0,
        0,
        0,
        0,
        name.len() + 1,
        0
    )
    .into_bytes();
    out.extend_from_slice(name.as_bytes());
    out.push(0);
    out.resize(out.len().div_ceil(4) * 4, 0);
    out.extend_from_slice(data);
    out.resize(out.len().div_ceil(4) * 4, 0);
    out
}

fn cpio(entries: &[Vec<u8>]) -> Vec<u8> {
    let mut out = entries.concat();
    out.extend(cpio_entry("TRAILER!!!", 0, b""));
    out
}

#[test]
fn hostile_archives_are_refused_with_one_line_and_write_nothing_outside() {
    let Some(frame) = Frame::new("hostile archives") else {
        return;
    };
    let outside = frame.dir("outside");
    let target = outside.display().to_string();
    let escape = format!("{target}/escaped");
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "dotdot.tar",
            tar(&[tar_entry("../../escaped", b'0', "", b"x")]),
            "\"..\"",
        ),
        (
            "absolute.tar",
            tar(&[tar_entry(&escape, b'0', "", b"x")]),
            "absolute",
        ),
        (
            "through-symlink.tar",
            tar(&[
                tar_entry("etc", b'2', &target, b""),
                tar_entry("etc/escaped", b'0', "", b"x"),
            ]),
            "symbolic link",
        ),
        (
            "hardlink-out.tar",
            tar(&[tar_entry("passwd", b'1', "../../../etc/passwd", b"")]),
            "hard link",
        ),
        (
            "hardlink-via-symlink.tar",
            tar(&[
                tar_entry("host", b'2', "/etc", b""),
                tar_entry("passwd", b'1', "host/passwd", b""),
            ]),
            "symbolic link",
        ),
        (
            "dotdot.cpio",
            cpio(&[cpio_entry("../../escaped", 0o100644, b"x")]),
            "\"..\"",
        ),
        (
            "absolute.cpio",
            cpio(&[cpio_entry(&escape, 0o100644, b"x")]),
            "absolute",
        ),
        (
            "through-symlink.cpio",
            cpio(&[
                cpio_entry("etc", 0o120777, target.as_bytes()),
                cpio_entry("etc/escaped", 0o100644, b"x"),
            ]),
            "symbolic link",
        ),
        (
            "long-name.cpio",
            cpio(&[cpio_entry(&"a/".repeat(3000), 0o040755, b"")]),
            "bytes",
        ),
    ];
    for (name, bytes, why) in cases {
        let image = frame.path(name);
        fs::write(&image, bytes).expect("write the archive");
        let stderr = refused(&frame, &image);
        assert!(stderr.contains(why), "{name}: {stderr}");
        assert!(
            fs::read_dir(&outside)
                .expect("read outside")
                .next()
                .is_none(),
            "{name} wrote outside the tmpfs"
        );
    }
    assert!(!Path::new("/escaped").exists());
    frame.check();
}

#[test]
fn damaged_ext4_superblocks_give_one_line_and_leave_nothing() {
    let Some(frame) = Frame::new("damaged ext4") else {
        return;
    };
    let Some(image) = frame.busybox_in_format(NATIVE, "ext4") else {
        return;
    };
    let bytes = fs::read(&image).expect("read the ext4 image");
    let damaged = |name: &str, bytes: &[u8]| -> PathBuf {
        let path = frame.path(name);
        fs::write(&path, bytes).expect("write");
        path
    };
    let truncated = damaged("truncated.ext4", &bytes[..bytes.len() / 2]);
    assert!(refused(&frame, &truncated).contains("truncated"));
    // s_log_block_size (superblock at 1024, field at 0x18).
    let mut garbage = bytes.clone();
    garbage[1024 + 0x18] = 0x7f;
    let garbage = damaged("garbage.ext4", &garbage);
    assert!(refused(&frame, &garbage).contains("damaged superblock"));
    // An incompatible feature no kernel mounts (0x1000, dirdata).
    let mut feature = bytes.clone();
    feature[1024 + 0x61] |= 0x10;
    let feature = damaged("feature.ext4", &feature);
    assert!(refused(&frame, &feature).contains("features 0x1000"));
    // The magic alone, nothing else that makes a file system: the kernel
    // refuses it, and rootrun says so on one line.
    let mut zeros = vec![0u8; 8 << 20];
    zeros[1024 + 0x38..1024 + 0x3a].copy_from_slice(&[0x53, 0xEF]);
    zeros[1024 + 0x04] = 0x10; // 4096 blocks of 1 KiB: 4 MiB.
    let zeros = damaged("magic-only.ext4", &zeros);
    assert!(refused(&frame, &zeros).contains("refused to mount it as ext4"));
    frame.check();
}

/// `rootrun: [   0.006s] step: ... (0.3 ms)`: the time since start, then
/// the step and how long it took.
fn timed_step(line: &str) -> bool {
    let Some(rest) = line.strip_prefix("rootrun: [") else {
        return false;
    };
    let Some((seconds, event)) = rest.split_once("s] ") else {
        return false;
    };
    seconds.trim().parse::<f64>().is_ok() && event.starts_with("step: ") && event.ends_with(" ms)")
}

#[test]
fn verbose_runs_log_timed_steps_on_stderr_and_default_runs_log_nothing() {
    let Some(frame) = Frame::new("-v and RUST_LOG") else {
        return;
    };
    let Some(image) = frame.busybox_in_format(NATIVE, "ext4") else {
        return;
    };
    let quiet = frame.run(&mut busybox_command(&image, &["echo", "out"]), b"", LIMIT);
    assert_eq!(text(&quiet.stdout), "out\n");
    assert_eq!(text(&quiet.stderr), "", "a default run logged");

    let mut verbose = rootrun();
    verbose
        .arg("-v")
        .arg(&image)
        .args(["--", "/bin/busybox", "echo", "out"]);
    let out = frame.run(&mut verbose, b"", LIMIT);
    assert_eq!(text(&out.stdout), "out\n", "log lines reached stdout");
    let stderr = text(&out.stderr);
    let steps = stderr.lines().filter(|l| timed_step(l)).count();
    assert!(steps > 8, "few timed steps: {stderr}");
    for event in [
        "open image",
        "detect architecture",
        "binfmt handler",
        "teardown",
    ] {
        assert!(stderr.contains(event), "no {event:?} line: {stderr}");
    }
    assert!(
        !stderr.contains("debug: "),
        "-v showed debug lines: {stderr}"
    );

    // -vv adds detail, liblxc's log among it.
    let mut very = rootrun();
    very.arg("-vv")
        .arg(&image)
        .args(["--", "/bin/busybox", "true"]);
    let out = frame.run(&mut very, b"", LIMIT);
    let stderr = text(&out.stderr);
    assert!(stderr.contains("debug: loop device"), "{stderr}");
    assert!(stderr.contains("debug: liblxc: "), "{stderr}");

    // RUST_LOG selects the same lines without -v (and without the banner).
    let mut logged = busybox_command(&image, &["true"]);
    logged.env("RUST_LOG", "rootrun=info");
    let out = frame.run(&mut logged, b"", LIMIT);
    let stderr = text(&out.stderr);
    assert!(
        stderr.lines().filter(|l| timed_step(l)).count() > 8,
        "{stderr}"
    );
    assert!(!stderr.contains("running a command in"), "{stderr}");
    frame.check();
}

#[test]
fn mounted_and_unpacked_formats_boot_unprivileged_with_their_ids_mapped() {
    let Some(frame) = Frame::new("formats --unprivileged") else {
        return;
    };
    for format in ["ext4", "erofs", "tar.gz", "cpio.gz"] {
        let Some(image) = frame.busybox_in_format(NATIVE, format) else {
            return;
        };
        let mut cmd = rootrun();
        cmd.args(["--unprivileged", "-q"]).arg(&image).args([
            "--",
            "/bin/busybox",
            "sh",
            "-c",
            "cat /proc/self/uid_map; stat -c %u:%g /bin/busybox",
        ]);
        let out = frame.run(&mut cmd, b"", LIMIT);
        let stdout = text(&out.stdout);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{format}: {}",
            text(&out.stderr)
        );
        let lines: Vec<&str> = stdout.lines().collect();
        let map: Vec<&str> = lines.first().unwrap_or(&"").split_whitespace().collect();
        // Guest root is a host id other than 0, and the image's files are
        // root's inside: the lower layer is idmapped, whatever its kind.
        assert!(
            map.len() == 3 && map[0] == "0" && map[1] != "0",
            "{format}: {stdout}"
        );
        assert_eq!(lines.get(1), Some(&"0:0"), "{format}: {stdout}");
    }
    frame.check();
}
