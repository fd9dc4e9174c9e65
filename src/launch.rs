//! Executes a `LaunchPlan`: acquire the guards in order (namespace, tmpfs,
//! loop device, SquashFS, overlay, console, monitor), run the container, and
//! release everything in reverse, whatever happened.

use std::fs;
use std::io::{self, IsTerminal};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::time::Instant;

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{kill, SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::{setpgid, Pid};

use crate::arch::Emulation;
use crate::console::{self, ConsolePty, EscapeScanner, LineEnds, RawMode};
use crate::error::Error;
use crate::image::unpack::{self, TerminalProgress, UnpackOptions};
use crate::lxc::{Container, LxcError};
use crate::plan::CONTAINER_PREFIX;
use crate::plan::{ConsolePath, LaunchPlan, Lower, Mode};
use crate::sys::mount::{self, Mount};
use crate::sys::process::{self, Outcome, SharedOutcome};
use crate::sys::rootfs::{self, Executable};
use crate::sys::{cgroup, loopdev, SysError};

/// The PATH liblxc's init searches for a command without a slash.
const CONTAINER_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Signals rootrun handles through a signalfd instead of dying from them.
const HANDLED: [Signal; 5] = [
    Signal::SIGINT,
    Signal::SIGTERM,
    Signal::SIGHUP,
    Signal::SIGCHLD,
    Signal::SIGWINCH,
];

/// Runs the plan and returns rootrun's exit code.
pub fn run(plan: &LaunchPlan, banner: Option<&str>) -> Result<u8, Error> {
    // The caller has entered rootrun's private mount namespace (sys::namespace).
    cgroup::sweep_stale(CONTAINER_PREFIX);
    let stage = Stage::prepare(plan, banner.is_none())?;
    check_entry(plan, &stage.root)?;
    let _interpreter = bind_interpreter(plan, &stage.root)?;

    let console = match plan.mode {
        Mode::Boot { .. } => Some(ConsolePty::open(console::window_size(io::stdin().as_fd()))?),
        Mode::Command { .. } => None,
    };
    let console_path = match &console {
        Some(pty) => ConsolePath::Pty(&pty.slave_path),
        None => ConsolePath::Planned,
    };
    write_config(plan, console_path)?;

    let mut signals = SigSet::empty();
    for signal in HANDLED {
        signals.add(signal);
    }
    signals
        .thread_block()
        .map_err(|e| SysError::new("block signals in", "rootrun", e))?;
    let signal_fd = SignalFd::with_flags(&signals, SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC)
        .map_err(|e| SysError::new("signalfd", "rootrun", e))?;

    let outcome = SharedOutcome::new()?;
    if let Some(text) = banner {
        eprintln!("{text}");
    }
    let monitor = process::spawn(|| monitor_main(plan, &signals, &outcome))?;

    let mut session = Session {
        plan,
        monitor,
        console: console.as_ref(),
        stop: None,
    };
    let result = session.run(&signal_fd);
    drop(stage);
    let _ = signals.thread_unblock();
    result?;
    exit_code(
        plan,
        outcome.outcome(),
        session.stop.map(|s| s.cause),
        &plan.layout.log,
    )
}

/// The mounts of one run, released in reverse order on drop.
struct Stage {
    /// The container root, as an `O_PATH` directory fd for lookups inside it.
    root: OwnedFd,
    // Field order is drop order: the overlay before the SquashFS before the tmpfs.
    _overlay: Mount,
    _lower: Option<Mount>,
    _state: Mount,
    _locks: LockDir,
}

/// liblxc keeps lock files under `/run/lxc/lock/<lxcpath>/`, on the host. A
/// private tmpfs there keeps them in rootrun's namespace with everything
/// else; `/run/lxc` itself is removed again if rootrun created it.
struct LockDir {
    mount: Option<Mount>,
    created: bool,
}

const LXC_RUN_DIR: &str = "/run/lxc";

impl LockDir {
    fn mount() -> Result<Self, SysError> {
        let path = Path::new(LXC_RUN_DIR);
        let created = !path.exists();
        if created {
            mkdir(path)?;
        }
        let mut guard = LockDir {
            mount: None,
            created,
        };
        guard.mount = Some(mount::tmpfs(path)?);
        Ok(guard)
    }
}

impl Drop for LockDir {
    fn drop(&mut self) {
        drop(self.mount.take());
        if self.created {
            let _ = fs::remove_dir(LXC_RUN_DIR);
        }
    }
}

impl Stage {
    fn prepare(plan: &LaunchPlan, quiet: bool) -> Result<Self, Error> {
        let layout = &plan.layout;
        let locks = LockDir::mount()?;
        mkdir(&layout.base)?;
        let state = mount::tmpfs(&layout.base)?;
        for dir in [
            &layout.lower,
            &layout.upper,
            &layout.work,
            &layout.rootfs,
            &layout.lxcpath,
        ] {
            mkdir(dir)?;
        }
        let lower = mount_lower(plan, quiet)?;
        let overlay = mount::overlay(&layout.lower, &layout.upper, &layout.work, &layout.rootfs)?;
        let root = fs::File::open(&layout.rootfs)
            .map_err(|e| SysError::io("open", &layout.rootfs, e))?
            .into();
        Ok(Stage {
            root,
            _overlay: overlay,
            _lower: lower,
            _state: state,
            _locks: locks,
        })
    }
}

/// A handler without the F flag: the kernel opens the interpreter by its
/// registered path inside the container, so put the host file there.
fn bind_interpreter(plan: &LaunchPlan, root: &OwnedFd) -> Result<Option<Mount>, Error> {
    let Emulation::BindMount {
        interpreter,
        host_file,
        ..
    } = &plan.emulation
    else {
        return Ok(None);
    };
    let target = rootfs::create_file_in_root(root, interpreter).map_err(|e| {
        SysError::new(
            "create the interpreter mount point inside the image at",
            interpreter,
            e,
        )
    })?;
    let target_path = rootfs::fd_path(&target);
    Ok(Some(mount::bind_read_only(
        host_file,
        &target,
        &target_path,
    )?))
}

/// The read-only lower layer, by its source.
fn mount_lower(plan: &LaunchPlan, quiet: bool) -> Result<Option<Mount>, Error> {
    let target = &plan.layout.lower;
    match plan.lower {
        Lower::Squashfs => {
            let device = loopdev::attach_read_only(&plan.image)?;
            let lower =
                mount::squashfs(device.path(), target).map_err(|e| not_squashfs(plan, e))?;
            // The mount holds the device now; autoclear detaches it with the mount.
            drop(device);
            Ok(Some(lower))
        }
        Lower::Directory => {
            let fd: OwnedFd = fs::File::open(target)
                .map_err(|e| SysError::io("open", target, e))?
                .into();
            Ok(Some(mount::bind_read_only(&plan.image, &fd, target)?))
        }
        Lower::Unpacked => {
            unpack_lower(plan, quiet)?;
            Ok(None)
        }
    }
}

fn not_squashfs(plan: &LaunchPlan, err: SysError) -> Error {
    if err.errno == nix::errno::Errno::EINVAL {
        Error::Image {
            path: plan.image.clone(),
            problem: "not a SquashFS image (the kernel refused to mount it)".into(),
        }
    } else {
        err.into()
    }
}

fn mkdir(path: &Path) -> Result<(), SysError> {
    match fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(path)
    {
        Ok(()) => Ok(()),
        Err(e) => Err(SysError::io("create directory", path, e)),
    }
}

/// Refuses a missing (127) or non-executable (126) entry program before
/// liblxc would fail with a less helpful message.
fn check_entry(plan: &LaunchPlan, root: &OwnedFd) -> Result<(), Error> {
    let program = plan.entry_program();
    let candidates: Vec<PathBuf> = if program.contains('/') {
        vec![PathBuf::from(program)]
    } else {
        CONTAINER_PATH
            .split(':')
            .map(|dir| Path::new(dir).join(program))
            .collect()
    };
    let mut not_executable = None;
    for path in &candidates {
        match rootfs::check_executable(root, path) {
            Executable::Ok => return Ok(()),
            Executable::NotExecutable => not_executable = not_executable.or(Some(path.clone())),
            Executable::Missing => {}
        }
    }
    match not_executable {
        Some(path) => Err(Error::NotExecutable {
            what: path.display().to_string(),
        }),
        None if program.contains('/') => Err(Error::NotFound {
            what: program.to_owned(),
            hint: None,
        }),
        None => Err(Error::NotFound {
            what: program.to_owned(),
            hint: Some(format!("searched {CONTAINER_PATH}")),
        }),
    }
}

fn write_config(plan: &LaunchPlan, console: ConsolePath<'_>) -> Result<(), SysError> {
    let dir = plan.layout.lxcpath.join(&plan.name);
    mkdir(&dir)?;
    let path = dir.join("config");
    fs::write(&path, plan.lxc_config_text(console)).map_err(|e| SysError::io("write", &path, e))
}

/// The liblxc monitor: runs in a forked child so that rootrun itself stays
/// free to proxy the console and react to signals while `start()` blocks.
fn monitor_main(plan: &LaunchPlan, signals: &SigSet, outcome: &SharedOutcome) {
    // Its own process group: a Ctrl-C on rootrun's terminal is for rootrun,
    // which decides how to stop the container.
    let _ = setpgid(Pid::from_raw(0), Pid::from_raw(0));
    // If rootrun is SIGKILLed, the monitor dies too, and liblxc's own
    // PR_SET_PDEATHSIG on init takes the container with it: the namespace,
    // its mounts and the autoclear loop device then vanish.
    if process::die_with_parent().is_err() {
        return outcome.report(Outcome::StartFailed);
    }
    let _ = signals.thread_unblock();
    let started = Container::new(&plan.name, &plan.layout.lxcpath).and_then(|container| {
        container.want_daemonize(false)?;
        container.want_close_all_fds(true)?;
        match &plan.mode {
            Mode::Boot { .. } => container.start(false, &[])?,
            Mode::Command { argv } => container.start(true, argv)?,
        }
        Ok(container.exit_status())
    });
    outcome.report(match started {
        Ok(status) => Outcome::Exited(status),
        Err(_) => Outcome::StartFailed,
    });
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StopCause {
    Escape,
    Signal(Signal),
}

#[derive(Debug, Clone, Copy)]
struct StopRequest {
    cause: StopCause,
    deadline: Instant,
    forced: bool,
}

/// The running container, seen from rootrun.
struct Session<'a> {
    plan: &'a LaunchPlan,
    monitor: Pid,
    console: Option<&'a ConsolePty>,
    stop: Option<StopRequest>,
}

impl Session<'_> {
    fn run(&mut self, signal_fd: &SignalFd) -> Result<(), Error> {
        let stdin = io::stdin();
        let is_tty = stdin.is_terminal();
        let _raw = match (self.console, is_tty) {
            (Some(_), true) => RawMode::enter(stdin.as_fd()),
            _ => None,
        };
        let mut escape = is_tty.then(|| EscapeScanner::new(self.plan.escape));
        let mut output = Output::stdout();
        let mut gate = InputGate::new(is_tty);
        let mut stdin_open = self.console.is_some();
        let mut buf = vec![0u8; 64 * 1024];
        let mut forward = Vec::with_capacity(buf.len());

        loop {
            let now = Instant::now();
            let stop_at = match self.stop {
                Some(StopRequest {
                    deadline,
                    forced: false,
                    ..
                }) => Some(deadline),
                _ => None,
            };
            let wake_at = [stop_at, gate.opens_at()].into_iter().flatten().min();
            let timeout = match wake_at {
                Some(at) => PollTimeout::try_from(at.saturating_duration_since(now))
                    .unwrap_or(PollTimeout::MAX),
                None => PollTimeout::NONE,
            };
            let mut fds = vec![PollFd::new(signal_fd.as_fd(), PollFlags::POLLIN)];
            if let Some(pty) = self.console {
                fds.push(PollFd::new(pty.master.as_fd(), PollFlags::POLLIN));
                if stdin_open && gate.is_open(now) {
                    fds.push(PollFd::new(stdin.as_fd(), PollFlags::POLLIN));
                }
            }
            match poll(&mut fds, timeout) {
                Ok(_) | Err(nix::errno::Errno::EINTR) => {}
                Err(e) => return Err(SysError::new("poll", "console", e).into()),
            }
            let ready: Vec<bool> = fds.iter().map(|fd| fd.any().unwrap_or(false)).collect();
            drop(fds);

            if ready[0] && self.handle_signals(signal_fd)? {
                break;
            }
            if let Some(pty) = self.console {
                if ready.get(1) == Some(&true) && output.copy_from(pty.master.as_fd(), &mut buf) {
                    gate.saw_output(Instant::now());
                }
                if ready.get(2) == Some(&true) {
                    match console::read_some(stdin.as_fd(), &mut buf) {
                        Ok(0) | Err(_) => stdin_open = false,
                        Ok(n) => {
                            forward.clear();
                            let quit = match escape.as_mut() {
                                Some(scanner) => scanner.feed(&buf[..n], &mut forward),
                                None => {
                                    forward.extend_from_slice(&buf[..n]);
                                    false
                                }
                            };
                            let _ = console::write_all(pty.master.as_fd(), &forward);
                            if quit {
                                self.request_stop(StopCause::Escape);
                            }
                        }
                    }
                }
            }
            if let Some(stop) = self.stop {
                if !stop.forced && Instant::now() >= stop.deadline {
                    self.force_stop();
                }
            }
        }
        if let Some(pty) = self.console {
            output.copy_from(pty.master.as_fd(), &mut buf);
        }
        Ok(())
    }

    /// Returns true when the monitor (and so the container) has exited.
    fn handle_signals(&mut self, signal_fd: &SignalFd) -> Result<bool, Error> {
        let mut monitor_done = false;
        while let Ok(Some(info)) = signal_fd.read_signal() {
            let Ok(signal) = Signal::try_from(info.ssi_signo as i32) else {
                continue;
            };
            match signal {
                Signal::SIGCHLD => monitor_done |= self.reap_monitor(),
                Signal::SIGWINCH => {
                    if let Some(pty) = self.console {
                        pty.resize_from(io::stdin().as_fd());
                        // liblxc's monitor copies the size on to the console.
                        let _ = kill(self.monitor, Signal::SIGWINCH);
                    }
                }
                other => self.request_stop(StopCause::Signal(other)),
            }
        }
        Ok(monitor_done)
    }

    fn reap_monitor(&self) -> bool {
        matches!(
            waitpid(self.monitor, Some(WaitPidFlag::WNOHANG)),
            Ok(WaitStatus::Exited(..)) | Ok(WaitStatus::Signaled(..)) | Err(_)
        )
    }

    /// First request: ask init to halt and start the grace period. A second
    /// request (Ctrl-C twice) kills the container at once.
    fn request_stop(&mut self, cause: StopCause) {
        if self.stop.is_some() {
            self.force_stop();
            return;
        }
        let deadline = Instant::now() + self.plan.stop_timeout;
        self.stop = Some(StopRequest {
            cause,
            deadline,
            forced: false,
        });
        let asked = Container::new(&self.plan.name, &self.plan.layout.lxcpath).and_then(|c| {
            match (&self.plan.mode, cause) {
                // A command gets the very signal rootrun got, as a shell's
                // child would. It goes to the command itself: liblxc's init
                // turns SIGINT into a SIGTERM shutdown of everything.
                (Mode::Command { .. }, StopCause::Signal(signal)) => {
                    let init = c.init_pid()?;
                    let target = process::first_child(init).unwrap_or(init);
                    kill(Pid::from_raw(target), signal).map_err(|e| LxcError::Call {
                        call: "kill",
                        detail: Some(e.to_string()),
                    })
                }
                // An init is asked to power off with its own halt signal.
                _ => c.request_shutdown(),
            }
        });
        if asked.is_err() {
            // Not running yet or already gone: nothing to ask; kill instead.
            self.force_stop();
        }
    }

    fn force_stop(&mut self) {
        if let Some(stop) = self.stop.as_mut() {
            stop.forced = true;
        }
        let stopped =
            Container::new(&self.plan.name, &self.plan.layout.lxcpath).and_then(|c| c.stop());
        if stopped.is_err() {
            // The monitor's death takes the container with it (liblxc sets
            // PR_SET_PDEATHSIG on init).
            let _ = kill(self.monitor, Signal::SIGKILL);
        }
    }
}

