//! The running container, seen from rootrun: the console proxy loop, stop
//! requests (escape key, signals) and how the container's end maps to
//! rootrun's exit code.

use std::fs;
use std::io::{self, IsTerminal};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use nix::fcntl::OFlag;
use std::path::Path;
use std::time::{Duration, Instant};

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{kill, Signal};
use nix::sys::signalfd::SignalFd;
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

use crate::console::{self, ConsolePty, EscapeScanner, LineEnds, RawMode, SavedMode};
use crate::error::Error;
use crate::plan::{LaunchPlan, Mode};
use crate::sys::process::{self, Outcome};
use crate::sys::{tty, SysError};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StopCause {
    Escape,
    Signal(Signal),
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct StopRequest {
    pub(crate) cause: StopCause,
    step: StopStep,
    /// When the next, harder step is due; none after the last one.
    deadline: Option<Instant>,
    /// The first signal went to a PID-namespace init that did not catch it,
    /// so the kernel dropped it (pid_namespaces(7)): when to look again
    /// whether init has a handler by now, and send it again.
    retry: Option<Retry>,
}

#[derive(Debug, Clone, Copy)]
struct Retry {
    at: Instant,
    pid: i32,
    signal: i32,
}

/// What became of the first stop signal.
enum Asked {
    Sent,
    /// Sent to init (this PID), which looked as if it would drop it.
    MaybeDropped(i32, i32),
}

/// How often a dropped first stop signal is tried again.
const RETRY_EVERY: Duration = Duration::from_millis(200);

/// How far a stop has gone. Every step is a plain kill(2) on a PID rootrun
/// found itself: a call into liblxc's command socket would block until the
/// monitor answers, and the monitor may be blocked writing to the console
/// that only this loop drains.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StopStep {
    /// Init got its halt signal (a command, the signal rootrun got).
    Asked,
    /// Init got SIGKILL: the PID namespace dies, the monitor cleans up.
    InitKilled,
    /// The monitor got SIGKILL; liblxc's parent-death signal kills init.
    MonitorKilled,
}

/// How long the monitor has to clean up after init was killed.
const KILL_GRACE: Duration = Duration::from_secs(2);

/// The running container, seen from rootrun.
pub(crate) struct Session<'a> {
    pub(crate) plan: &'a LaunchPlan,
    pub(crate) monitor: Pid,
    pub(crate) console: Option<&'a ConsolePty>,
    pub(crate) stop: Option<StopRequest>,
}

