//! Shared helpers for the integration tests: fixture images built at test
//! time from Debian's busybox-static, privilege checks that never skip
//! silently under CI, and snapshots of the host state rootrun must restore.

#![allow(dead_code)]

use std::collections::BTreeSet;
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

/// Serializes tests that boot containers or compare host-global state.
static HOST: Mutex<()> = Mutex::new(());

pub fn host_lock() -> MutexGuard<'static, ()> {
    HOST.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// True when the test may go on as root. Not root: under `CI=true` this
/// fails with the reason; elsewhere it prints why the test did nothing.
pub fn require_root(test: &str) -> bool {
    if nix::unistd::geteuid().is_root() {
        return true;
    }
    let reason = format!("{test} needs root (it boots containers through liblxc)");
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{reason}; CI runs the suite as root");
    }
    eprintln!("NOTE: {reason}; not run");
    false
}

pub fn rootrun() -> Command {
    Command::new(env!("CARGO_BIN_EXE_rootrun"))
}

pub fn work_dir() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("rootrun-tests");
    fs::create_dir_all(&dir).expect("create test work dir");
    dir
}

/// Builds (once per test process and arch) a BusyBox image for a Debian
/// architecture with tests/fixtures/build-image.sh.
pub fn busybox_image(arch: &str) -> PathBuf {
    static BUILT: OnceLock<Mutex<BTreeSet<String>>> = OnceLock::new();
    let built = BUILT.get_or_init(Default::default);
    let mut built = built.lock().unwrap_or_else(|p| p.into_inner());
    let image = work_dir().join(format!("busybox-{arch}.img"));
    if !built.contains(arch) {
        build_image(arch, &image, None);
        built.insert(arch.to_owned());
    }
    image
}

