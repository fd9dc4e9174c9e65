//! Running rootrun from a test: with input and a time limit, streamed, on a
//! pty. Spawning a rootrun that may start a container goes through the
//! frame (`Frame::spawn` and the methods built on it) so that the frame
//! knows its container's name; these are the pieces underneath.

use std::io::{Read, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, ChildStdout, Command, Output, Stdio};
use std::sync::mpsc::Receiver;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

pub fn rootrun() -> Command {
    Command::new(env!("CARGO_BIN_EXE_rootrun"))
}

/// rootrun as user nobody: setpriv drops every capability with the uid
/// change.
pub fn rootrun_as_nobody() -> Command {
    let mut cmd = Command::new("setpriv");
    cmd.args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
        .arg(env!("CARGO_BIN_EXE_rootrun"));
    cmd
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

/// `cmd` with stdin, stdout and stderr piped.
pub fn piped(cmd: &mut Command) -> &mut Command {
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
}

/// A spawned rootrun with its stdin and stdout for the test to use as it
/// likes (stdout is not read unless the test reads it); stderr is drained.
pub struct Piped {
    pub child: Child,
    pub stdin: ChildStdin,
    pub stdout: ChildStdout,
    pub stderr: Drained,
}

impl Piped {
    /// Takes the pipes of a child spawned with `piped`.
    pub fn new(mut child: Child) -> Piped {
        Piped {
            stdin: child.stdin.take().expect("stdin pipe"),
            stdout: child.stdout.take().expect("stdout pipe"),
            stderr: drain(child.stderr.take()),
            child,
        }
    }
}

/// Runs `cmd` (not a rootrun of the frame's: a wrapper that starts rootrun
/// as a grandchild) with `input` on stdin and a time limit.
pub fn run_with_input(cmd: &mut Command, input: &[u8], limit: Duration) -> Output {
    feed(piped(cmd).spawn().expect("spawn"), input, limit)
}

/// Writes `input` to a child spawned with `piped`, closes its stdin and
/// waits for it within `limit` (killed and reported on overrun).
pub fn feed(child: Child, input: &[u8], limit: Duration) -> Output {
    let Piped {
        child,
        mut stdin,
        stdout,
        stderr,
    } = Piped::new(child);
    stdin.write_all(input).expect("write stdin");
    drop(stdin);
    collect(child, drain(Some(stdout)), stderr, limit)
}

/// Waits for `child` (stdout and stderr piped), draining its pipes so it
/// never blocks on a full pipe; kills it if it overruns `limit`.
pub fn wait_with_limit(mut child: Child, limit: Duration) -> Output {
    let stdout = drain(child.stdout.take());
    let stderr = drain(child.stderr.take());
    collect(child, stdout, stderr, limit)
}

pub type Drained = JoinHandle<Vec<u8>>;

fn collect(mut child: Child, stdout: Drained, stderr: Drained, limit: Duration) -> Output {
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
fn stream<R: Read + Send + 'static>(mut pipe: R) -> Receiver<Vec<u8>> {
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

/// A running rootrun whose output is read as it comes, for tests that react
/// to what the container prints (wait for a marker, then signal, ...).
/// Killed on drop if the test did not `finish` it (a failed test must not
/// leave a rootrun running).
pub struct Live {
    child: Option<Child>,
    rx: Receiver<Vec<u8>>,
    /// Everything read so far.
    pub seen: String,
}

impl Live {
    /// Streams the stdout of a child spawned with stdout piped.
    pub fn new(mut child: Child) -> Live {
        let stdout = child.stdout.take().expect("stdout pipe");
        Live::reading(child, stdout)
    }

    /// Streams `output` (e.g. a pty master) for an already spawned child.
    pub fn reading<R: Read + Send + 'static>(child: Child, output: R) -> Live {
        Live {
            child: Some(child),
            rx: stream(output),
            seen: String::new(),
        }
    }

    /// The PID of rootrun (or of the program spawned).
    pub fn id(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    /// Whether the child has exited (its status is kept for `finish`).
    pub fn exited(&mut self) -> bool {
        self.child
            .as_mut()
            .is_none_or(|child| child.try_wait().ok().flatten().is_some())
    }

    /// Writes `bytes` to a piped stdin, then closes it.
    pub fn write_and_close_stdin(&mut self, bytes: &[u8]) {
        let mut stdin = self
            .child
            .as_mut()
            .and_then(|child| child.stdin.take())
            .expect("a piped stdin");
        stdin.write_all(bytes).expect("write to the child's stdin");
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

    /// Like `wait_for`, but panics with the output so far (and, the child
    /// killed, its stderr).
    pub fn expect(&mut self, needle: &str, limit: Duration) {
        let appeared = self.wait_for(needle, limit);
        let stderr = if appeared { String::new() } else { self.kill() };
        assert!(
            appeared,
            "{needle:?} never appeared; output so far: {}\nstderr: {stderr}",
            self.seen
        );
    }

    pub fn signal(&self, signal: nix::sys::signal::Signal) {
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(self.id() as i32), signal)
            .expect("signal rootrun");
    }

    /// Kills and reaps the child; returns what it wrote to a piped stderr
    /// (waiting a few seconds at most: a stuck grandchild may hold it).
    fn kill(&mut self) -> String {
        let Some(mut child) = self.child.take() else {
            return String::new();
        };
        let _ = child.kill();
        let _ = child.wait();
        let (tx, rx) = std::sync::mpsc::channel();
        let stderr = child.stderr.take();
        std::thread::spawn(move || {
            let _ = tx.send(drain(stderr).join().unwrap_or_default());
        });
        text(&rx.recv_timeout(Duration::from_secs(5)).unwrap_or_default())
    }

    /// Waits for the child (killed and reported on overrun of `limit`) and
    /// for the rest of its output.
    pub fn finish(mut self, limit: Duration) -> (Output, String) {
        let child = self.child.take().expect("a child not finished yet");
        let out = wait_with_limit(child, limit);
        while let Ok(chunk) = self.rx.recv_timeout(Duration::from_secs(2)) {
            self.seen.push_str(&text(&chunk));
        }
        (out, std::mem::take(&mut self.seen))
    }
}

impl Drop for Live {
    fn drop(&mut self) {
        self.kill();
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

/// Kills the named container (`rootrun stop --kill NAME`) should the test
/// fail before its own stop: a detached container would outlive the test.
pub struct KillOnPanic(pub String);

impl Drop for KillOnPanic {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let _ = rootrun().args(["stop", "--kill", &self.0]).output();
        }
    }
}