impl Session<'_> {
    pub(crate) fn run(&mut self, signal_fd: &SignalFd) -> Result<(), Error> {
        let stdin = io::stdin();
        let is_tty = stdin.is_terminal();
        // Boot mode: raw while attached. Command mode: the command shares
        // the terminal and may leave it raw when it is killed.
        let _raw = (self.console.is_some() && is_tty)
            .then(|| RawMode::enter(stdin.as_fd()))
            .flatten();
        let _saved = (self.console.is_none() && is_tty)
            .then(|| SavedMode::save(stdin.as_fd()))
            .flatten();
        let mut escape = is_tty.then(|| EscapeScanner::new(self.plan.escape));
        let mut output = Output::stdout(self.console.is_some());
        let mut gate = InputGate::new(is_tty);
        let mut stdin_open = self.console.is_some();
        let mut buf = vec![0u8; 64 * 1024];
        // Input for the console not written yet: the guest may not be
        // reading, and rootrun must never block on it.
        let mut pending: Vec<u8> = Vec::new();

        loop {
            let now = Instant::now();
            let stop_at = self.stop.and_then(|stop| stop.deadline);
            let retry_at = self.stop.and_then(|stop| stop.retry).map(|r| r.at);
            let wake_at = [stop_at, retry_at, gate.opens_at()]
                .into_iter()
                .flatten()
                .min();
            let timeout = match wake_at {
                // Rounded up: a timeout rounded down to 0 ms would spin
                // until the moment comes.
                Some(at) => PollTimeout::try_from(
                    at.saturating_duration_since(now).as_micros().div_ceil(1000),
                )
                .unwrap_or(PollTimeout::MAX),
                None => PollTimeout::NONE,
            };
            // Once a stop is under way the console is drained whatever
            // stdout does: liblxc's monitor blocks on a full console and
            // would not see init end.
            let read_console = output.has_room() || self.stop.is_some();
            let read_stdin = stdin_open && gate.is_open(now) && pending.len() < PENDING_MAX;
            let mut fds = vec![PollFd::new(signal_fd.as_fd(), PollFlags::POLLIN)];
            let (mut master_at, mut stdin_at, mut stdout_at) = (None, None, None);
            if let Some(pty) = self.console {
                let mut events = PollFlags::empty();
                if read_console {
                    events |= PollFlags::POLLIN;
                }
                if !pending.is_empty() {
                    events |= PollFlags::POLLOUT;
                }
                if !events.is_empty() {
                    fds.push(PollFd::new(pty.master.as_fd(), events));
                    master_at = Some(fds.len() - 1);
                }
                if read_stdin {
                    fds.push(PollFd::new(stdin.as_fd(), PollFlags::POLLIN));
                    stdin_at = Some(fds.len() - 1);
                }
                if output.has_pending() {
                    fds.push(PollFd::new(output.fd(), PollFlags::POLLOUT));
                    stdout_at = Some(fds.len() - 1);
                }
            }
            match poll(&mut fds, timeout) {
                Ok(_) | Err(nix::errno::Errno::EINTR) => {}
                Err(e) => return Err(SysError::new("poll", "console", e).into()),
            }
            let revents = |at: Option<usize>| {
                at.and_then(|i| fds[i].revents())
                    .unwrap_or(PollFlags::empty())
            };
            let (signalled, master, input, writable) = (
                revents(Some(0)),
                revents(master_at),
                revents(stdin_at),
                revents(stdout_at),
            );
            drop(fds);

            if !signalled.is_empty() && self.handle_signals(signal_fd)? {
                break;
            }
            if self
                .stop
                .and_then(|stop| stop.deadline)
                .is_some_and(|at| Instant::now() >= at)
            {
                self.escalate();
            }
            self.retry_ask();
            let Some(pty) = self.console else { continue };
            if !writable.is_empty() {
                output.flush_some();
            }
            let overflow = match self.stop {
                Some(_) => Overflow::Drop,
                None => Overflow::Wait,
            };
            if master.intersects(PollFlags::POLLIN)
                && output.take_from(pty.master.as_fd(), &mut buf, READS_PER_WAKE, overflow)
            {
                gate.saw_output(Instant::now());
            }
            if master.contains(PollFlags::POLLOUT) {
                let written = console::write_some(pty.master.as_fd(), &pending);
                pending.drain(..written);
            }
            if !input.is_empty() {
                match console::read_some(stdin.as_fd(), &mut buf) {
                    Ok(0) | Err(_) => stdin_open = false,
                    Ok(n) => {
                        let quit = match escape.as_mut() {
                            Some(scanner) => scanner.feed(&buf[..n], &mut pending),
                            None => {
                                pending.extend_from_slice(&buf[..n]);
                                false
                            }
                        };
                        if quit {
                            // What the console printed before goes first.
                            output.flush_some();
                            self.request_stop(StopCause::Escape);
                        }
                    }
                }
            }
        }
        if let Some(pty) = self.console {
            // The container is gone: what is left in the pty is a buffer's
            // worth (bounded anyway, should a writer outlive the monitor).
            output.take_from(pty.master.as_fd(), &mut buf, FINAL_READS, Overflow::Keep);
            output.finish(signal_fd);
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
            if monitor_done {
                // The monitor's PID is free now: nothing may be sent to it
                // (signalfd hands out SIGWINCH after SIGCHLD, for one).
                continue;
            }
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
    /// request (Ctrl-C twice) goes straight to the next step.
    fn request_stop(&mut self, cause: StopCause) {
        if self.stop.is_some() {
            self.escalate();
            return;
        }
        if cause == StopCause::Escape {
            // The terminal is raw: CR LF by hand.
            note(&format!(
                "\r\nrootrun: stopping the container (halt signal {})\r\n",
                self.plan.halt_signal
            ));
        }
        self.stop = Some(StopRequest {
            cause,
            step: StopStep::Asked,
            deadline: Some(Instant::now() + self.plan.stop_timeout),
            retry: None,
        });
        match self.ask(cause) {
            // No init yet (or already gone): nothing to ask.
            None => self.escalate(),
            Some(Asked::Sent) => {}
            Some(Asked::MaybeDropped(pid, signal)) => {
                if let Some(stop) = self.stop.as_mut() {
                    stop.retry = Some(Retry {
                        at: Instant::now() + RETRY_EVERY,
                        pid,
                        signal,
                    });
                }
            }
        }
    }

    /// Sends a dropped first stop signal again once its target catches it.
    fn retry_ask(&mut self) {
        let Some(stop) = self.stop.as_mut() else {
            return;
        };
        let Some(retry) = stop.retry else { return };
        if stop.step != StopStep::Asked {
            stop.retry = None;
            return;
        }
        if Instant::now() < retry.at {
            return;
        }
        if receives(retry.pid, retry.signal) {
            stop.retry = None;
            // Still the container's init, not a reused PID.
            if self.container_init() == Some(retry.pid) {
                let _ = process::send_signal(retry.pid, retry.signal);
            }
        } else {
            stop.retry = Some(Retry {
                at: Instant::now() + RETRY_EVERY,
                ..retry
            });
        }
    }

    /// Sends the first stop signal and says whether init may have dropped
    /// it; None when there is no init to send to.
    fn ask(&self, cause: StopCause) -> Option<Asked> {
        let init = self.container_init()?;
        let (target, signal) = match (&self.plan.mode, cause) {
            // A command gets the very signal rootrun got, as a shell's child
            // would. It goes to the command itself: liblxc's init turns
            // SIGINT into a SIGTERM shutdown of everything.
            (Mode::Command { .. }, StopCause::Signal(signal)) => {
                (process::first_child(init).unwrap_or(init), signal as i32)
            }
            // An init is asked to power off with its own halt signal.
            _ => (init, signal_number(self.plan.halt_signal)?),
        };
        // Only a namespace's init drops signals it does not take. Sent
        // anyway: the look into /proc cannot see every way of waiting for
        // a signal, and a dropped one costs nothing.
        let dropped = target == init && !receives(init, signal);
        process::send_signal(target, signal).ok()?;
        Some(if dropped {
            Asked::MaybeDropped(init, signal)
        } else {
            Asked::Sent
        })
    }

    /// The next, harder step of a stop.
    fn escalate(&mut self) {
        let Some(current) = self.stop.map(|stop| stop.step) else {
            return;
        };
        let step = match (current, self.container_init()) {
            (StopStep::Asked, Some(init)) => {
                let _ = kill(Pid::from_raw(init), Signal::SIGKILL);
                StopStep::InitKilled
            }
            (StopStep::MonitorKilled, _) => return,
            _ => {
                let _ = kill(self.monitor, Signal::SIGKILL);
                StopStep::MonitorKilled
            }
        };
        if let Some(stop) = self.stop.as_mut() {
            stop.step = step;
            stop.deadline = (step == StopStep::InitKilled).then(|| Instant::now() + KILL_GRACE);
        }
    }

    /// The container's init: the monitor's child in a PID namespace of its
    /// own (liblxc clones it there). None before it exists and after it is
    /// gone.
    fn container_init(&self) -> Option<i32> {
        let monitor = self.monitor.as_raw();
        let init = process::first_child(monitor)?;
        let ns = |pid: i32| fs::read_link(format!("/proc/{pid}/ns/pid")).ok();
        let (init_ns, monitor_ns) = (ns(init)?, ns(monitor)?);
        (init_ns != monitor_ns).then_some(init)
    }
}

/// Whether process `pid`, if it is the first of a PID namespace, would
/// receive `signal` from outside: only when it catches it (SigCgt) or blocks
/// it (SigBlk: queued until it reads it, as systemd does with a signalfd);
/// otherwise the kernel drops it (pid_namespaces(7)). A process waiting in
/// sigtimedwait(2) counts as receiving: the kernel unblocks the awaited
/// signals for the wait, so SigBlk does not show them (BusyBox init waits
/// so for its halt signals). An unreadable status counts as receiving.
fn receives(pid: i32, signal: i32) -> bool {
    let Ok(status) = fs::read_to_string(format!("/proc/{pid}/status")) else {
        return true;
    };
    let mask = |field: &str| {
        status
            .lines()
            .find_map(|line| line.strip_prefix(field))
            .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok())
    };
    let taken = match (mask("SigCgt:"), mask("SigBlk:")) {
        (Some(caught), Some(blocked)) => {
            (1..=64).contains(&signal) && (caught | blocked) & (1 << (signal - 1)) != 0
        }
        _ => true,
    };
    taken
        || fs::read_to_string(format!("/proc/{pid}/wchan"))
            .is_ok_and(|wchan| wchan.starts_with("do_sigtimedwait"))
}

