//! The queue from the container console to rootrun's stdout.

use std::io::{self, IsTerminal};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::time::Duration;

use nix::fcntl::OFlag;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::Signal;
use nix::sys::signalfd::SignalFd;

use super::note;
use super::queries::Queries;
use crate::console::{self, LineEnds};
use crate::sys::tty;

/// Console output queued for stdout before rootrun stops reading the console.
const OUTPUT_MAX: usize = 256 * 1024;
/// One write(2) after POLLOUT on a blocking stdout: at most PIPE_BUF, which
/// a pipe with room takes without blocking.
const WRITE_CHUNK: usize = 4096;
/// Writes per wake-up of the loop.
const WRITES_PER_WAKE: usize = 64;
/// How long the final flush waits for a reader that takes nothing.
const FLUSH_STALL: Duration = Duration::from_secs(2);

/// rootrun's stdout, fed from the console. It is written only when poll(2)
/// says it takes more, a page at a time, so the loop never blocks on a slow
/// or stalled reader: signals and the escape key are served meanwhile, and
/// the console waits (as a slow serial line would) while `OUTPUT_MAX` bytes
/// are queued. After a stop request the console is drained anyway and what
/// does not fit is dropped and counted.
pub(super) struct Output {
    stdout: Stdout,
    /// Closed by the reader (EPIPE): keep draining the console, drop the bytes.
    open: bool,
    filters: Filters,
    /// The terminal is raw: rootrun's own notes end in CR LF.
    raw: bool,
    queued: Vec<u8>,
    dropped: usize,
    /// Boot checks see every byte the console printed.
    pub(super) watch: Option<super::watch::Watch>,
}

/// What `Output::take_from` does with console output that does not fit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Overflow {
    /// Leaves it in the console: the guest waits for the reader.
    Wait,
    /// Reads and drops it: a stop is under way.
    Drop,
    /// Keeps it all: the finite rest after the container is gone.
    Keep,
}

/// What console output goes through on its way to stdout.
struct Filters {
    /// Terminal queries out, when nobody can answer them (see `queries`).
    queries: Option<Queries>,
    /// CR LF -> LF, when stdout is not a terminal.
    line_ends: Option<LineEnds>,
    /// Between the two.
    between: Vec<u8>,
}

impl Filters {
    fn apply(&mut self, input: &[u8], out: &mut Vec<u8>) {
        let input = match self.queries.as_mut() {
            Some(queries) => {
                self.between.clear();
                queries.filter(input, &mut self.between);
                &self.between[..]
            }
            None => input,
        };
        match self.line_ends.as_mut() {
            Some(line_ends) => line_ends.filter(input, out),
            None => out.extend_from_slice(input),
        }
    }

    /// What the filters hold at the very end of the output.
    fn end(&mut self, out: &mut Vec<u8>) {
        if let Some(queries) = self.queries.as_mut() {
            let mut held = Vec::new();
            queries.end(&mut held);
            match self.line_ends.as_mut() {
                Some(line_ends) => line_ends.filter(&held, out),
                None => out.extend_from_slice(&held),
            }
        }
        if let Some(line_ends) = self.line_ends.as_mut() {
            line_ends.end(out);
        }
    }
}

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

impl Output {
    /// `interactive`: the console is on rootrun's terminal, raw, and the
    /// terminal's answers to queries come back through stdin.
    pub(super) fn stdout(interactive: bool) -> Self {
        let line_ends = (!io::stdout().is_terminal()).then(LineEnds::default);
        Output {
            stdout: Stdout::open(),
            open: true,
            filters: Filters {
                queries: (!interactive).then(Queries::default),
                line_ends,
                between: Vec::new(),
            },
            raw: interactive,
            queued: Vec::new(),
            dropped: 0,
            watch: None,
        }
    }

    pub(super) fn fd(&self) -> BorrowedFd<'_> {
        self.stdout.fd()
    }

    pub(super) fn has_room(&self) -> bool {
        self.queued.len() < OUTPUT_MAX
    }

    pub(super) fn has_pending(&self) -> bool {
        self.open && !self.queued.is_empty()
    }

    /// Reads what the console has, at most `reads` buffers (so that a guest
    /// flooding its console cannot starve signals and the escape key);
    /// returns whether there was anything.
    pub(super) fn take_from(
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
            if let Some(watch) = self.watch.as_mut() {
                watch.feed(&buf[..n]);
            }
            if !self.open {
                continue;
            }
            let before = self.queued.len();
            self.filters.apply(&buf[..n], &mut self.queued);
            if overflow == Overflow::Drop && self.queued.len() > OUTPUT_MAX {
                let keep = before.max(OUTPUT_MAX);
                self.dropped += self.queued.len() - keep;
                self.queued.truncate(keep);
            }
        }
        any
    }

    /// Writes what stdout takes now, without blocking.
    pub(super) fn flush_some(&mut self) {
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
    pub(super) fn finish(&mut self, signal_fd: &SignalFd) {
        if self.open {
            self.filters.end(&mut self.queued);
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
            let eol = if self.raw { "\r\n" } else { "\n" };
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

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

    /// The output of filters with or without queries and line ends for
    /// `reads`, to its very end.
    fn filtered(queries: bool, line_ends: bool, reads: &[&[u8]]) -> Vec<u8> {
        let mut filters = Filters {
            queries: queries.then(Queries::default),
            line_ends: line_ends.then(LineEnds::default),
            between: Vec::new(),
        };
        let mut out = Vec::new();
        for read in reads {
            filters.apply(read, &mut out);
        }
        filters.end(&mut out);
        out
    }

    #[test]
    fn queries_and_line_ends_are_filtered_together_across_reads() {
        let reads: [&[u8]; 3] = [b"/ # \x1b[", b"6nhi\r", b"\r\n\x1b[6"];
        // A cut-short sequence comes out at the end.
        assert_eq!(filtered(true, true, &reads), b"/ # hi\n\x1b[6");
        assert_eq!(filtered(true, false, &reads), b"/ # hi\r\r\n\x1b[6");
        assert_eq!(filtered(false, true, &reads), b"/ # \x1b[6nhi\n\x1b[6");
        assert_eq!(filtered(false, false, &reads), reads.concat());
    }
}