/// Builds an image with extra files copied over the BusyBox tree.
pub fn build_image(arch: &str, output: &Path, extra: Option<&Path>) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/build-image.sh");
    let cache = work_dir().join("cache");
    let mut cmd = Command::new(script);
    cmd.arg(arch).arg(output).arg(&cache);
    if let Some(extra) = extra {
        cmd.env("ROOTRUN_FIXTURE_EXTRA", extra);
    }
    let out = cmd.output().expect("run tests/fixtures/build-image.sh");
    assert!(
        out.status.success(),
        "building the {arch} fixture image failed (is busybox-static:{arch} downloadable? \
         see tests/setup-host.sh): {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

pub fn sha256(path: &Path) -> String {
    let mut file = fs::File::open(path).expect("open image for hashing");
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = file.read(&mut buf).expect("read image");
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// What rootrun must leave as it found it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostState {
    mounts: Vec<String>,
    loop_devices: Vec<String>,
    run_rootrun: Vec<String>,
    run_lxc: Vec<String>,
    lxc_cgroups: Vec<String>,
}

impl HostState {
    pub fn capture() -> Self {
        HostState {
            mounts: mount_lines(),
            loop_devices: loop_backing_files(),
            run_rootrun: list_dir(Path::new("/run/rootrun")),
            // rootrun leaves these two as empty mount points (see README).
            run_lxc: list_dir(Path::new("/run/lxc")),
            lxc_cgroups: rootrun_cgroups(),
        }
    }

    /// Waits (briefly: teardown is asynchronous after SIGKILL) until the
    /// state is restored, then asserts it. Mounts, loop devices and rootrun's
    /// directories must be exactly as before. Cgroups must include nothing
    /// new: rootrun's start-up sweep may remove stale ones that a rootrun
    /// killed before the test left (seen in CI, where a run killed outside
    /// the suite left `lxc.*.rootrun-PID` behind), and that is its job.
    pub fn assert_restored(&self, what: &str) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let now = HostState::capture().without_cgroups_in(self);
            let before = HostState {
                lxc_cgroups: Vec::new(),
                ..self.clone()
            };
            if now == before {
                return;
            }
            if Instant::now() > deadline {
                assert_eq!(now, before, "{what}: host state not restored");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// This state with only the cgroups that `before` did not have.
    fn without_cgroups_in(mut self, before: &HostState) -> Self {
        self.lxc_cgroups
            .retain(|cgroup| !before.lxc_cgroups.contains(cgroup));
        self
    }
}

/// Mount points and sources of the host's (this test's) namespace.
fn mount_lines() -> Vec<String> {
    let text = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let mut lines: Vec<String> = text
        .lines()
        .map(|line| {
            // Mount and parent IDs change when something is remounted; the
            // mount point, options, type and source are what must not change.
            line.split(' ').skip(4).collect::<Vec<_>>().join(" ")
        })
        .collect();
    lines.sort();
    lines
}

fn loop_backing_files() -> Vec<String> {
    let mut found = Vec::new();
    for entry in fs::read_dir("/sys/block").into_iter().flatten().flatten() {
        let backing = entry.path().join("loop/backing_file");
        if let Ok(file) = fs::read_to_string(&backing) {
            found.push(format!(
                "{}: {}",
                entry.file_name().to_string_lossy(),
                file.trim()
            ));
        }
    }
    found.sort();
    found
}

fn list_dir(path: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(path)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// cgroups that liblxc made for rootrun containers, anywhere in the tree.
pub fn rootrun_cgroups() -> Vec<String> {
    let mut found = Vec::new();
    let mut stack = vec![PathBuf::from("/sys/fs/cgroup")];
    while let Some(dir) = stack.pop() {
        for entry in fs::read_dir(&dir).into_iter().flatten().flatten() {
            if !entry.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                continue;
            }
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.contains("rootrun-") {
                found.push(entry.path().display().to_string());
            } else if found.len() < 1000 {
                stack.push(entry.path());
            }
        }
    }
    found.sort();
    found
}

/// A spawned rootrun with its stdin and stdout for the test to use as it
/// likes (stdout is not read unless the test reads it); stderr is drained.
pub struct Piped {
    pub child: std::process::Child,
    pub stdin: std::process::ChildStdin,
    pub stdout: std::process::ChildStdout,
    pub stderr: Drained,
}

pub fn spawn_piped(cmd: &mut Command) -> Piped {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn rootrun");
    Piped {
        stdin: child.stdin.take().expect("stdin pipe"),
        stdout: child.stdout.take().expect("stdout pipe"),
        stderr: drain(child.stderr.take()),
        child,
    }
}

/// Runs rootrun with `stdin` bytes and a time limit; kills it on overrun.
pub fn run_with_input(cmd: &mut Command, input: &[u8], limit: Duration) -> Output {
    use std::io::Write;
    let Piped {
        child,
        mut stdin,
        stdout,
        stderr,
    } = spawn_piped(cmd);
    stdin.write_all(input).expect("write stdin");
    drop(stdin);
    collect(child, drain(Some(stdout)), stderr, limit)
}

/// Waits for `child` (stdout and stderr piped), draining its pipes so it
/// never blocks on a full pipe; kills it if it overruns `limit`.
pub fn wait_with_limit(mut child: std::process::Child, limit: Duration) -> Output {
    let stdout = drain(child.stdout.take());
    let stderr = drain(child.stderr.take());
    collect(child, stdout, stderr, limit)
}

type Drained = std::thread::JoinHandle<Vec<u8>>;

fn collect(
    mut child: std::process::Child,
    stdout: Drained,
    stderr: Drained,
    limit: Duration,
) -> Output {
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for rootrun") {
            break Ok(status);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            break Err(child.wait().expect("reap rootrun"));
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let stdout = stdout.join().unwrap_or_default();
    let stderr = stderr.join().unwrap_or_default();
    match status {
        Ok(status) => Output {
            status,
            stdout,
            stderr,
        },
        Err(_) => panic!(
            "rootrun did not finish within {limit:?}\nstdout: {}\nstderr: {}",
            text(&stdout),
            text(&stderr)
        ),
    }
}

fn drain<R: Read + Send + 'static>(pipe: Option<R>) -> Drained {
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        if let Some(mut pipe) = pipe {
            let _ = pipe.read_to_end(&mut buf);
        }
        buf
    })
}