/// A signal's number from its name as liblxc's `lxc.signal.halt` takes it:
/// `SIGPWR`, `SIGUSR2`, `SIGRTMIN+4`.
pub(crate) fn signal_number(name: &str) -> Option<i32> {
    if let Some(offset) = name.strip_prefix("SIGRTMIN+") {
        let number = libc::SIGRTMIN() + offset.parse::<i32>().ok()?;
        return (number <= libc::SIGRTMAX()).then_some(number);
    }
    name.parse::<Signal>().ok().map(|signal| signal as i32)
}

/// rootrun's stdout, fed from the console. It is written only when poll(2)
/// says it takes more, a page at a time, so the loop never blocks on a slow
/// or stalled reader: signals and the escape key are served meanwhile, and
/// the console waits (as a slow serial line would) while `OUTPUT_MAX` bytes
/// are queued. After a stop request the console is drained anyway and what
/// does not fit is dropped and counted.
struct Output {
    stdout: Stdout,
    /// Closed by the reader (EPIPE): keep draining the console, drop the bytes.
    open: bool,
    /// CR LF -> LF, when stdout is not a terminal.
    line_ends: Option<LineEnds>,
    queued: Vec<u8>,
    dropped: usize,
}

/// What `Output::take_from` does with console output that does not fit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Overflow {
    /// Leaves it in the console: the guest waits for the reader.
    Wait,
    /// Reads and drops it: a stop is under way.
    Drop,
    /// Keeps it all: the finite rest after the container is gone.
    Keep,
}

