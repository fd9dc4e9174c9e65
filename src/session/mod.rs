//! The running container, seen from rootrun: the event loop that serves
//! signals, stop requests and (in boot mode) the console until the monitor
//! exits.
//!
//! Beside it, one job each: `stop` decides how a stop goes (pure: time,
//! /proc and kill(2) are passed in), `proxy` copies between stdin, stdout
//! and the console through `gate` (when piped input may go in), `output`
//! (the queue to stdout) and `queries` (terminal queries nobody answers),
//! and `exit` maps the container's end to rootrun's exit code.

mod control;
mod exit;
mod gate;
mod initctl;
mod output;
mod proxy;
mod queries;
mod stop;
mod watch;

use std::io::{self, IsTerminal};
use std::os::fd::AsFd;
use std::time::Instant;

use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{kill, Signal};
use nix::sys::signalfd::SignalFd;
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

use crate::console::{self, ConsolePty, RawMode, SavedMode};
use crate::error::Error;
use crate::image::{HaltMethod, INITCTL};
use crate::plan::{LaunchPlan, Mode};
use crate::sys::{proc, process, rootfs, SysError};

pub(crate) use control::Control;
use control::Event;
pub(crate) use exit::{death_hint, exit_code};
use proxy::Proxy;
pub(crate) use stop::StopCause;
use stop::{Halt, Processes, Signals, Stop};

/// The running container, seen from rootrun.
pub(crate) struct Session<'a> {
    plan: &'a LaunchPlan,
    monitor: Pid,
    console: Option<&'a ConsolePty>,
    stop: Stop,
    /// Boot checks on the console, ready before the container started.
    watch: Option<BootCheck>,
    /// The named container's control socket (and, detached, its console).
    control: Option<Control<'a>>,
}

pub(crate) use watch::Watch as BootCheck;

/// The console watch of `--expect` and `--console-log`, made before the
/// container starts so that nothing about it can fail once it runs:
/// `log` is the console log file a launch step opened.
pub(crate) fn boot_check(
    plan: &LaunchPlan,
    log: Option<std::fs::File>,
) -> Result<BootCheck, Error> {
    let expect = plan
        .expect
        .as_deref()
        .map(regex::bytes::Regex::new)
        .transpose()
        .map_err(|e| Error::Usage(format!("--expect: {e}")))?;
    Ok(watch::Watch::new(expect, log))
}

/// The host: /proc for the stop machine's looks, kill(2) for its steps.
struct Host;

impl Processes for Host {
    fn container_init(&self, monitor: i32) -> Option<i32> {
        proc::container_init(monitor)
    }

    fn first_child(&self, pid: i32) -> Option<i32> {
        proc::first_child(pid)
    }

    fn receives(&self, pid: i32, signal: i32) -> bool {
        proc::receives(pid, signal)
    }
}

impl Signals for Host {
    fn send(&mut self, pid: i32, signal: i32) -> Result<(), Errno> {
        process::send_signal(pid, signal)
    }

    fn request(&mut self, init: i32, path: &str, request: &[u8]) -> Result<(), String> {
        rootfs::write_fifo_in_root(init, std::path::Path::new(path), request)
    }
}

/// How the stop machine asks this plan's init to halt.
fn halt(plan: &LaunchPlan) -> Halt {
    match plan.halt {
        HaltMethod::Signal(signal) => Halt::Signal(signal),
        HaltMethod::Runlevel0 => Halt::Request {
            path: INITCTL,
            request: initctl::runlevel_request(b'0', plan.guest_big_endian).to_vec(),
        },
    }
}

impl<'a> Session<'a> {
    /// `console`: boot mode's pty, copied to and from rootrun's stdio.
    pub(crate) fn new(
        plan: &'a LaunchPlan,
        monitor: Pid,
        console: Option<&'a ConsolePty>,
        watch: Option<BootCheck>,
        control: Option<Control<'a>>,
    ) -> Self {
        let command = matches!(plan.mode, Mode::Command { .. });
        Session {
            plan,
            monitor,
            console,
            stop: Stop::new(monitor.as_raw(), command, halt(plan), plan.stop_timeout),
            watch,
            control,
        }
    }

