//! The console's side of the event loop (boot mode): stdin to the console
//! through the input gate and the escape key, the console to stdout through
//! the output queue. Nothing here blocks: the loop polls, this reads and
//! writes what is ready.

use std::os::fd::{AsFd, BorrowedFd};
use std::time::Instant;

use nix::poll::{PollFd, PollFlags};
use nix::sys::signalfd::SignalFd;

use super::gate::InputGate;
use super::output::{Output, Overflow};
use crate::console::{self, ConsolePty, EscapeScanner};

/// Console reads per wake-up of the loop (64 KiB each).
const READS_PER_WAKE: usize = 8;
/// Console reads after the monitor is gone (64 KiB each).
const FINAL_READS: usize = 64;
/// Input held for the console before rootrun stops reading stdin.
const PENDING_MAX: usize = 64 * 1024;

pub(super) struct Proxy<'a> {
    pty: &'a ConsolePty,
    stdin: BorrowedFd<'a>,
    /// Ctrl-<key> q, at an interactive terminal only.
    escape: Option<EscapeScanner>,
    output: Output,
    gate: InputGate,
    stdin_open: bool,
    buf: Vec<u8>,
    /// Input for the console not written yet: the guest may not be
    /// reading, and rootrun must never block on it.
    pending: Vec<u8>,
    /// When stdin ended, and when the console last printed something
    /// (`--stop-on-eof` waits for the guest to finish the input).
    stdin_ended: Option<Instant>,
    last_output: Option<Instant>,
}

/// How long the console must be quiet after the last piped input went in
/// before `--stop-on-eof` stops the container.
const QUIET_AFTER_INPUT: std::time::Duration = std::time::Duration::from_secs(1);

/// Where the proxy's fds are in one poll(2) array.
pub(super) struct Slots {
    master: Option<usize>,
    stdin: Option<usize>,
    stdout: Option<usize>,
}

/// What poll(2) said about the proxy's fds.
pub(super) struct Ready {
    master: PollFlags,
    input: PollFlags,
    writable: PollFlags,
}

impl Slots {
    pub(super) fn ready(&self, fds: &[PollFd<'_>]) -> Ready {
        let revents = |at: Option<usize>| {
            at.and_then(|i| fds.get(i)?.revents())
                .unwrap_or(PollFlags::empty())
        };
        Ready {
            master: revents(self.master),
            input: revents(self.stdin),
            writable: revents(self.stdout),
        }
    }
}

impl<'a> Proxy<'a> {
    /// `interactive`: stdin is a terminal rootrun has made raw, where a
    /// person types.
    pub(super) fn new(
        pty: &'a ConsolePty,
        stdin: BorrowedFd<'a>,
        interactive: bool,
        escape_key: u8,
    ) -> Self {
        Proxy {
            pty,
            stdin,
            escape: interactive.then(|| EscapeScanner::new(escape_key)),
            output: Output::stdout(interactive),
            gate: InputGate::new(interactive),
            stdin_open: true,
            buf: vec![0u8; 64 * 1024],
            pending: Vec::new(),
            stdin_ended: None,
            last_output: None,
        }
    }

    /// When the loop must wake up for the proxy even if no fd is ready.
    /// Boot checks on the console output.
    pub(super) fn watch(&mut self, watch: super::watch::Watch) {
        self.output.watch = Some(watch);
    }

    pub(super) fn watched(&mut self) -> Option<&mut super::watch::Watch> {
        self.output.watch.as_mut()
    }

    /// When the piped input has all gone in and the guest has been quiet
    /// since (`--stop-on-eof`); None while input is still coming.
    pub(super) fn input_done_at(&self) -> Option<Instant> {
        let ended = self.stdin_ended?;
        if !self.pending.is_empty() {
            return None;
        }
        let last = self.last_output.map_or(ended, |out| out.max(ended));
        Some(last + QUIET_AFTER_INPUT)
    }

    pub(super) fn wake_at(&self) -> Option<Instant> {
        self.gate.opens_at()
    }

    /// Adds the fds the proxy waits for to `fds`. Once a stop is under way
    /// the console is drained whatever stdout does: liblxc's monitor blocks
    /// on a full console and would not see init end.
    pub(super) fn add_fds<'s>(
        &'s mut self,
        fds: &mut Vec<PollFd<'s>>,
        now: Instant,
        stopping: bool,
    ) -> Slots {
        let read_console = self.output.has_room() || stopping;
        let read_stdin =
            self.stdin_open && self.gate.is_open(now) && self.pending.len() < PENDING_MAX;
        let this: &'s Proxy<'a> = self;
        let mut slot = |fd: BorrowedFd<'s>, events: PollFlags| {
            fds.push(PollFd::new(fd, events));
            Some(fds.len() - 1)
        };
        let mut master_events = PollFlags::empty();
        if read_console {
            master_events |= PollFlags::POLLIN;
        }
        if !this.pending.is_empty() {
            master_events |= PollFlags::POLLOUT;
        }
        let master = if master_events.is_empty() {
            None
        } else {
            slot(this.pty.master.as_fd(), master_events)
        };
        let stdin = if read_stdin {
            slot(this.stdin, PollFlags::POLLIN)
        } else {
            None
        };
        let stdout = if this.output.has_pending() {
            slot(this.output.fd(), PollFlags::POLLOUT)
        } else {
            None
        };
        Slots {
            master,
            stdin,
            stdout,
        }
    }

    /// Moves what is ready; returns true when the escape key was typed.
    pub(super) fn serve(&mut self, ready: Ready, stopping: bool) -> bool {
        if !ready.writable.is_empty() {
            self.output.flush_some();
        }
        let overflow = if stopping {
            Overflow::Drop
        } else {
            Overflow::Wait
        };
        let master = self.pty.master.as_fd();
        if ready.master.intersects(PollFlags::POLLIN)
            && self
                .output
                .take_from(master, &mut self.buf, READS_PER_WAKE, overflow)
        {
            let now = Instant::now();
            self.gate.saw_output(now);
            self.last_output = Some(now);
        }
        if ready.master.contains(PollFlags::POLLOUT) {
            let written = console::write_some(master, &self.pending);
            self.pending.drain(..written);
        }
        if ready.input.is_empty() {
            return false;
        }
        let quit = self.read_stdin();
        if quit {
            // What the console printed before goes first.
            self.output.flush_some();
        }
        quit
    }

    /// Reads stdin into `pending`; true when the escape key was typed.
    fn read_stdin(&mut self) -> bool {
        match console::read_some(self.stdin, &mut self.buf) {
            // EIO too: a background job's read of its terminal (SIGTTIN is
            // blocked, see console::block_job_control).
            Ok(0) | Err(_) => {
                self.stdin_open = false;
                self.stdin_ended = Some(Instant::now());
                false
            }
            Ok(n) => match self.escape.as_mut() {
                Some(scanner) => scanner.feed(&self.buf[..n], &mut self.pending),
                None => {
                    self.pending.extend_from_slice(&self.buf[..n]);
                    false
                }
            },
        }
    }

    /// The container is gone: what is left in the pty is a buffer's worth
    /// (bounded anyway, should a writer outlive the monitor), then stdout
    /// gets the rest.
    pub(super) fn finish(mut self, signal_fd: &SignalFd) {
        let master = self.pty.master.as_fd();
        self.output
            .take_from(master, &mut self.buf, FINAL_READS, Overflow::Keep);
        self.output.finish(signal_fd);
    }
}