/// Streams a child's output in chunks over a channel (for tests that react
/// to what a running container prints).
pub fn stream<R: Read + Send + 'static>(mut pipe: R) -> std::sync::mpsc::Receiver<Vec<u8>> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = pipe.read(&mut buf) {
            if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                break;
            }
        }
    });
    rx
}

/// `rootrun -q IMAGE -- /bin/sh -c SCRIPT` with empty stdin.
pub fn sh_in(image: &Path, script: &str, limit: Duration) -> Output {
    run_with_input(&mut sh_command(image, &[], script), b"", limit)
}

/// `rootrun -q OPTIONS IMAGE -- /bin/sh -c SCRIPT`, not started yet.
pub fn sh_command(image: &Path, options: &[&str], script: &str) -> Command {
    let mut cmd = rootrun();
    cmd.arg("-q")
        .args(options)
        .arg(image)
        .args(["--", "/bin/sh", "-c", script]);
    cmd
}

/// A running rootrun whose output is read as it comes, for tests that react
/// to what the container prints (wait for a marker, then signal, ...).
pub struct Live {
    pub child: std::process::Child,
    rx: std::sync::mpsc::Receiver<Vec<u8>>,
    /// Everything read so far.
    pub seen: String,
}

impl Live {
    /// Spawns `cmd` with stdout and stderr piped; stdout is streamed.
    pub fn spawn(cmd: &mut Command, stdin: Stdio) -> Live {
        let mut child = cmd
            .stdin(stdin)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn rootrun");
        let stdout = child.stdout.take().expect("stdout pipe");
        Live::reading(child, stdout)
    }

    /// Streams `output` (e.g. a pty master) for an already spawned child.
    pub fn reading<R: Read + Send + 'static>(child: std::process::Child, output: R) -> Live {
        Live {
            child,
            rx: stream(output),
            seen: String::new(),
        }
    }

    /// Reads until `needle` shows up; false after `limit`.
    pub fn wait_for(&mut self, needle: &str, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        while !self.seen.contains(needle) {
            match self
                .rx
                .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            {
                Ok(chunk) => self.seen.push_str(&text(&chunk)),
                Err(_) => return false,
            }
        }
        true
    }

    /// Like `wait_for`, but panics with the output so far.
    pub fn expect(&mut self, needle: &str, limit: Duration) {
        assert!(
            self.wait_for(needle, limit),
            "{needle:?} never appeared; output so far: {}",
            self.seen
        );
    }

    pub fn signal(&self, signal: nix::sys::signal::Signal) {
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(self.child.id() as i32), signal)
            .expect("signal rootrun");
    }

    /// Waits for the child (killed and reported on overrun of `limit`) and
    /// for the rest of its output.
    pub fn finish(self, limit: Duration) -> (Output, String) {
        let Live {
            child,
            rx,
            mut seen,
        } = self;
        let out = wait_with_limit(child, limit);
        while let Ok(chunk) = rx.recv_timeout(Duration::from_secs(2)) {
            seen.push_str(&text(&chunk));
        }
        (out, seen)
    }
}

/// `mksquashfs TREE IMAGE` with root-owned files.
pub fn mksquashfs(tree: &Path, image: &Path) {
    let status = Command::new("mksquashfs")
        .arg(tree)
        .arg(image)
        .args(["-noappend", "-quiet", "-all-root"])
        .stdout(Stdio::null())
        .status()
        .expect("run mksquashfs");
    assert!(status.success(), "mksquashfs {} failed", tree.display());
}

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}