/// rootrun's stdout, fed from the console.
struct Output {
    stdout: io::Stdout,
    /// Closed by the reader (EPIPE): keep draining the console, drop the bytes.
    open: bool,
    /// CR LF -> LF, when stdout is not a terminal.
    line_ends: Option<LineEnds>,
    filtered: Vec<u8>,
}

impl Output {
    fn stdout() -> Self {
        let stdout = io::stdout();
        let line_ends = (!stdout.is_terminal()).then(LineEnds::default);
        Output {
            stdout,
            open: true,
            line_ends,
            filtered: Vec::new(),
        }
    }

    /// Copies what the console has; returns whether there was anything.
    fn copy_from(&mut self, master: BorrowedFd<'_>, buf: &mut [u8]) -> bool {
        let mut any = false;
        while let Ok(n) = console::read_some(master, buf) {
            if n == 0 {
                break;
            }
            any = true;
            let bytes = match self.line_ends.as_mut() {
                Some(filter) => {
                    self.filtered.clear();
                    filter.filter(&buf[..n], &mut self.filtered);
                    &self.filtered[..]
                }
                None => &buf[..n],
            };
            if self.open && console::write_all(self.stdout.as_fd(), bytes).is_err() {
                self.open = false;
            }
        }
        any
    }
}

/// Holds piped input until the console has printed something and then been
/// quiet for `QUIET`: inits and shells flush the console's input queue while
/// they start (piped input written at once was lost with BusyBox), and a
/// script feeding `rootrun IMG` cannot see the prompt. Terminal input is never
/// held: a person types after seeing the prompt.
struct InputGate {
    open: bool,
    last_output: Option<Instant>,
}

