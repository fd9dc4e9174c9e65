//! A test's frame: the skip policy applied, the host lock held, a work
//! directory of its own, the fixtures it uses, the rootrun processes it
//! spawned; and at the end the check that it left nothing of its own behind
//! (host_state.rs) and that its images are unchanged.

use std::fs;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard, Once};
use std::time::{Duration, Instant};

use super::fixtures::{self, fingerprint, lock_ignoring_poison, ImageSpec};
use super::host_state::{self, mounts_below, Owner};
use super::lock::{self, Access, Held};
use super::process::{feed, piped, sh_command, Live, Piped};
use super::skip::{emulation, need, root, tool};

/// rootrun names its container `rootrun-<its PID>` (README, "Nothing is
/// left behind"; plan.rs). Spelled out: the harness checks rootrun's
/// behaviour, it does not take it from rootrun's code.
const CONTAINER_PREFIX: &str = "rootrun-";

/// Frames of one process run one at a time, as the separate binaries ran:
/// the timing-sensitive tests (a 3 s window for a flooding guest, a boot
/// within 60 s) miss their windows on a 2-CPU machine when two boots and a
/// debootstrap share it. The harness's unit tests without a frame still run
/// in parallel; across processes the host lock decides.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// How long teardown may take after rootrun exits (it is asynchronous after
/// a SIGKILL: the kernel reaps the container's namespaces).
const TEARDOWN: Duration = Duration::from_secs(10);

/// What a test needs before it starts; `start` applies the skip policy.
pub struct Setup {
    test: String,
    root: bool,
    tools: Vec<&'static str>,
    emulation: bool,
    access: Access,
    network: bool,
}

impl Setup {
    /// The test uses `--net` with host-global state (the NAT bridge, a
    /// bridge or interface of its own): it runs alone among such tests,
    /// across processes, and needs `ip`, `nft` and `dnsmasq`.
    pub fn network(mut self) -> Self {
        self.network = true;
        self.tools.extend_from_slice(&["ip", "nft", "dnsmasq"]);
        self
    }

    /// Programs beyond coreutils that the test runs.
    pub fn tools(mut self, tools: &[&'static str]) -> Self {
        self.tools.extend_from_slice(tools);
        self
    }

    /// Debian's QEMU handlers in the host's binfmt_misc (foreign images).
    pub fn emulation(mut self) -> Self {
        self.emulation = true;
        self
    }

    /// The test changes binfmt_misc: it runs alone (across processes).
    pub fn exclusive(mut self) -> Self {
        self.access = Access::Exclusive;
        self
    }

    /// The test needs no root (inspect).
    pub fn any_user(mut self) -> Self {
        self.root = false;
        self
    }

    /// `start` with the BusyBox image for `arch`, the usual beginning.
    pub fn busybox(self, arch: &str) -> Option<(Frame, PathBuf)> {
        let frame = self.start()?;
        let image = frame.busybox(arch)?;
        Some((frame, image))
    }

    /// The frame, or `None` when the test cannot run outside CI (a NOTE
    /// says why; under `CI=true` it fails instead).
    pub fn start(self) -> Option<Frame> {
        let test = &self.test;
        if self.root {
            need(test, root())?;
        }
        for program in &self.tools {
            need(test, tool(program))?;
        }
        if self.emulation {
            need(test, emulation())?;
        }
        let serial = lock_ignoring_poison(&ONE_AT_A_TIME);
        let lock = lock::host(self.access).unwrap_or_else(|e| panic!("{test}: {e}"));
        let net_lock = self
            .network
            .then(|| lock::network().unwrap_or_else(|e| panic!("{test}: {e}")));
        let scratch = work_dir(test);
        Some(Frame {
            own_paths: Mutex::new(vec![scratch.clone()]),
            scratch,
            watched: Mutex::default(),
            containers: Mutex::default(),
            access: self.access,
            test: self.test,
            _net_lock: net_lock,
            _lock: lock,
            _serial: serial,
        })
    }
}

pub struct Frame {
    test: String,
    access: Access,
    scratch: PathBuf,
    /// Paths whose loop devices and mounts are the test's.
    own_paths: Mutex<Vec<PathBuf>>,
    /// Images and trees that must not change, with their fingerprints.
    watched: Mutex<Vec<(PathBuf, String)>>,
    /// `rootrun-<PID>` of every process spawned through the frame.
    containers: Mutex<Vec<String>>,
    /// Declared last: released after everything above, even on panic.
    _net_lock: Option<Held>,
    _lock: Held,
    _serial: MutexGuard<'static, ()>,
}

impl Frame {
    /// A test that runs as root and holds the host lock shared.
    pub fn new(test: &str) -> Option<Frame> {
        Frame::setup(test).start()
    }

