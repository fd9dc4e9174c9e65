//! The host matrix (issue 8): rootrun on a Debian 13 userland, with its
//! liblxc 6.0 and its QEMU 10, on this Debian 12 kernel host.
//!
//! A Debian 13 tree is built once with debootstrap and cached outside the
//! checkout (tests/fixtures/build-debian13-tree.sh); every case runs rootrun
//! chrooted into it from a private mount namespace
//! (tests/fixtures/in-debian13.sh), where only the tree's liblxc.so.1 can
//! be loaded. For the arm64 cases, the tree's QEMU 10 is registered as a
//! temporary binfmt_misc handler, `rootrun-test-trixie-PID`, from inside the
//! chroot, so that its interpreter path is the tree's `/usr/bin/qemu-aarch64`:
//! the kernel opens it at registration (F flag) and runs every aarch64
//! program of the host through it while it is registered (the newest
//! matching entry wins), so the tests hold the suite's lock file
//! exclusively meanwhile, and remove the entry on every path.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;

use crate::harness::{cache_dir, run_with_input, sha256, text, Frame};

const LIMIT: Duration = Duration::from_secs(90);
const BOOT_LIMIT: Duration = Duration::from_secs(240);
/// What the issue asks of an emulated systemd's stop.
const STOP_LIMIT: Duration = Duration::from_secs(2);

const BINFMT: &str = "/proc/sys/fs/binfmt_misc";
/// Where in-debian13.sh binds rootrun's directory and the data directory
/// (the test's work directory, or the cached systemd root's) inside the
/// tree.
const BIN_INSIDE: &str = "/mnt/bin/rootrun";
const DATA_INSIDE: &str = "/mnt/data";

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// The frame of a host-matrix case: root, the tools, Debian's handlers; a
/// case that registers the tree's QEMU changes binfmt_misc and so runs
/// alone (across processes too). The Debian 13 tree is the frame's: loop
/// devices and mounts under it are the test's.
fn frame(test: &str, registers: bool) -> Option<(Frame, PathBuf)> {
    let setup = Frame::setup(test)
        .tools(&["debootstrap", "unshare", "chroot", "realpath"])
        .emulation();
    let frame = if registers {
        setup.exclusive().start()?
    } else {
        setup.start()?
    };
    let tree = debian13_tree();
    frame.own(&tree);
    Some((frame, tree))
}

/// The cached Debian 13 tree: `$ROOTRUN_TEST_CACHE` (default
/// /var/cache/rootrun-tests) `/debian13-<first 16 hex digits of the SHA-256
/// of build-debian13-tree.sh>`, so a changed script builds a new tree. The
/// script runs on every call (it returns at once when the tree is
/// complete), so a cache emptied while the suite runs is filled again.
fn debian13_tree() -> PathBuf {
    let script = fixture("build-debian13-tree.sh");
    let base = cache_dir().unwrap_or_else(|e| panic!("{e}"));
    let tree = base.join(format!("debian13-{}", &sha256(&script)[..16]));
    let cached = tree.join(".rootrun-tree-complete").exists();
    let started = Instant::now();
    let out = Command::new(&script)
        .arg(&tree)
        .output()
        .expect("run tests/fixtures/build-debian13-tree.sh");
    assert!(
        out.status.success(),
        "building the Debian 13 tree in {} failed (debootstrap trixie from deb.debian.org): {}",
        tree.display(),
        text(&out.stderr)
    );
    if !cached {
        eprintln!(
            "host-matrix: Debian 13 tree {} built in {:.1} s",
            tree.display(),
            started.elapsed().as_secs_f64()
        );
    }
    tree
}