/// Console output queued for stdout before rootrun stops reading the console.
const OUTPUT_MAX: usize = 256 * 1024;
/// One write(2) after POLLOUT on a blocking stdout: at most PIPE_BUF, which
/// a pipe with room takes without blocking.
const WRITE_CHUNK: usize = 4096;

/// Where console output goes. A terminal or a pipe is opened again through
/// /proc/self/fd/1: a new open file description of the same terminal or pipe,
/// which can be made non-blocking without changing the one rootrun shares
/// with its caller (the shell's terminal must stay blocking). A regular file
/// never blocks for long, and a socket cannot be opened that way: those keep
/// fd 1, written a page at a time after POLLOUT.
enum Stdout {
    Own(OwnedFd),
    Shared(io::Stdout),
}

impl Stdout {
    fn open() -> Self {
        let stdout = io::stdout();
        if !reopens_as_itself(stdout.as_fd()) {
            return Stdout::Shared(stdout);
        }
        let flags = OFlag::O_WRONLY | OFlag::O_NONBLOCK | OFlag::O_NOCTTY | OFlag::O_CLOEXEC;
        match nix::fcntl::open("/proc/self/fd/1", flags, nix::sys::stat::Mode::empty()) {
            Ok(fd) => Stdout::Own(fd),
            Err(_) => Stdout::Shared(stdout),
        }
    }

    fn fd(&self) -> BorrowedFd<'_> {
        match self {
            Stdout::Own(fd) => fd.as_fd(),
            Stdout::Shared(stdout) => stdout.as_fd(),
        }
    }

    /// The most one write(2) may take without blocking.
    fn chunk(&self) -> usize {
        match self {
            Stdout::Own(_) => 64 * 1024,
            Stdout::Shared(_) => WRITE_CHUNK,
        }
    }
}
/// Writes per wake-up of the loop.
const WRITES_PER_WAKE: usize = 64;
/// Console reads after the monitor is gone (64 KiB each).
const FINAL_READS: usize = 64;
/// How long the final flush waits for a reader that takes nothing.
const FLUSH_STALL: Duration = Duration::from_secs(2);

impl Output {
    /// `console`: boot mode, where the console is copied to stdout.
    fn stdout(console: bool) -> Self {
        let line_ends = (!io::stdout().is_terminal()).then(LineEnds::default);
        Output {
            stdout: if console {
                Stdout::open()
            } else {
                Stdout::Shared(io::stdout())
            },
            open: true,
            line_ends,
            queued: Vec::new(),
            dropped: 0,
        }
    }

