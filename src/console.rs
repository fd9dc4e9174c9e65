//! The container console on rootrun's terminal or pipes.
//!
//! In boot mode liblxc proxies the container's /dev/console to a pty that
//! rootrun allocates (`lxc.console.path` = its slave); rootrun copies bytes
//! between that pty's master and its own stdin/stdout. On a terminal, stdin is
//! put in raw mode (restored on drop) and an escape sequence, Ctrl-<key> then
//! `q` (as `lxc console` uses Ctrl-a q), asks the container to stop.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::PathBuf;

use nix::fcntl::{fcntl, FcntlArg, FdFlag, OFlag};
use nix::pty::{openpty, Winsize};
use nix::sys::signal::{SigSet, SigmaskHow, Signal};
use nix::sys::termios::{self, SetArg, Termios};

use crate::sys::{tty, SysError};

pub use crate::sys::tty::window_size;

/// A terminal's mode, restored on drop: whatever a guest program that
/// shares rootrun's terminal (command mode) did to it.
pub struct SavedMode<'a> {
    fd: BorrowedFd<'a>,
    saved: Termios,
}

impl<'a> SavedMode<'a> {
    /// `None` when `fd` is not a terminal.
    pub fn save(fd: BorrowedFd<'a>) -> Option<Self> {
        let saved = termios::tcgetattr(fd).ok()?;
        Some(SavedMode { fd, saved })
    }
}

impl Drop for SavedMode<'_> {
    fn drop(&mut self) {
        if termios::tcgetattr(self.fd).is_ok_and(|now| same_mode(&now, &self.saved)) {
            return;
        }
        // A background job leaves the terminal alone: its mode now is the
        // foreground program's (a shell's line editor, an editor), and
        // tcsetattr would stop rootrun with SIGTTOU.
        if background(self.fd) {
            return;
        }
        // SIGTTOU blocked still, for a job sent to the background just now
        // (termios(3)). TCSANOW: a frozen terminal must not hold rootrun's
        // exit (output was processed when it was written).
        let mut ttou = SigSet::empty();
        ttou.add(Signal::SIGTTOU);
        let before = ttou.thread_swap_mask(SigmaskHow::SIG_BLOCK);
        let _ = termios::tcsetattr(self.fd, SetArg::TCSANOW, &self.saved);
        if let Ok(mask) = before {
            let _ = mask.thread_set_mask();
        }
    }
}

/// Whether rootrun is a background job of terminal `fd`: another process
/// group is the terminal's foreground. tcgetpgrp fails for a terminal that
/// is not the controlling one: no job control there, nothing is background.
fn background(fd: BorrowedFd<'_>) -> bool {
    nix::unistd::tcgetpgrp(fd).is_ok_and(|group| group != nix::unistd::getpgrp())
}

/// Whether the console is interactive on `stdin`: a terminal that rootrun
/// may make raw and read, where the escape key (Ctrl-<key> q) works. Not
/// when rootrun is a background job of that terminal (`rootrun IMG &`, or
/// `timeout 60 rootrun IMG`: timeout(1) runs its command in a process group
/// of its own): raw mode would stop it with SIGTTOU (termios(3)), and what
/// is typed there is for the foreground program. The console then works as
/// with piped input.
pub fn interactive(stdin: BorrowedFd<'_>) -> bool {
    nix::unistd::isatty(stdin).unwrap_or(false) && !background(stdin)
}

/// SIGTTIN and SIGTTOU blocked, until dropped (see `block_job_control`).
pub struct JobControlBlocked {
    before: Option<SigSet>,
}

/// Blocks SIGTTIN and SIGTTOU until the guard is dropped (which restores the
/// signal mask): the terminal's job control must never stop rootrun, which
/// then could not serve a stop request (its stop signals are blocked too,
/// read from a signalfd). Blocked, they are not even sent: a background
/// job's read of the terminal fails with EIO, and its writes and mode
/// changes go through (termios(3), "Job control"; the kernel's
/// tty_check_change). Only in the process that runs the console loop: a
/// blocked signal is inherited through fork and exec (by the monitor, and
/// from it the container).
pub fn block_job_control() -> JobControlBlocked {
    let mut set = SigSet::empty();
    set.add(Signal::SIGTTIN);
    set.add(Signal::SIGTTOU);
    JobControlBlocked {
        before: set.thread_swap_mask(SigmaskHow::SIG_BLOCK).ok(),
    }
}