/// rootrun with `args`, chrooted into the Debian 13 tree with `data` bound
/// at `DATA_INSIDE`; paths in `args` are the ones inside. Not started yet;
/// its PID will be rootrun's (the wrapper execs all the way).
/// Boots `rootfs` with the Debian 13 tree's rootrun (`--stop-timeout=90`,
/// then `extra`) until the console shows `until` (else panics with `failure` and the
/// console), then SIGTERMs rootrun and waits at most 120 s for it to end.
/// Returns its output, the console, and how long the boot and the stop took.
fn boot_then_sigterm(
    frame: &Frame,
    data: &Path,
    rootfs: &str,
    extra: &[&str],
    until: &str,
    failure: &str,
) -> (Output, String, Duration, Duration) {
    let booted = Instant::now();
    let mut args = vec!["--stop-timeout=90"];
    args.extend_from_slice(extra);
    args.extend_from_slice(&["--rootfs", rootfs]);
    let mut boot = frame.live(&mut in_debian13(data, &args), Stdio::piped());
    if !boot.wait_for(until, BOOT_LIMIT) {
        boot.signal(Signal::SIGKILL);
        let (_, seen) = boot.finish(BOOT_LIMIT);
        panic!("{failure}; console:\n{seen}");
    }
    let boot_time = booted.elapsed();
    let stopping = Instant::now();
    boot.signal(Signal::SIGTERM);
    let stopped = loop {
        match boot.exited() {
            true => break stopping.elapsed(),
            false if stopping.elapsed() > Duration::from_secs(120) => {
                boot.signal(Signal::SIGKILL);
                let (_, seen) = boot.finish(LIMIT);
                panic!("rootrun did not stop within 120 s of SIGTERM; console:\n{seen}");
            }
            false => std::thread::sleep(Duration::from_millis(10)),
        }
    };
    let (out, seen) = boot.finish(LIMIT);
    (out, seen, boot_time, stopped)
}

fn in_debian13(data: &Path, args: &[&str]) -> Command {
    let mut cmd = chrooted(data);
    cmd.arg(BIN_INSIDE).args(args);
    cmd
}

/// in-debian13.sh with its directories; the command comes next.
fn chrooted(data: &Path) -> Command {
    let bin = Path::new(env!("CARGO_BIN_EXE_rootrun"))
        .parent()
        .expect("rootrun's directory");
    chrooted_with(bin, data)
}

/// in-debian13.sh with `bin` (a directory holding a `rootrun`) at /mnt/bin.
fn chrooted_with(bin: &Path, data: &Path) -> Command {
    let mut cmd = Command::new(fixture("in-debian13.sh"));
    cmd.arg(debian13_tree()).arg(bin).arg(data);
    cmd
}

/// `path` under `data`, as seen inside the tree.
fn inside(data: &Path, path: &Path) -> String {
    let name = path
        .strip_prefix(data)
        .expect("a fixture in the data directory");
    format!("{DATA_INSIDE}/{}", name.display())
}

/// Every binfmt_misc entry with its state, to compare before and after.
fn binfmt_entries() -> BTreeMap<String, String> {
    fs::read_dir(BINFMT)
        .expect("binfmt_misc is mounted (tests/setup-host.sh)")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|name| name != "register" && name != "status")
        .map(|name| {
            let state = fs::read_to_string(Path::new(BINFMT).join(&name)).unwrap_or_default();
            (name, state)
        })
        .collect()
}

/// The tree's QEMU 10 registered as the newest aarch64 handler while this
/// lives. The entry goes on drop (so also when the test panics), before
/// the exclusive lock is released; a SIGKILLed test leaves it to
/// tests/setup-host.sh, which removes `rootrun-test-WORD-PID` entries of
/// processes that are gone (WORD: letters only, hence not "q10").
struct Qemu10 {
    name: String,
}

impl Qemu10 {
    /// Needs a frame that runs alone (`frame(.., true)`).
    fn register(frame: &Frame) -> Qemu10 {
        assert!(
            frame.is_exclusive(),
            "registering a handler needs an exclusive frame"
        );
        let tree = debian13_tree();
        let handler = Qemu10 {
            name: format!("rootrun-test-trixie-{}", std::process::id()),
        };
        // Debian 13's own pattern for aarch64 (qemu-user ships it; the
        // qemu-user-binfmt package only links it into /usr/lib/binfmt.d).
        let conf = fs::read_to_string(tree.join("usr/share/qemu/binfmt.d/qemu-aarch64.conf"))
            .expect("the tree has Debian 13's qemu-aarch64.conf");
        let fields: Vec<&str> = conf.trim().split(':').collect();
        assert_eq!(fields.len(), 8, "unexpected qemu-aarch64.conf: {conf}");
        let (magic, mask) = (fields[4], fields[5]);
        // Debian 13 registers flags OPF with a `-binfmt-P` symlink; QEMU
        // 6.1 and later also learn of P from the kernel (AT_FLAGS), so the
        // plain path works, and it tells this entry apart from Debian 12's
        // in a guest's /proc/PID/cmdline. No C: it would run set-id
        // programs with their credentials.
        let line = format!(
            ":{}:M::{magic}:{mask}:/usr/bin/qemu-aarch64:POF",
            handler.name
        );
        // From inside the chroot, so that rootrun's `qemu --version` probe
        // finds QEMU 10 at the registered path there.
        let out = chrooted(frame.scratch())
            .args([
                "/bin/sh",
                "-c",
                "printf '%s' \"$1\" > /proc/sys/fs/binfmt_misc/register",
            ])
            .args(["sh", &line])
            .output()
            .expect("run in-debian13.sh");
        assert!(
            out.status.success(),
            "registering {line} failed: {}",
            text(&out.stderr)
        );
        let state = fs::read_to_string(handler.entry()).expect("the new entry");
        assert!(
            state.starts_with("enabled\n")
                && state.contains("interpreter /usr/bin/qemu-aarch64\n")
                && state.contains("flags: POF\n"),
            "{state}"
        );
        handler
    }