    fn fd(&self) -> BorrowedFd<'_> {
        self.stdout.fd()
    }

    fn has_room(&self) -> bool {
        self.queued.len() < OUTPUT_MAX
    }

    fn has_pending(&self) -> bool {
        self.open && !self.queued.is_empty()
    }

    /// Reads what the console has, at most `reads` buffers (so that a guest
    /// flooding its console cannot starve signals and the escape key);
    /// returns whether there was anything.
    fn take_from(
        &mut self,
        master: BorrowedFd<'_>,
        buf: &mut [u8],
        reads: usize,
        overflow: Overflow,
    ) -> bool {
        let mut any = false;
        for _ in 0..reads {
            if overflow == Overflow::Wait && !self.has_room() {
                break;
            }
            let Ok(n) = console::read_some(master, buf) else {
                break;
            };
            if n == 0 {
                break;
            }
            any = true;
            if !self.open {
                continue;
            }
            let before = self.queued.len();
            match self.line_ends.as_mut() {
                Some(filter) => filter.filter(&buf[..n], &mut self.queued),
                None => self.queued.extend_from_slice(&buf[..n]),
            }
            if overflow == Overflow::Drop && self.queued.len() > OUTPUT_MAX {
                let keep = before.max(OUTPUT_MAX);
                self.dropped += self.queued.len() - keep;
                self.queued.truncate(keep);
            }
        }
        any
    }

    /// Writes what stdout takes now, without blocking.
    fn flush_some(&mut self) {
        for _ in 0..WRITES_PER_WAKE {
            if !self.has_pending() || !self.writable(PollTimeout::ZERO) {
                return;
            }
            self.write_chunk();
        }
    }

    fn writable(&self, timeout: PollTimeout) -> bool {
        let mut fds = [PollFd::new(self.fd(), PollFlags::POLLOUT)];
        matches!(poll(&mut fds, timeout), Ok(n) if n > 0)
    }

    fn write_chunk(&mut self) {
        let end = self.queued.len().min(self.stdout.chunk());
        match nix::unistd::write(self.stdout.fd(), &self.queued[..end]) {
            Ok(n) => {
                self.queued.drain(..n);
            }
            Err(nix::errno::Errno::EINTR | nix::errno::Errno::EAGAIN) => {}
            // EPIPE and the like: the reader is gone for good.
            Err(_) => {
                self.open = false;
                self.queued.clear();
            }
        }
    }

    /// The container is gone: writes the rest, unless the reader takes
    /// nothing for `FLUSH_STALL` or rootrun is told to stop; says what was
    /// lost.
    fn finish(&mut self, signal_fd: &SignalFd) {
        if let (true, Some(filter)) = (self.open, self.line_ends.as_mut()) {
            filter.end(&mut self.queued);
        }
        while self.has_pending() {
            let mut fds = [
                PollFd::new(self.stdout.fd(), PollFlags::POLLOUT),
                PollFd::new(signal_fd.as_fd(), PollFlags::POLLIN),
            ];
            let timeout = PollTimeout::try_from(FLUSH_STALL).unwrap_or(PollTimeout::MAX);
            let ready = matches!(poll(&mut fds, timeout), Ok(n) if n > 0);
            let signalled = fds[1].revents().is_some_and(|r| !r.is_empty());
            if !ready || (signalled && told_to_stop(signal_fd)) {
                self.dropped += self.queued.len();
                self.queued.clear();
                break;
            }
            if fds[0].revents().is_some_and(|r| !r.is_empty()) {
                self.write_chunk();
            }
        }
        if self.dropped > 0 {
            // The terminal may still be raw: CR LF by hand.
            let eol = if io::stdin().is_terminal() {
                "\r\n"
            } else {
                "\n"
            };
            note(&format!(
                "rootrun: {} bytes of console output were dropped: stdout was not being read{eol}",
                self.dropped
            ));
        }
    }
}

/// Whether opening /proc/self/fd/N reaches the very pipe or terminal fd N
/// is: a FIFO, or a terminal other than a pty master (opening that path
/// makes a new pty) and other than /dev/tty (it means whatever terminal
/// controls the opener). Anything else (a file, /dev/null, a socket) keeps
/// fd N.
fn reopens_as_itself(fd: BorrowedFd<'_>) -> bool {
    let Ok(stat) = nix::sys::stat::fstat(fd) else {
        return false;
    };
    match stat.st_mode & libc::S_IFMT {
        libc::S_IFIFO => true,
        libc::S_IFCHR => {
            let dev_tty = libc::makedev(5, 0);
            nix::unistd::isatty(fd).unwrap_or(false)
                && stat.st_rdev != dev_tty
                && tty::pty_number(fd).is_none()
        }
        _ => false,
    }
}