const QUIET: std::time::Duration = std::time::Duration::from_millis(500);

impl InputGate {
    fn new(open: bool) -> Self {
        InputGate {
            open,
            last_output: None,
        }
    }

    fn saw_output(&mut self, at: Instant) {
        if !self.open {
            self.last_output = Some(at);
        }
    }

    fn opens_at(&self) -> Option<Instant> {
        match (self.open, self.last_output) {
            (false, Some(at)) => Some(at + QUIET),
            _ => None,
        }
    }

    fn is_open(&mut self, now: Instant) -> bool {
        if !self.open && self.opens_at().is_some_and(|at| now >= at) {
            self.open = true;
        }
        self.open
    }
}

/// rootrun's exit code: the container's status passed through (a signal as
/// 128+n); a user's stop request wins over how init then ended.
fn exit_code(
    plan: &LaunchPlan,
    outcome: Outcome,
    stop: Option<StopCause>,
    log: &Path,
) -> Result<u8, Error> {
    if std::env::var_os("ROOTRUN_DEBUG").is_some() {
        eprintln!("rootrun: debug: outcome {outcome:?}");
    }
    let status = match outcome {
        Outcome::StartFailed | Outcome::Unknown => {
            return Err(Error::Start {
                detail: lxc_log_errors(log),
            });
        }
        Outcome::Exited(status) => status,
    };
    Ok(match stop {
        Some(StopCause::Signal(signal)) => 128 + signal as u8,
        Some(StopCause::Escape) => 0,
        None => status_code(&plan.mode, status),
    })
}