    fn entry(&self) -> PathBuf {
        Path::new(BINFMT).join(&self.name)
    }
}

impl Drop for Qemu10 {
    fn drop(&mut self) {
        if self.entry().exists() {
            if let Err(e) = fs::write(self.entry(), "-1") {
                eprintln!("removing {}: {e}", self.entry().display());
            }
        }
    }
}

/// Runs `case` (with the tree's QEMU 10 registered when the frame is
/// exclusive), then checks binfmt_misc exactly as before (the case's own
/// entry gone) and, through the frame, that nothing of the case's own
/// (mounts, loop devices, containers) remains. Prints how long it took.
fn checked<T>(frame: Frame, what: &str, case: impl FnOnce(&Frame) -> T) -> T {
    let binfmt_before = binfmt_entries();
    let handler = frame.is_exclusive().then(|| Qemu10::register(&frame));
    let name = handler.as_ref().map(|h| h.name.clone());
    let started = Instant::now();
    let result = case(&frame);
    eprintln!(
        "host-matrix: {what}: {:.2} s",
        started.elapsed().as_secs_f64()
    );
    drop(handler);
    if let Some(name) = name {
        assert!(
            !Path::new(BINFMT).join(&name).exists(),
            "{name} is still registered"
        );
    }
    assert_eq!(
        binfmt_entries(),
        binfmt_before,
        "{what}: binfmt_misc changed"
    );
    frame.check();
    result
}

/// Runs rootrun in the tree with `args` (a command that prints `marker`
/// and then reads a line), calls `meanwhile` with rootrun's PID once
/// `marker` is out, then lets the command finish. Returns the exit output,
/// everything the command printed and what `meanwhile` returned.
fn paused<T>(
    frame: &Frame,
    args: &[&str],
    marker: &str,
    meanwhile: impl FnOnce(u32) -> T,
) -> (Output, String, T) {
    let mut run = frame.live(&mut in_debian13(frame.scratch(), args), Stdio::piped());
    run.expect(marker, LIMIT);
    let found = meanwhile(run.id());
    run.write_and_close_stdin(b"go\n");
    let (out, seen) = run.finish(LIMIT);
    (out, seen, found)
}

/// (device, inode) of a file.
fn file_id(path: &Path) -> (u64, u64) {
    let meta = fs::metadata(path).unwrap_or_else(|e| panic!("stat {}: {e}", path.display()));
    (meta.dev(), meta.ino())
}

/// (device, inode) of the files `pid` has mapped whose name contains `part`.
fn mapped(pid: u32, part: &str) -> Vec<(u64, u64)> {
    let maps = fs::read_to_string(format!("/proc/{pid}/maps")).unwrap_or_default();
    let mut found: Vec<(u64, u64)> = maps
        .lines()
        .filter(|line| line.contains(part))
        .filter_map(|line| {
            // address perms offset major:minor inode path
            let fields: Vec<&str> = line.split_whitespace().collect();
            let (major, minor) = fields.get(3)?.split_once(':')?;
            let dev = nix::sys::stat::makedev(
                u64::from_str_radix(major, 16).ok()?,
                u64::from_str_radix(minor, 16).ok()?,
            );
            Some((dev, fields.get(4)?.parse().ok()?))
        })
        .collect();
    found.dedup();
    found
}

/// The host processes whose command line contains `token`, with the
/// (device, inode) of their executable.
fn processes_with(token: &str) -> Vec<(u32, (u64, u64))> {
    fs::read_dir("/proc")
        .expect("read /proc")
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            fs::read(format!("/proc/{pid}/cmdline"))
                .is_ok_and(|cmdline| text(&cmdline).contains(token))
        })
        .filter_map(|pid| {
            let meta = fs::metadata(format!("/proc/{pid}/exe")).ok()?;
            Some((pid, (meta.dev(), meta.ino())))
        })
        .collect()
}