/// Writes one of rootrun's own notes to stderr, unless stderr takes nothing
/// for half a second: it may be the very pipe whose reader stalled stdout.
/// A note is shorter than PIPE_BUF, so after POLLOUT a pipe takes it whole.
fn note(text: &str) {
    use std::io::Write;
    let stderr = io::stderr();
    let mut fds = [PollFd::new(stderr.as_fd(), PollFlags::POLLOUT)];
    if matches!(poll(&mut fds, PollTimeout::from(500u16)), Ok(n) if n > 0) {
        let _ = stderr.lock().write_all(text.as_bytes());
    }
}

/// Reads the pending signals; true if one asks rootrun to stop (a child's
/// SIGCHLD or a SIGWINCH does not).
fn told_to_stop(signal_fd: &SignalFd) -> bool {
    let mut stop = false;
    while let Ok(Some(info)) = signal_fd.read_signal() {
        stop |= !matches!(
            Signal::try_from(info.ssi_signo as i32),
            Ok(Signal::SIGCHLD | Signal::SIGWINCH)
        );
    }
    stop
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

/// Console reads per wake-up of the loop (64 KiB each).
const READS_PER_WAKE: usize = 8;
/// Input held for the console before rootrun stops reading stdin.
const PENDING_MAX: usize = 64 * 1024;

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
pub(crate) fn exit_code(
    plan: &LaunchPlan,
    outcome: Outcome,
    stop: Option<StopCause>,
    log: &Path,
) -> Result<u8, Error> {
    match (stop, outcome) {
        // Stopped on request, even before start() returned or by killing
        // the monitor: the request decides the code.
        (Some(StopCause::Signal(signal)), _) => Ok(128 + signal as u8),
        (Some(StopCause::Escape), _) => Ok(0),
        (None, Outcome::Exited(status)) => Ok(status_code(&plan.mode, status)),
        (None, Outcome::StartFailed | Outcome::Unknown) => Err(Error::Start {
            detail: lxc_log_errors(log),
        }),
    }
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
    fn caught_or_blocked_signals_are_read_from_proc_status() {
        // Rust's runtime ignores SIGPIPE and catches nothing by default;
        // nothing in this test process installs handlers for these. A
        // thread's SigBlk is its own: look at a thread that blocks SIGUSR1.
        let me = std::process::id() as i32;
        assert!(!receives(me, libc::SIGUSR2));
        assert!(!receives(me, libc::SIGPIPE), "ignored is not received");
        assert!(receives(-1, libc::SIGUSR2), "unreadable counts as received");
        let (tx, rx) = std::sync::mpsc::channel();
        let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
        let blocker = std::thread::spawn(move || {
            let mut set = nix::sys::signal::SigSet::empty();
            set.add(Signal::SIGUSR1);
            set.thread_block().unwrap();
            tx.send(nix::unistd::gettid().as_raw()).unwrap();
            let _ = done_rx.recv();
        });
        let tid = rx.recv().unwrap();
        assert!(receives(tid, libc::SIGUSR1));
        assert!(!receives(tid, libc::SIGUSR2));
        done_tx.send(()).unwrap();
        blocker.join().unwrap();
    }

    #[test]
    fn only_pipes_and_real_terminals_are_opened_again() {
        let (read_end, write_end) = nix::unistd::pipe().unwrap();
        assert!(reopens_as_itself(write_end.as_fd()));
        assert!(reopens_as_itself(read_end.as_fd()));
        let pty = nix::pty::openpty(None, None).unwrap();
        assert!(reopens_as_itself(pty.slave.as_fd()));
        assert!(!reopens_as_itself(pty.master.as_fd()), "a pty master");
        let null = fs::File::options().write(true).open("/dev/null").unwrap();
        assert!(!reopens_as_itself(null.as_fd()), "/dev/null");
        let file = fs::File::open("/proc/self/status").unwrap();
        assert!(!reopens_as_itself(file.as_fd()), "a regular file");
    }

    #[test]
    fn halt_signal_names_map_to_numbers() {
        assert_eq!(signal_number("SIGPWR"), Some(libc::SIGPWR));
        assert_eq!(signal_number("SIGUSR2"), Some(libc::SIGUSR2));
        assert_eq!(signal_number("SIGRTMIN+4"), Some(libc::SIGRTMIN() + 4));
        assert_eq!(signal_number("SIGRTMIN+6"), Some(libc::SIGRTMIN() + 6));
        assert_eq!(signal_number("SIGRTMIN+99"), None);
        assert_eq!(signal_number("SIGNOPE"), None);
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
