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

mod common;

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use nix::fcntl::{Flock, FlockArg};
use nix::sys::signal::Signal;

use common::*;

const LIMIT: Duration = Duration::from_secs(90);
const BOOT_LIMIT: Duration = Duration::from_secs(240);
/// What the issue asks of an emulated systemd's stop.
const STOP_LIMIT: Duration = Duration::from_secs(2);

const BINFMT: &str = "/proc/sys/fs/binfmt_misc";
/// Shared by the suites on this machine: shared for tests that rely on the
/// host's binfmt_misc handlers, exclusive for tests that change them.
const LOCK_FILE: &str = "/run/lock/rootrun-tests.lock";
/// Where in-debian13.sh binds rootrun's directory and `work_dir()` inside
/// the tree.
const BIN_INSIDE: &str = "/mnt/bin/rootrun";
const DATA_INSIDE: &str = "/mnt/data";

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// True when `test` may go on: as root with the tools it needs. A missing
/// tool fails the test under CI=true and is reported otherwise.
fn ready(test: &str) -> bool {
    if !require_root(test) {
        return false;
    }
    let missing: Vec<&str> = ["debootstrap", "unshare", "chroot", "flock", "realpath"]
        .into_iter()
        .filter(|tool| !on_path(tool))
        .collect();
    if missing.is_empty() {
        return true;
    }
    let reason = format!(
        "{test} needs {} (apt-get install debootstrap util-linux coreutils; \
         tests/setup-host.sh installs them)",
        missing.join(", ")
    );
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{reason}");
    }
    eprintln!("NOTE: {reason}; not run");
    false
}

fn on_path(tool: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join(tool).is_file()))
}

/// The cached Debian 13 tree: `$ROOTRUN_TEST_CACHE` (default
/// /var/cache/rootrun-tests) `/debian13-<first 16 hex digits of the SHA-256
/// of build-debian13-tree.sh>`, so a changed script builds a new tree. The
/// script runs on every call (it returns at once when the tree is
/// complete), so a cache emptied while the suite runs is filled again.
fn debian13_tree() -> PathBuf {
    let script = fixture("build-debian13-tree.sh");
    let base = std::env::var_os("ROOTRUN_TEST_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/cache/rootrun-tests"));
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

/// rootrun with `args`, chrooted into the Debian 13 tree; paths in `args`
/// are the ones inside (`DATA_INSIDE` is `work_dir()`). Not started yet;
/// its PID will be rootrun's (the wrapper execs all the way).
fn in_debian13(args: &[&str]) -> Command {
    let mut cmd = chrooted();
    cmd.arg(BIN_INSIDE).args(args);
    cmd
}

/// in-debian13.sh with its directories; the command comes next.
fn chrooted() -> Command {
    let bin = Path::new(env!("CARGO_BIN_EXE_rootrun"))
        .parent()
        .expect("rootrun's directory");
    let mut cmd = Command::new(fixture("in-debian13.sh"));
    cmd.arg(debian13_tree()).arg(bin).arg(work_dir());
    cmd
}

/// A fixture in `work_dir()`, as seen inside the tree.
fn inside(path: &Path) -> String {
    let name = path
        .strip_prefix(work_dir())
        .expect("fixture in the test work directory");
    format!("{DATA_INSIDE}/{}", name.display())
}

/// An flock on the suite's lock file, held until dropped.
fn suite_lock(arg: FlockArg) -> Flock<File> {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o666)
        .open(LOCK_FILE)
        .unwrap_or_else(|e| panic!("open {LOCK_FILE}: {e}"));
    Flock::lock(file, arg).unwrap_or_else(|(_, e)| panic!("flock {LOCK_FILE}: {e}"))
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
    _lock: Flock<File>,
}