/// Maps init's wait(2) status. In boot mode a halt or poweroff inside the
/// container (reboot(2) in a PID namespace kills init with SIGINT, see
/// pid_namespaces(7)) is a clean end: 0.
fn status_code(mode: &Mode, status: i32) -> u8 {
    if libc::WIFEXITED(status) {
        return libc::WEXITSTATUS(status) as u8;
    }
    // liblxc reports a signalled init as `signal << 8 | 0x7f` (observed with
    // liblxc 5.0.2: poweroff inside the container gives 0x27f).
    let signal = if libc::WIFSIGNALED(status) {
        Some(libc::WTERMSIG(status))
    } else if status & 0x7f == 0x7f {
        Some((status >> 8) & 0x7f)
    } else {
        None
    };
    if let Some(signal) = signal {
        if matches!(mode, Mode::Boot { .. }) && signal == libc::SIGINT {
            return 0;
        }
        return 128u8.saturating_add(signal as u8);
    }
    crate::error::EXIT_ROOTRUN
}

/// The ERROR lines liblxc wrote to its log, without their prefixes.
fn lxc_log_errors(log: &Path) -> String {
    let text = fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text
        .lines()
        .filter(|line| line.contains(" ERROR "))
        .map(|line| line.rsplit_once(" - ").map_or(line, |(_, msg)| msg))
        .collect();
    let tail = &lines[lines.len().saturating_sub(3)..];
    if tail.is_empty() {
        format!("liblxc gave no reason (see {})", log.display())
    } else {
        tail.join("; ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn boot() -> Mode {
        Mode::Boot {
            init: "/sbin/init".into(),
        }
    }

    fn command() -> Mode {
        Mode::Command {
            argv: vec!["true".into()],
        }
    }

    #[test]
    fn exit_status_passes_through_and_signals_become_128_plus_n() {
        assert_eq!(status_code(&command(), 7 << 8), 7);
        assert_eq!(status_code(&command(), libc::SIGTERM), 128 + 15);
        assert_eq!(status_code(&command(), libc::SIGINT), 128 + 2);
    }

    #[test]
    fn poweroff_inside_a_booted_container_is_success() {
        assert_eq!(status_code(&boot(), libc::SIGINT), 0);
        assert_eq!(status_code(&boot(), 0x27f), 0);
        assert_eq!(status_code(&command(), 0x27f), 130);
        assert_eq!(status_code(&boot(), 0), 0);
        assert_eq!(status_code(&boot(), libc::SIGKILL), 128 + 9);
    }
}

/// `--unpack`: extract the image with backhand into the lower directory on
/// rootrun's tmpfs. Its worker threads are scoped and gone when it returns,
/// before the monitor is forked.
fn unpack_lower(plan: &LaunchPlan, quiet: bool) -> Result<(), Error> {
    let mut progress = TerminalProgress::new(quiet);
    unpack::unpack(
        &plan.image,
        &plan.layout.lower,
        &UnpackOptions::default(),
        &mut progress,
    )
    .map_err(|e| Error::Unpack(Box::new(e)))?;
    Ok(())
}