impl Drop for JobControlBlocked {
    fn drop(&mut self) {
        if let Some(mask) = self.before {
            let _ = mask.thread_set_mask();
        }
    }
}

fn same_mode(a: &Termios, b: &Termios) -> bool {
    a.input_flags == b.input_flags
        && a.output_flags == b.output_flags
        && a.control_flags == b.control_flags
        && a.local_flags == b.local_flags
        && a.control_chars == b.control_chars
}

/// Puts a terminal in raw mode; restores the saved mode on drop.
pub struct RawMode<'a> {
    _saved: SavedMode<'a>,
}

impl<'a> RawMode<'a> {
    /// `None` when `fd` is not a terminal.
    pub fn enter(fd: BorrowedFd<'a>) -> Option<Self> {
        let saved = SavedMode::save(fd)?;
        let mut raw = saved.saved.clone();
        termios::cfmakeraw(&mut raw);
        termios::tcsetattr(fd, SetArg::TCSADRAIN, &raw).ok()?;
        Some(RawMode { _saved: saved })
    }
}

/// The pty whose slave liblxc attaches to the container console.
pub struct ConsolePty {
    pub master: OwnedFd,
    /// Kept open so that reads on the master never see EIO (no slave open)
    /// before liblxc opens the slave or after it closes it.
    _slave: OwnedFd,
    pub slave_path: PathBuf,
}

impl ConsolePty {
    /// `--unprivileged`: the slave belongs to the container's root (host
    /// `uid`, `gid`), or a getty inside could not open the terminal it is
    /// bound on (`/dev/tty1`): a pty slave is its opener's, 0620, and guest
    /// root holds no capability over host root's files.
    pub fn give_to(&self, uid: u32, gid: u32) -> Result<(), SysError> {
        std::os::unix::fs::chown(&self.slave_path, Some(uid), Some(gid))
            .map_err(|e| SysError::io("chown", &self.slave_path, e))
    }

    pub fn open(size: Option<Winsize>) -> Result<Self, SysError> {
        let pty =
            openpty(size.as_ref(), None).map_err(|e| SysError::new("openpty", "/dev/ptmx", e))?;
        for fd in [&pty.master, &pty.slave] {
            fcntl(fd, FcntlArg::F_SETFD(FdFlag::FD_CLOEXEC))
                .map_err(|e| SysError::new("set close-on-exec on", "/dev/ptmx", e))?;
        }
        fcntl(&pty.master, FcntlArg::F_SETFL(OFlag::O_NONBLOCK))
            .map_err(|e| SysError::new("set non-blocking on", "/dev/ptmx", e))?;
        // Raw from the start: bytes written before liblxc takes the slave
        // (piped input) must not be echoed back or held for a newline.
        if let Ok(mut mode) = termios::tcgetattr(&pty.slave) {
            termios::cfmakeraw(&mut mode);
            let _ = termios::tcsetattr(&pty.slave, SetArg::TCSANOW, &mode);
        }
        let slave_path = std::fs::read_link(format!("/proc/self/fd/{}", pty.slave.as_raw_fd()))
            .map_err(|e| SysError::io("find the name of", "pty slave", e))?;
        Ok(ConsolePty {
            master: pty.master,
            _slave: pty.slave,
            slave_path,
        })
    }

    /// Copies the terminal's window size to the console.
    pub fn resize_from(&self, terminal: BorrowedFd<'_>) {
        if let Some(size) = tty::window_size(terminal) {
            tty::set_window_size(self.master.as_fd(), &size);
        }
    }
}

/// Recognises Ctrl-<key> `q` in the input stream.
#[derive(Debug)]
pub struct EscapeScanner {
    key: u8,
    pending: bool,
}

impl EscapeScanner {
    pub fn new(key: u8) -> Self {
        EscapeScanner {
            key,
            pending: false,
        }
    }