#[test]
fn debian13_native_command_passes_its_exit_status_through_with_liblxc_6() {
    let Some((frame, tree)) = frame("host matrix: native command", false) else {
        return;
    };
    let Some(image) = frame.busybox("amd64") else {
        return;
    };
    let marker = fs::read_to_string(tree.join(".rootrun-tree-complete")).expect("tree marker");
    assert!(marker.contains("liblxc1t64=1:6.0."), "{marker}");
    let liblxc = fs::canonicalize(tree.join("usr/lib/x86_64-linux-gnu/liblxc.so.1"))
        .expect("the tree's liblxc.so.1");
    checked(frame, "Debian 13: native command", |frame| {
        let image = inside(frame.scratch(), &image);
        // The command waits for a line on stdin, so that rootrun's mappings
        // can be read while liblxc is loaded.
        let (out, seen, loaded) = paused(
            frame,
            &[
                "-q",
                &image,
                "--",
                "/bin/sh",
                "-c",
                "uname -m; echo waiting; read line; exit 7",
            ],
            "waiting",
            |pid| mapped(pid, "liblxc.so"),
        );
        assert_eq!(out.status.code(), Some(7), "{seen}{}", text(&out.stderr));
        assert!(seen.lines().any(|l| l == "x86_64"), "{seen}");
        assert_eq!(
            loaded,
            [file_id(&liblxc)],
            "rootrun did not load the tree's liblxc 6.0 ({})",
            liblxc.display()
        );
    });
}

#[test]
fn debian13_arm64_command_runs_under_qemu_10() {
    let Some((frame, tree)) = frame("host matrix: arm64 command", true) else {
        return;
    };
    let Some(image) = frame.busybox("arm64") else {
        return;
    };
    let qemu = tree.join("usr/bin/qemu-aarch64");
    let version = Command::new(&qemu)
        .arg("--version")
        .output()
        .expect("run the tree's qemu-aarch64 --version");
    assert!(
        text(&version.stdout).contains("version 10."),
        "{}",
        text(&version.stdout)
    );
    checked(frame, "Debian 13: arm64 command", |frame| {
        let image = inside(frame.scratch(), &image);
        let plan = run_with_input(
            &mut in_debian13(frame.scratch(), &["--dry-run", &image, "--", "uname", "-m"]),
            b"",
            LIMIT,
        );
        assert!(
            text(&plan.stdout)
                .contains("# runs as aarch64 under /usr/bin/qemu-aarch64, preloaded (F flag)"),
            "{}{}",
            text(&plan.stdout),
            text(&plan.stderr)
        );
        // The guest names the interpreter that runs its shell (the first
        // word of its real command line, which QEMU does not emulate for
        // another process) and waits, so that the host can see which file
        // that interpreter is.
        let token = format!("hm-q10-{}", std::process::id());
        let script = format!(
            "uname -m; busybox tr '\\0' '\\n' < /proc/$$/cmdline | head -n 1; \
             echo {token}; read line; exit 3"
        );
        let (out, seen, emulated) = paused(
            frame,
            &["-q", &image, "--", "/bin/sh", "-c", &script],
            &format!("{token}\n"),
            |_| processes_with(&token),
        );
        assert_eq!(out.status.code(), Some(3), "{seen}{}", text(&out.stderr));
        let lines: Vec<&str> = seen.lines().collect();
        assert_eq!(
            lines.get(..2),
            Some(&["aarch64", "/usr/bin/qemu-aarch64"][..]),
            "not run by the test's handler: {seen}"
        );
        assert!(
            emulated.iter().any(|(_, exe)| *exe == file_id(&qemu)),
            "no process of the guest runs the tree's QEMU 10 ({}): {emulated:?}",
            qemu.display()
        );
    });
}