impl Qemu10 {
    fn register() -> Qemu10 {
        let tree = debian13_tree();
        let lock = suite_lock(FlockArg::LockExclusive);
        let handler = Qemu10 {
            name: format!("rootrun-test-trixie-{}", std::process::id()),
            _lock: lock,
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
        let out = chrooted()
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

/// Runs `case` with the host's state snapshotted before and checked after:
/// binfmt_misc exactly as before (the case's own entry gone), and what
/// `HostState` checks, narrowed to what the case can have made (other
/// suites on this machine boot containers at the same time, and their loop
/// devices and cgroups come and go): this namespace's mounts and rootrun's
/// directories as before, no loop device on a file under the tree or the
/// test work directory, no new rootrun cgroup of a process that is gone.
/// Prints how long the case took.
fn checked<T>(what: &str, register: bool, case: impl FnOnce() -> T) -> T {
    let tree = debian13_tree();
    let _host = host_lock();
    let shared = (!register).then(|| suite_lock(FlockArg::LockShared));
    let before = Snapshot::capture();
    let binfmt_before = binfmt_entries();
    let handler = register.then(Qemu10::register);
    let name = handler.as_ref().map(|h| h.name.clone());
    let started = Instant::now();
    let result = case();
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
    before.assert_restored(what, &[tree, work_dir()]);
    drop(shared);
    result
}

#[derive(Debug, PartialEq, Eq)]
struct Snapshot {
    mounts: Vec<String>,
    run_dirs: Vec<Vec<String>>,
    cgroups: Vec<String>,
}

impl Snapshot {
    fn capture() -> Snapshot {
        let mut mounts: Vec<String> = fs::read_to_string("/proc/self/mountinfo")
            .unwrap_or_default()
            .lines()
            // Without the IDs, which change on a remount.
            .map(|line| line.split(' ').skip(4).collect::<Vec<_>>().join(" "))
            .collect();
        mounts.sort();
        let run_dirs = ["/run/rootrun", "/run/lxc"]
            .iter()
            .map(|dir| {
                let mut names: Vec<String> = fs::read_dir(dir)
                    .into_iter()
                    .flatten()
                    .flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect();
                names.sort();
                names
            })
            .collect();
        Snapshot {
            mounts,
            run_dirs,
            cgroups: rootrun_cgroups(),
        }
    }

    /// Waits (teardown is asynchronous) up to 10 s for the state to be
    /// restored, then asserts it.
    fn assert_restored(&self, what: &str, sources: &[PathBuf]) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let mut now = Snapshot::capture();
            now.cgroups
                .retain(|cgroup| !self.cgroups.contains(cgroup) && !cgroup_owner_alive(cgroup));
            let loops = loop_devices_on(sources);
            let before = Snapshot {
                cgroups: Vec::new(),
                mounts: self.mounts.clone(),
                run_dirs: self.run_dirs.clone(),
            };
            if now == before && loops.is_empty() {
                return;
            }
            if Instant::now() > deadline {
                assert!(loops.is_empty(), "{what}: loop devices left: {loops:?}");
                assert_eq!(now, before, "{what}: host state not restored");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// Whether the process in a cgroup name `...rootrun-PID` still runs.
fn cgroup_owner_alive(cgroup: &str) -> bool {
    cgroup
        .rsplit_once("rootrun-")
        .and_then(|(_, pid)| pid.parse::<u32>().ok())
        .is_some_and(|pid| Path::new(&format!("/proc/{pid}")).exists())
}

/// Loop devices whose backing file is under one of `dirs` (as the host
/// names it: a file bound into the tree shows under the tree).
fn loop_devices_on(dirs: &[PathBuf]) -> Vec<String> {
    fs::read_dir("/sys/block")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let file = fs::read_to_string(e.path().join("loop/backing_file")).ok()?;
            let file = file.trim();
            dirs.iter()
                .any(|dir| Path::new(file).starts_with(dir))
                .then(|| format!("{}: {file}", e.file_name().to_string_lossy()))
        })
        .collect()
}

/// Runs rootrun in the tree with `args` (a command that prints `marker`
/// and then reads a line), calls `meanwhile` with rootrun's PID once
/// `marker` is out, then lets the command finish. Returns the exit output,
/// everything the command printed and what `meanwhile` returned.
fn paused<T>(args: &[&str], marker: &str, meanwhile: impl FnOnce(u32) -> T) -> (Output, String, T) {
    let mut run = Live::spawn(&mut in_debian13(args), Stdio::piped());
    run.expect(marker, LIMIT);
    let found = meanwhile(run.child.id());
    let mut stdin = run.child.stdin.take().expect("stdin");
    stdin.write_all(b"go\n").expect("write to the command");
    drop(stdin);
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
    if !ready("host matrix: native command") {
        return;
    }
    let image = busybox_image("amd64");
    let tree = debian13_tree();
    let marker = fs::read_to_string(tree.join(".rootrun-tree-complete")).expect("tree marker");
    assert!(marker.contains("liblxc1t64=1:6.0."), "{marker}");
    let liblxc = fs::canonicalize(tree.join("usr/lib/x86_64-linux-gnu/liblxc.so.1"))
        .expect("the tree's liblxc.so.1");
    checked("Debian 13: native command", false, || {
        let image = inside(&image);
        // The command waits for a line on stdin, so that rootrun's mappings
        // can be read while liblxc is loaded.
        let (out, seen, loaded) = paused(
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
    if !ready("host matrix: arm64 command") {
        return;
    }
    let image = busybox_image("arm64");
    let tree = debian13_tree();
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
    checked("Debian 13: arm64 command", true, || {
        let image = inside(&image);
        let plan = run_with_input(
            &mut in_debian13(&["--dry-run", &image, "--", "uname", "-m"]),
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
    if !ready("host matrix: arm64 boot") {
        return;
    }
    let image = busybox_image("arm64");
    checked("Debian 13: arm64 boot", true, || {
        let out = run_with_input(
            &mut in_debian13(&[&inside(&image)]),
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

/// The Debian 12 arm64 systemd root of tests/systemd.rs, at the same path
/// (built once for both). Built in a private mount namespace: debootstrap's
/// second stage mounts /proc and /sys in the tree and leaves them there
/// when it fails, where the script's next `rm -rf` would walk into them;
/// and under a shared hold of the suite's lock, since the second stage runs
/// under the host's aarch64 handler, which exclusive holders change.
fn systemd_rootfs() -> PathBuf {
    let tree = work_dir().join("systemd-arm64");
    let started = Instant::now();
    let lock = suite_lock(FlockArg::LockShared);
    let built = Command::new("unshare")
        .args(["--mount", "--propagation", "private"])
        .arg(fixture("build-systemd-rootfs.sh"))
        .arg(&tree)
        .arg("arm64")
        .output()
        .expect("run build-systemd-rootfs.sh");
    drop(lock);
    assert!(
        built.status.success(),
        "building the systemd arm64 rootfs failed (debootstrap from deb.debian.org; see tests/setup-host.sh): {}",
        text(&built.stderr)
    );
    eprintln!(
        "host-matrix: systemd arm64 rootfs ready in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    tree
}

#[test]
fn debian13_emulated_systemd_powers_off_on_sigterm_within_2_s_under_qemu_10() {
    if !ready("host matrix: systemd") {
        return;
    }
    let rootfs = systemd_rootfs();
    checked("Debian 13: systemd under QEMU 10", true, || {
        let rootfs = inside(&rootfs);
        // rootrun asked QEMU 10 how it maps real-time signals: systemd's
        // poweroff signal SIGRTMIN+4 is sent 4 higher.
        let plan = run_with_input(
            &mut in_debian13(&["--dry-run", "--rootfs", &rootfs]),
            b"",
            LIMIT,
        );
        assert!(
            text(&plan.stdout).contains("# boot /sbin/init; halt with SIGRTMIN+8"),
            "{}{}",
            text(&plan.stdout),
            text(&plan.stderr)
        );
        let booted = Instant::now();
        // A stop timeout long enough that a wrong halt signal shows up as a
        // missing poweroff, not as a kill that happens to end the run.
        let mut boot = Live::spawn(
            &mut in_debian13(&["--stop-timeout=90", "--rootfs", &rootfs]),
            Stdio::piped(),
        );
        if !boot.wait_for("Reached target multi-user.target", BOOT_LIMIT) {
            boot.signal(Signal::SIGKILL);
            let (_, seen) = boot.finish(BOOT_LIMIT);
            panic!("systemd did not reach multi-user.target under QEMU 10; console:\n{seen}");
        }
        let boot_time = booted.elapsed();
        let stopping = Instant::now();
        boot.signal(Signal::SIGTERM);
        let stopped = loop {
            match boot.child.try_wait().expect("wait for rootrun") {
                Some(_) => break stopping.elapsed(),
                None if stopping.elapsed() > Duration::from_secs(120) => {
                    boot.signal(Signal::SIGKILL);
                    let (_, seen) = boot.finish(LIMIT);
                    panic!("rootrun did not stop within 120 s of SIGTERM; console:\n{seen}");
                }
                None => std::thread::sleep(Duration::from_millis(10)),
            }
        };
        let (out, seen) = boot.finish(LIMIT);
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