    /// Appends the bytes to forward to `out`; returns true when the escape
    /// sequence was typed (the rest of `input` is dropped). The key typed
    /// twice sends it once.
    pub fn feed(&mut self, input: &[u8], out: &mut Vec<u8>) -> bool {
        for &byte in input {
            if self.pending {
                self.pending = false;
                match byte {
                    b'q' | b'Q' => return true,
                    b if b == self.key => out.push(b),
                    b => out.extend_from_slice(&[self.key, b]),
                }
            } else if byte == self.key {
                self.pending = true;
            } else {
                out.push(byte);
            }
        }
        false
    }
}

/// Turns the console's CR LF line ends into LF when stdout is a file or a
/// pipe, so that `rootrun IMG | grep '^hello$'` works. Runs of CR before LF
/// (a pty with ONLCR behind another one gives CR CR LF) collapse too; a CR
/// that ends one read is held until the next byte is known.
#[derive(Debug, Default)]
pub struct LineEnds {
    pending_cr: usize,
}

impl LineEnds {
    /// The CRs held at the very end of the output, which no LF followed.
    pub fn end(&mut self, out: &mut Vec<u8>) {
        out.extend(std::iter::repeat_n(b'\r', self.pending_cr));
        self.pending_cr = 0;
    }

    pub fn filter(&mut self, input: &[u8], out: &mut Vec<u8>) {
        for &byte in input {
            match byte {
                b'\r' => self.pending_cr += 1,
                b'\n' => {
                    self.pending_cr = 0;
                    out.push(b'\n');
                }
                other => {
                    out.extend(std::iter::repeat_n(b'\r', self.pending_cr));
                    self.pending_cr = 0;
                    out.push(other);
                }
            }
        }
    }
}

/// Reads what is available from a non-blocking fd.
pub fn read_some(fd: BorrowedFd<'_>, buf: &mut [u8]) -> io::Result<usize> {
    loop {
        match nix::unistd::read(fd, buf) {
            Ok(n) => return Ok(n),
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(io::Error::from(e)),
        }
    }
}

/// Writes what a non-blocking fd takes now; returns how many bytes.
pub fn write_some(fd: BorrowedFd<'_>, data: &[u8]) -> usize {
    loop {
        match nix::unistd::write(fd, data) {
            Ok(n) => return n,
            Err(nix::errno::Errno::EINTR) => continue,
            // Full (EAGAIN) or gone (EIO): nothing written this time.
            Err(_) => return 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scan(input: &[u8]) -> (Vec<u8>, bool) {
        let mut out = Vec::new();
        let quit = EscapeScanner::new(1).feed(input, &mut out);
        (out, quit)
    }

    #[test]
    fn escape_then_q_quits_and_drops_the_rest() {
        assert_eq!(scan(b"ls\x01qrest"), (b"ls".to_vec(), true));
    }

    #[test]
    fn escape_twice_sends_it_once_and_other_keys_pass_through() {
        assert_eq!(scan(b"\x01\x01x"), (b"\x01x".to_vec(), false));
        assert_eq!(scan(b"\x01x"), (b"\x01x".to_vec(), false));
    }

    #[test]
    fn crlf_becomes_lf_even_split_across_reads() {
        let mut filter = LineEnds::default();
        let mut out = Vec::new();
        filter.filter(b"a\r\r\nb\r", &mut out);
        filter.filter(b"\nc\rd", &mut out);
        assert_eq!(out, b"a\nb\nc\rd");
        // A CR at the very end comes out when the output ends.
        filter.filter(b"e\r", &mut out);
        assert_eq!(out, b"a\nb\nc\rde");
        filter.end(&mut out);
        assert_eq!(out, b"a\nb\nc\rde\r");
    }

    #[test]
    fn escape_split_across_reads_still_quits() {
        let mut scanner = EscapeScanner::new(1);
        let mut out = Vec::new();
        assert!(!scanner.feed(b"a\x01", &mut out));
        assert!(scanner.feed(b"q", &mut out));
        assert_eq!(out, b"a");
    }
}