#[test]
fn debian13_arm64_busybox_boots_and_powers_off_under_qemu_10() {
    let Some((frame, _)) = frame("host matrix: arm64 boot", true) else {
        return;
    };
    let Some(image) = frame.busybox("arm64") else {
        return;
    };
    checked(frame, "Debian 13: arm64 boot", |frame| {
        let data = frame.scratch();
        let out = frame.run(
            &mut in_debian13(data, &[&inside(data, &image)]),
            b"uname -m; poweroff -f\n",
            LIMIT,
        );
        let stdout = text(&out.stdout);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
        assert!(stdout.contains("ROOTRUN-BOOT-OK"), "{stdout}");
        assert!(stdout.lines().any(|l| l == "aarch64"), "{stdout}");
        assert!(
            stderr.contains("aarch64 under /usr/bin/qemu-aarch64, preloaded (F flag)"),
            "the banner names another handler: {stderr}"
        );
    });
}

#[test]
fn debian13_emulated_systemd_powers_off_on_sigterm_within_2_s_under_qemu_10() {
    let Some((frame, _)) = frame("host matrix: systemd", true) else {
        return;
    };
    let Some(rootfs) = frame.systemd_rootfs("arm64") else {
        return;
    };
    checked(frame, "Debian 13: systemd under QEMU 10", |frame| {
        // The cached root's directory is the data bound into the tree.
        let data = rootfs.parent().expect("the cache directory");
        let rootfs = inside(data, &rootfs);
        // rootrun asked QEMU 10 how it maps real-time signals: systemd's
        // poweroff signal SIGRTMIN+4 is sent 4 higher.
        let plan = run_with_input(
            &mut in_debian13(data, &["--dry-run", "--rootfs", &rootfs]),
            b"",
            LIMIT,
        );
        assert!(
            text(&plan.stdout).contains("# boot /sbin/init; halt with SIGRTMIN+8"),
            "{}{}",
            text(&plan.stdout),
            text(&plan.stderr)
        );
        // A stop timeout long enough that a wrong halt signal shows up as a
        // missing poweroff, not as a kill that happens to end the run.
        let (out, seen, boot_time, stopped) = boot_then_sigterm(
            frame,
            data,
            &rootfs,
            &[],
            "Reached target multi-user.target",
            "systemd did not reach multi-user.target under QEMU 10",
        );
        eprintln!(
            "host-matrix: systemd under QEMU 10 reached multi-user.target in {:.1} s, \
             stopped {:.2} s after SIGTERM",
            boot_time.as_secs_f64(),
            stopped.as_secs_f64()
        );
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(143), "{stderr}");
        assert!(
            stderr.contains("aarch64 under /usr/bin/qemu-aarch64, preloaded (F flag)"),
            "the banner names another handler: {stderr}"
        );
        assert!(
            seen.contains("Reached target poweroff.target"),
            "systemd did not power off: {seen}"
        );
        for wrong in ["rescue.target", "emergency.target"] {
            assert!(
                !seen.contains(wrong),
                "the halt signal isolated {wrong}: {seen}"
            );
        }
        assert!(
            stopped < STOP_LIMIT,
            "systemd took {stopped:?} to power off after SIGTERM (limit {STOP_LIMIT:?})"
        );
    });
}

/// liblxc's headers of Debian 12 (5.0) and Debian 13 (6.0), unpacked from
/// their lxc-dev packages (tests/fixtures/lxc-headers.sh), cached by the
/// script's content.
fn lxc_headers() -> PathBuf {
    let script = fixture("lxc-headers.sh");
    let base = cache_dir().unwrap_or_else(|e| panic!("{e}"));
    let out = base.join(format!("lxc-headers-{}", &sha256(&script)[..16]));
    let made = Command::new(&script)
        .arg(&out)
        .arg(debian13_tree())
        .output()
        .expect("run tests/fixtures/lxc-headers.sh");
    assert!(
        made.status.success(),
        "unpacking liblxc's headers failed: {}",
        text(&made.stderr)
    );
    out
}

/// `cargo ARGS` on this crate with the bindings generated from `headers`,
/// in a target directory of its own (kept in the fixture cache: its
/// dependencies build once).
fn cargo_with_headers(headers: &Path, args: &[&str]) -> Output {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let target = cache_dir()
        .unwrap_or_else(|e| panic!("{e}"))
        .join("bindings-target");
    let out = Command::new(cargo)
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("ROOTRUN_LXC_HEADERS", headers)
        .env("CARGO_TARGET_DIR", &target)
        .env_remove("ROOTRUN_VENDORED_BINDINGS")
        .output()
        .expect("run cargo");
    let stderr = text(&out.stderr);
    assert!(
        out.status.success(),
        "cargo {args:?} with the headers in {} failed: {}{stderr}",
        headers.display(),
        text(&out.stdout)
    );
    // bindgen ran on those headers: no fallback to vendor/.
    assert!(
        !stderr.contains("using vendored liblxc bindings"),
        "the build fell back to the vendored bindings (libclang missing?): {stderr}"
    );
    out
}