    pub fn setup(test: &str) -> Setup {
        Setup {
            test: test.to_owned(),
            root: true,
            tools: Vec::new(),
            emulation: false,
            access: Access::Shared,
            network: false,
        }
    }

    /// `Frame::new` with the BusyBox image for `arch`, the usual start.
    pub fn with_busybox(test: &str, arch: &str) -> Option<(Frame, PathBuf)> {
        Frame::setup(test).busybox(arch)
    }

    pub fn test(&self) -> &str {
        &self.test
    }

    pub fn is_exclusive(&self) -> bool {
        self.access == Access::Exclusive
    }

    /// The test's work directory (fresh, removed after a clean run).
    pub fn scratch(&self) -> &Path {
        &self.scratch
    }

    /// `name` in the work directory.
    pub fn path(&self, name: &str) -> PathBuf {
        self.scratch.join(name)
    }

    /// An empty directory `name` in the work directory.
    pub fn dir(&self, name: &str) -> PathBuf {
        let dir = self.path(name);
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).expect("create a directory in the work directory");
        dir
    }

    /// The BusyBox image for `arch`, linked into the work directory.
    pub fn busybox(&self, arch: &str) -> Option<PathBuf> {
        self.image(&ImageSpec::busybox(arch))
    }

    /// A BusyBox image with `extra`'s files copied over the tree.
    pub fn busybox_with(&self, arch: &str, extra: &Path) -> Option<PathBuf> {
        self.image(&ImageSpec {
            extra: Some(extra),
            ..ImageSpec::busybox(arch)
        })
    }

    /// The BusyBox image for `arch` repacked as `format` (ext4, erofs, tar,
    /// tar.gz, ..., cpio.gz), linked into the work directory.
    pub fn busybox_in_format(&self, arch: &str, format: &str) -> Option<PathBuf> {
        let spec = ImageSpec::busybox(arch);
        let cached = need(&self.test, fixtures::busybox_in_format(&spec, format))?;
        Some(self.link(&cached))
    }

    fn image(&self, spec: &ImageSpec) -> Option<PathBuf> {
        let cached = need(&self.test, fixtures::busybox_image(spec))?;
        Some(self.link(&cached))
    }

    /// A cached image as a hard link (a copy across file systems) in the
    /// work directory: the loop device rootrun sets up on it names the
    /// test's own path, not the cache entry that other runs share.
    fn link(&self, cached: &Path) -> PathBuf {
        let link = self.path(&cached.file_name().expect("entry name").to_string_lossy());
        if !link.exists() && fs::hard_link(cached, &link).is_err() {
            fs::copy(cached, &link).expect("copy a cached image into the work directory");
        }
        self.watch(&link);
        link
    }

    /// The Debian root with systemd for `arch` (cached: a directory is not
    /// linked; the test must only boot it with --rootfs, never write to it).
    pub fn systemd_rootfs(&self, arch: &str) -> Option<PathBuf> {
        let tree = need(&self.test, fixtures::systemd_rootfs(arch))?;
        self.own(&tree);
        self.watch(&tree);
        Some(tree)
    }

    /// The Debian 13 root with systemd 257 for `arch` (cached like
    /// `systemd_rootfs`, and as read-only to the test).
    pub fn debian13_systemd_rootfs(&self, arch: &str) -> Option<PathBuf> {
        let tree = need(&self.test, fixtures::debian13_systemd_rootfs(arch))?;
        self.own(&tree);
        self.watch(&tree);
        Some(tree)
    }

    /// A native Debian 12 root with `packages` (cached like
    /// `systemd_rootfs`, and as read-only to the test).
    pub fn debian_rootfs(&self, packages: &str) -> Option<PathBuf> {
        let tree = need(&self.test, fixtures::debian_rootfs(packages))?;
        self.own(&tree);
        self.watch(&tree);
        Some(tree)
    }

    /// A Debian 12 root of a foreign `arch` with `packages`, built under
    /// emulation from a shared base (cached and read-only to the test, like
    /// `debian_rootfs`).
    pub fn foreign_debian_rootfs(&self, arch: &str, packages: &str) -> Option<PathBuf> {
        let tree = need(&self.test, fixtures::foreign_debian_rootfs(arch, packages))?;
        self.own(&tree);
        self.watch(&tree);
        Some(tree)
    }

    /// `path` (an image or a tree) must be unchanged at `check`.
    pub fn watch(&self, path: &Path) {
        let print = fingerprint(path);
        lock_ignoring_poison(&self.watched).push((path.to_path_buf(), print));
    }

    /// Loop devices and mounts of `path` are the test's.
    pub fn own(&self, path: &Path) {
        lock_ignoring_poison(&self.own_paths).push(path.to_path_buf());
    }