    /// The container is gone and rootrun's exit code known: the clients
    /// that asked for the stop get it.
    pub(crate) fn finish_control(&mut self, code: u8) {
        if let Some(control) = self.control.as_mut() {
            control.finish(code);
        }
    }

    /// What the first stop request was for, if there was one.
    pub(crate) fn stop_cause(&self) -> Option<StopCause> {
        self.stop.cause()
    }

    /// Runs until the monitor has exited.
    pub(crate) fn run(&mut self, signal_fd: &SignalFd) -> Result<(), Error> {
        // Declared first, dropped last: the terminal's mode is restored
        // with SIGTTOU still blocked.
        let _job_control = console::block_job_control();
        let stdin = io::stdin();
        let terminal = stdin.is_terminal();
        let interactive = console::interactive(stdin.as_fd());
        // Detached, the console is the control's, not stdin's and stdout's.
        let detached = self.control.as_ref().is_some_and(Control::is_detached);
        let console = self.console.filter(|_| !detached);
        if console.is_some() && terminal && !interactive {
            note(&background_note(self.plan.escape));
        }
        // Boot mode: raw while attached. Command mode: the command shares
        // the terminal and may leave it raw when it is killed.
        let _raw = (console.is_some() && interactive)
            .then(|| RawMode::enter(stdin.as_fd()))
            .flatten();
        let _saved = (self.console.is_none() && terminal)
            .then(|| SavedMode::save(stdin.as_fd()))
            .flatten();
        let mut proxy =
            console.map(|pty| Proxy::new(pty, stdin.as_fd(), interactive, self.plan.escape));
        if let (Some(proxy), Some(watch)) = (proxy.as_mut(), self.watch.take()) {
            proxy.watch(watch);
        }
        let deadline = self.plan.timeout.map(|limit| Instant::now() + limit);

        loop {
            let now = Instant::now();
            let wake_at = [
                self.stop.wake_at(),
                proxy.as_ref().and_then(Proxy::wake_at),
                deadline.filter(|_| !self.stop.requested()),
                self.input_done_at(proxy.as_ref()),
                self.control.as_ref().and_then(|c| c.wake_at(now)),
            ]
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
            let stopping = self.stop.requested();
            let mut fds = vec![PollFd::new(signal_fd.as_fd(), PollFlags::POLLIN)];
            let slots = proxy
                .as_mut()
                .map(|proxy| proxy.add_fds(&mut fds, now, stopping));
            let control_slots = self.control.as_ref().map(|c| c.add_fds(&mut fds));
            match poll(&mut fds, timeout) {
                Ok(_) | Err(Errno::EINTR) => {}
                Err(e) => return Err(SysError::new("poll", "console", e).into()),
            }
            let signalled = fds[0].revents().is_some_and(|r| !r.is_empty());
            let ready = slots.map(|slots| slots.ready(&fds));
            let control_ready = control_slots.map(|slots| slots.ready(&fds));
            drop(fds);
            self.serve_control(control_ready.as_deref());

            if signalled && self.handle_signals(signal_fd) {
                break;
            }
            self.stop.tick(Instant::now(), &Host, &mut Host);
            if let (Some(proxy), Some(ready)) = (proxy.as_mut(), ready) {
                if proxy.serve(ready, self.stop.requested()) {
                    self.request_stop(StopCause::Escape);
                }
                if proxy.watched().is_some_and(|w| w.take_match()) {
                    self.request_stop(StopCause::Expected);
                }
            }
            if deadline.is_some_and(|at| Instant::now() >= at) && !self.stop.requested() {
                self.request_stop(StopCause::TimedOut);
            }
            if self
                .input_done_at(proxy.as_ref())
                .is_some_and(|at| Instant::now() >= at)
            {
                self.request_stop(StopCause::EndOfInput);
            }
        }
        if let Some(mut proxy) = proxy {
            let failed = match (self.plan.expect.is_some(), proxy.watched()) {
                (true, Some(watch)) if !watch.matched() => Some(watch.last_lines()),
                _ if self.stop.cause() == Some(StopCause::TimedOut) => {
                    proxy.watched().map(|w| w.last_lines())
                }
                _ => None,
            };
            proxy.finish(signal_fd);
            if let Some(lines) = failed {
                // Guest text: control characters escaped (notice::printable).
                let lines: Vec<String> = lines.lines().map(crate::notice::printable).collect();
                let report = boot_check_report(self.plan, self.stop.cause(), &lines.join("\n"));
                // The terminal may still be raw.
                let eol = if interactive { "\r\n" } else { "\n" };
                note(&report.replace('\n', eol));
            }
        }
        Ok(())
    }