#[test]
fn liblxc_5_and_6_headers_build_a_rootrun_that_passes_its_tests_and_runs_where_it_should() {
    let Some((frame, _)) = frame("host matrix: bindings from 5.0 and 6.0 headers", false) else {
        return;
    };
    let Some(image) = frame.busybox("amd64") else {
        return;
    };
    let headers = lxc_headers();
    for (version, want) in [("debian12", "5.0."), ("debian13", "6.0.")] {
        let include = headers.join(version).join("usr/include");
        let out = cargo_with_headers(&include, &["test", "--lib"]);
        let stdout = text(&out.stdout);
        assert!(
            stdout.contains("test result: ok."),
            "{version}: unit tests did not run: {stdout}"
        );
        let version_h = fs::read_to_string(include.join("lxc/version.h")).unwrap_or_default();
        assert!(
            version_h.contains(&format!("#define LXC_VERSION \"{want}")),
            "{version_h}"
        );
    }
    // A rootrun whose bindings come from liblxc 6.0's headers runs with the
    // Debian 13 tree's liblxc 6.0, and refuses this host's 5.0.2, which its
    // `struct lxc_container` would outgrow.
    let include = headers.join("debian13/usr/include");
    cargo_with_headers(&include, &["build", "--bin", "rootrun"]);
    let bin = cache_dir()
        .unwrap_or_else(|e| panic!("{e}"))
        .join("bindings-target/debug");
    checked(
        frame,
        "Debian 13: rootrun built on liblxc 6.0 headers",
        |frame| {
            let data = frame.scratch();
            let mut cmd = chrooted_with(&bin, data);
            cmd.arg(BIN_INSIDE).args([
                "-q",
                &inside(data, &image),
                "--",
                "/bin/sh",
                "-c",
                "exit 7",
            ]);
            let out = frame.run(&mut cmd, b"", LIMIT);
            assert_eq!(out.status.code(), Some(7), "{}", text(&out.stderr));
            let out = frame.run(
                Command::new(bin.join("rootrun"))
                    .arg(&image)
                    .args(["--", "true"]),
                b"",
                LIMIT,
            );
            let stderr = text(&out.stderr);
            assert_eq!(out.status.code(), Some(125), "{stderr}");
            assert!(
                stderr.contains("liblxc 5.0.2 is older than 6.0."),
                "{stderr}"
            );
        },
    );
}

/// Issue 9: a Debian 13 arm64 root (systemd 257) under QEMU 10. Every unit
/// with credentials failed "at step CREDENTIALS" (qemu-user rejects the
/// CLONE_NEWNS fork systemd sets them up in); rootrun's drop-ins in the
/// writable layer turn them off, so journald and the console getty start
/// and the login prompt comes. The stop goes through systemd's own
/// shutdown, well inside the stop timeout (no SIGKILL), and the root is
/// unchanged (the frame checks its fingerprint).
#[test]
fn debian13_systemd_257_reaches_login_under_qemu_10_and_powers_off() {
    let Some((frame, _)) = frame("host matrix: systemd 257", true) else {
        return;
    };
    let Some(rootfs) = frame.debian13_systemd_rootfs("arm64") else {
        return;
    };
    checked(frame, "Debian 13: systemd 257 under QEMU 10", |frame| {
        let data = rootfs.parent().expect("the cache directory");
        let rootfs = inside(data, &rootfs);
        let plan = run_with_input(
            &mut in_debian13(data, &["--dry-run", "--rootfs", &rootfs]),
            b"",
            LIMIT,
        );
        let plan_text = text(&plan.stdout);
        for line in [
            "# boot /sbin/init; halt with SIGRTMIN+8",
            "# systemd 257 under emulation: credentials of 18 units turned off",
            "write drop-ins turning off the credentials of 18 systemd units",
        ] {
            assert!(
                plan_text.contains(line),
                "{line:?} missing: {plan_text}{}",
                text(&plan.stderr)
            );
        }
        assert!(!plan_text.contains("# warning:"), "{plan_text}");
        let (out, seen, boot_time, stopped) = boot_then_sigterm(
            frame,
            data,
            &rootfs,
            &[],
            "login:",
            "systemd 257 did not reach login: under QEMU 10",
        );
        eprintln!(
            "host-matrix: systemd 257 under QEMU 10 reached login: in {:.1} s, \
             stopped {:.2} s after SIGTERM",
            boot_time.as_secs_f64(),
            stopped.as_secs_f64()
        );
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(143), "{stderr}");
        assert!(
            stderr.contains("systemd 257 under emulation: credentials of 18 units turned off"),
            "the banner does not say what rootrun did: {stderr}"
        );
        assert!(!stderr.contains("cannot start any unit"), "{stderr}");
        for failure in ["at step CREDENTIALS", "Failed to spawn executor"] {
            assert!(!seen.contains(failure), "{failure}: {seen}");
        }
        for started in [
            "Started systemd-journald.service - Journal Service",
            "Started console-getty.service - Console Getty",
        ] {
            assert!(seen.contains(started), "no {started:?}: {seen}");
        }
        // systemd's own shutdown: its stop jobs, poweroff.target, then
        // systemd-shutdown's last words.
        for step in [
            "Stopped target sysinit.target",
            "Reached target poweroff.target",
            "Powering off.",
        ] {
            assert!(seen.contains(step), "no {step:?}: {seen}");
        }
        for wrong in ["rescue.target", "emergency.target", "Emergency Mode"] {
            assert!(!seen.contains(wrong), "{wrong}: {seen}");
        }
        // Killed after --stop-timeout it would have taken 90 s.
        assert!(
            stopped < Duration::from_secs(30),
            "systemd took {stopped:?} to power off after SIGTERM"
        );
    });
}