    /// Spawns `cmd` (a rootrun, or a program that execs it) and records its
    /// container name.
    pub fn spawn(&self, cmd: &mut Command) -> Child {
        let child = cmd.spawn().expect("spawn rootrun");
        self.adopt(child.id());
        child
    }

    /// Records a rootrun that a spawned program started (e.g. a shell's
    /// `$!`), by its PID.
    pub fn adopt(&self, pid: u32) {
        lock_ignoring_poison(&self.containers).push(format!("{CONTAINER_PREFIX}{pid}"));
    }

    /// Runs `cmd` with `input` on stdin and a time limit.
    pub fn run(&self, cmd: &mut Command, input: &[u8], limit: Duration) -> Output {
        feed(self.spawn(piped(cmd)), input, limit)
    }

    /// `rootrun -q IMAGE -- /bin/sh -c SCRIPT` with empty stdin.
    pub fn sh(&self, image: &Path, script: &str, limit: Duration) -> Output {
        self.run(&mut sh_command(image, &[], script), b"", limit)
    }

    /// Spawns `cmd` with its pipes for the test to use.
    pub fn spawn_piped(&self, cmd: &mut Command) -> Piped {
        Piped::new(self.spawn(piped(cmd)))
    }

    /// Spawns `cmd` with `stdin`, stdout streamed, stderr piped.
    pub fn live(&self, cmd: &mut Command, stdin: Stdio) -> Live {
        let child = self.spawn(
            cmd.stdin(stdin)
                .stdout(Stdio::piped())
                .stderr(Stdio::piped()),
        );
        Live::new(child)
    }

    /// The test's own resources that exist now (see host_state.rs).
    pub fn leftovers(&self) -> Vec<String> {
        let paths = lock_ignoring_poison(&self.own_paths).clone();
        let containers = lock_ignoring_poison(&self.containers).clone();
        host_state::leftovers(&Owner {
            paths: &paths,
            containers: &containers,
        })
    }

    /// Asserts that nothing of the test's own remains (waiting for
    /// asynchronous teardown).
    pub fn assert_restored(&self) {
        self.assert_restored_within(TEARDOWN);
    }

    pub fn assert_restored_within(&self, limit: Duration) {
        let deadline = Instant::now() + limit;
        loop {
            let left = self.leftovers();
            if left.is_empty() {
                return;
            }
            if Instant::now() > deadline {
                assert!(
                    left.is_empty(),
                    "{}: host state not restored; the test's own resources remain:\n{}",
                    self.test,
                    left.join("\n")
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The end of a test: nothing of its own left, images unchanged.
    pub fn check(self) {
        self.assert_restored();
        for (path, before) in lock_ignoring_poison(&self.watched).iter() {
            assert_eq!(
                &fingerprint(path),
                before,
                "{}: the image file changed: {}",
                self.test,
                path.display()
            );
        }
    }
}

impl Drop for Frame {
    /// Removes the work directory, unless the test failed (kept for a look)
    /// or something is mounted in it (never remove through a mount).
    fn drop(&mut self) {
        if std::thread::panicking() || !mounts_below(&self.scratch).is_empty() {
            eprintln!(
                "{}: work directory kept: {}",
                self.test,
                self.scratch.display()
            );
            return;
        }
        let _ = fs::remove_dir_all(&self.scratch);
    }
}

/// `target/tmp/e2e/<PID>/<N>-<test>`: one per frame and process, so
/// neither two tests nor two runs of one checkout share a directory. Short:
/// a Unix socket's path in it must fit in 108 bytes (unix(7)).
fn work_dir(test: &str) -> PathBuf {
    let base = Path::new(env!("CARGO_TARGET_TMPDIR")).join("e2e");
    static SWEPT: Once = Once::new();
    SWEPT.call_once(|| sweep_dead_runs(&base));
    static FRAMES: AtomicUsize = AtomicUsize::new(0);
    let n = FRAMES.fetch_add(1, Ordering::Relaxed);
    let label: String = test
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .take(24)
        .collect();
    let dir = base
        .join(std::process::id().to_string())
        .join(format!("{n}-{label}"));
    assert!(
        mounts_below(&dir).is_empty(),
        "{test}: something is mounted in {}",
        dir.display()
    );
    let _ = fs::remove_dir_all(&dir);
    // 0755 down to it: a test runs rootrun as nobody on an image in it.
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o755)
        .create(&dir)
        .expect("create the test's work directory");
    dir
}

/// Removes the work directories of test processes that are gone (a killed
/// run), except where something is still mounted.
fn sweep_dead_runs(base: &Path) {
    for entry in fs::read_dir(base).into_iter().flatten().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Ok(pid) = name.parse::<u32>() else {
            continue;
        };
        if Path::new(&format!("/proc/{pid}")).exists() || !mounts_below(&entry.path()).is_empty() {
            continue;
        }
        let _ = fs::remove_dir_all(entry.path());
    }
}
