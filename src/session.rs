//! The running container, seen from rootrun: the console proxy loop, stop
//! requests (escape key, signals) and how the container's end maps to
//! rootrun's exit code.

use std::fs;
use std::io::{self, IsTerminal};
use std::os::fd::{AsFd, BorrowedFd};
use std::path::Path;
use std::time::Instant;

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{kill, Signal};
use nix::sys::signalfd::SignalFd;
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

use crate::console::{self, ConsolePty, EscapeScanner, LineEnds, RawMode};
use crate::error::Error;
use crate::lxc::{Container, LxcError};
use crate::plan::{LaunchPlan, Mode};
use crate::sys::process::{self, Outcome};
use crate::sys::SysError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StopCause {
    Escape,
    Signal(Signal),
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct StopRequest {
    pub(crate) cause: StopCause,
    deadline: Instant,
    forced: bool,
}

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
        let _raw = match (self.console, is_tty) {
            (Some(_), true) => RawMode::enter(stdin.as_fd()),
            _ => None,
        };
        let mut escape = is_tty.then(|| EscapeScanner::new(self.plan.escape));
        let mut output = Output::stdout();
        let mut gate = InputGate::new(is_tty);
        let mut stdin_open = self.console.is_some();
        let mut buf = vec![0u8; 64 * 1024];
        // Input for the console not written yet: the guest may not be
        // reading, and rootrun must never block on it.
        let mut pending: Vec<u8> = Vec::new();

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
            let read_stdin = stdin_open && gate.is_open(now) && pending.len() < PENDING_MAX;
            let mut fds = vec![PollFd::new(signal_fd.as_fd(), PollFlags::POLLIN)];
            if let Some(pty) = self.console {
                let mut master = PollFlags::POLLIN;
                if !pending.is_empty() {
                    master |= PollFlags::POLLOUT;
                }
                fds.push(PollFd::new(pty.master.as_fd(), master));
                if read_stdin {
                    fds.push(PollFd::new(stdin.as_fd(), PollFlags::POLLIN));
                }
            }
            match poll(&mut fds, timeout) {
                Ok(_) | Err(nix::errno::Errno::EINTR) => {}
                Err(e) => return Err(SysError::new("poll", "console", e).into()),
            }
            let revents: Vec<PollFlags> = fds
                .iter()
                .map(|fd| fd.revents().unwrap_or(PollFlags::empty()))
                .collect();
            drop(fds);

            if !revents[0].is_empty() && self.handle_signals(signal_fd)? {
                break;
            }
            let Some(pty) = self.console else { continue };
            let master = revents.get(1).copied().unwrap_or(PollFlags::empty());
            if master.intersects(PollFlags::POLLIN)
                && output.copy_from(pty.master.as_fd(), &mut buf, READS_PER_WAKE)
            {
                gate.saw_output(Instant::now());
            }
            if master.contains(PollFlags::POLLOUT) {
                let written = console::write_some(pty.master.as_fd(), &pending);
                pending.drain(..written);
            }
            if revents.get(2).is_some_and(|r| !r.is_empty()) {
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
                            self.request_stop(StopCause::Escape);
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
            // The container is gone: what is left in the pty is finite.
            output.copy_from(pty.master.as_fd(), &mut buf, usize::MAX);
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
        if cause == StopCause::Escape {
            // The terminal is raw: CR LF by hand.
            eprint!(
                "\r\nrootrun: stopping the container (halt signal {})\r\n",
                self.plan.halt_signal
            );
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

    /// Copies what the console has, at most `reads` buffers (so that a
    /// guest flooding its console cannot starve signals and the escape key);
    /// returns whether there was anything.
    fn copy_from(&mut self, master: BorrowedFd<'_>, buf: &mut [u8], reads: usize) -> bool {
        let mut any = false;
        for _ in 0..reads {
            let Ok(n) = console::read_some(master, buf) else {
                break;
            };
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