/// `--unprivileged` on Debian 13's liblxc 6 and QEMU 10: the tree's
/// emulator registered in the container's own binfmt_misc (the host's
/// table untouched, nothing registered for the case), a command and
/// systemd 257 to login: and poweroff (systemd 257 spawns with CLONE_PIDFD,
/// which only QEMU 10 of the two emulators here takes: reaching login:
/// proves the tree's QEMU ran it).
#[test]
fn debian13_unprivileged_runs_arm64_under_qemu_10_in_the_containers_own_binfmt_misc() {
    let Some((frame, _)) = frame("host matrix: --unprivileged", false) else {
        return;
    };
    let (Some(image), Some(rootfs)) = (
        frame.busybox("arm64"),
        frame.debian13_systemd_rootfs("arm64"),
    ) else {
        return;
    };
    checked(frame, "Debian 13: --unprivileged", |frame| {
        let inside_image = inside(frame.scratch(), &image);
        let out = run_with_input(
            &mut in_debian13(
                frame.scratch(),
                &[
                    "-q",
                    "--unprivileged",
                    &inside_image,
                    "--",
                    "/bin/sh",
                    "-c",
                    "uname -m; cat /proc/self/uid_map; ls /proc/sys/fs/binfmt_misc | tr '\\n' ' '",
                ],
            ),
            b"",
            LIMIT,
        );
        let stdout = text(&out.stdout);
        assert_eq!(out.status.code(), Some(0), "{stdout}{}", text(&out.stderr));
        let lines: Vec<Vec<&str>> = stdout
            .lines()
            .map(|l| l.split_whitespace().collect())
            .collect();
        assert_eq!(lines[0], ["aarch64"], "{stdout}");
        assert_eq!(lines[1].first(), Some(&"0"), "{stdout}");
        assert_ne!(
            lines[1].get(1),
            Some(&"0"),
            "guest root is host root: {stdout}"
        );
        assert_eq!(lines[2], ["qemu-aarch64", "register", "status"], "{stdout}");

        let data = rootfs.parent().expect("the cache directory");
        let rootfs = inside(data, &rootfs);
        let (out, seen, boot_time, stopped) = boot_then_sigterm(
            frame,
            data,
            &rootfs,
            &["--unprivileged"],
            "login:",
            "systemd 257 did not reach login: unprivileged under QEMU 10",
        );
        eprintln!(
            "host-matrix: systemd 257 unprivileged under QEMU 10 reached login: in {:.1} s, \
             stopped {:.2} s after SIGTERM",
            boot_time.as_secs_f64(),
            stopped.as_secs_f64()
        );
        assert_eq!(out.status.code(), Some(143), "{}", text(&out.stderr));
        assert!(seen.contains("Reached target poweroff.target"), "{seen}");
        assert!(!seen.contains("Failed to spawn executor"), "{seen}");
    });
}