    /// Control clients' requests, and the look for init while it starts.
    fn serve_control(&mut self, ready: Option<&[nix::poll::PollFlags]>) {
        let monitor = self.monitor.as_raw();
        let Some(control) = self.control.as_mut() else {
            return;
        };
        control.look_for_init(|| proc::container_init(monitor));
        let events = control.serve(ready.unwrap_or(&[]), Instant::now());
        for event in events {
            match event {
                Event::Stop(timeout) => {
                    if let Some(timeout) = timeout {
                        self.stop.set_timeout(timeout);
                    }
                    self.request_stop(StopCause::Request { kill: false });
                }
                Event::Kill => {
                    // Straight to SIGKILL: the first request asks, the
                    // second kills.
                    self.request_stop(StopCause::Request { kill: true });
                    self.request_stop(StopCause::Request { kill: true });
                }
                Event::Resized => {
                    let _ = kill(self.monitor, Signal::SIGWINCH);
                }
            }
        }
    }

    /// `--stop-on-eof`: when the end of the piped input asks for a stop.
    fn input_done_at(&self, proxy: Option<&Proxy<'_>>) -> Option<Instant> {
        if !self.plan.stop_on_eof || self.stop.requested() {
            return None;
        }
        proxy?.input_done_at()
    }

    /// Returns true when the monitor (and so the container) has exited.
    fn handle_signals(&mut self, signal_fd: &SignalFd) -> bool {
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
        monitor_done
    }

    fn reap_monitor(&self) -> bool {
        matches!(
            waitpid(self.monitor, Some(WaitPidFlag::WNOHANG)),
            Ok(WaitStatus::Exited(..)) | Ok(WaitStatus::Signaled(..)) | Err(_)
        )
    }

    fn request_stop(&mut self, cause: StopCause) {
        if cause == StopCause::Escape && !self.stop.requested() {
            // The terminal is raw: CR LF by hand.
            note(&format!(
                "\r\nrootrun: stopping the container (halt {})\r\n",
                self.plan.describe_halt()
            ));
        }
        if let Some(control) = self.control.as_mut() {
            control.mark_stopping();
        }
        self.stop.request(cause, Instant::now(), &Host, &mut Host);
        if let Some(text) = self.stop.take_note() {
            // CR LF: the terminal may be raw.
            note(&format!("\r\nrootrun: {text}\r\n"));
        }
    }
}

/// What a failed boot check says on stderr, with the console's last lines.
fn boot_check_report(plan: &LaunchPlan, cause: Option<StopCause>, lines: &str) -> String {
    let what = match (cause, &plan.expect) {
        (Some(StopCause::TimedOut), Some(pattern)) => format!(
            "{pattern:?} did not appear on the console within {} s",
            plan.timeout.map_or(0, |t| t.as_secs())
        ),
        (Some(StopCause::TimedOut), None) => format!(
            "the boot was stopped after {} s (--timeout)",
            plan.timeout.map_or(0, |t| t.as_secs())
        ),
        (_, Some(pattern)) => format!("the container ended before {pattern:?} appeared"),
        (_, None) => "the container ended".to_owned(),
    };
    format!("rootrun: {what}; the console's last lines:\n{lines}\n")
}

/// Why the console is not interactive although stdin is a terminal, and
/// how to get it.
fn background_note(escape: u8) -> String {
    let key = char::from(escape.wrapping_add(b'a' - 1));
    format!(
        "rootrun: the console is not interactive: rootrun is not in its terminal's foreground \
         (started with & or by timeout(1)?), so no raw mode and no Ctrl-{key} q; stop it with a \
         signal, or run it in the foreground (timeout --foreground) for the interactive console\n"
    )
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
