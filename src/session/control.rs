//! The supervisor's side of a named container: the control socket
//! (`state::control`'s protocol: stop and kill requests, console clients),
//! the record's updates, and, when detached, the console itself: always
//! drained into the console log, copied to the one attached client.
//! Nothing here blocks; the session's loop polls and this serves what is
//! ready.

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use nix::poll::{PollFd, PollFlags};

use crate::console::{self, ConsolePty};
use crate::state::control::{exit_line, Frame, FrameReader, Request, MAX_LINE};
use crate::state::{self, Owned};

/// A request line must arrive this soon after the connection.
const REQUEST_WAIT: Duration = Duration::from_secs(2);
/// Console output held for a slow client before it is dropped.
const CLIENT_BACKLOG: usize = 1024 * 1024;
/// Client input held for a console that does not read.
const INPUT_BACKLOG: usize = 64 * 1024;
/// The console log is rotated (to console.log.1) at this size.
const LOG_ROTATE_AT: u64 = 4 * 1024 * 1024;
/// How often the loop looks for init while the container starts.
const INIT_LOOK_EVERY: Duration = Duration::from_millis(10);

/// What a client asked the session to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Event {
    Stop(Option<Duration>),
    Kill,
    /// A console client's terminal size, now set on the pty.
    Resized,
}

/// A connection whose request line has not come yet.
struct Pending {
    stream: UnixStream,
    line: Vec<u8>,
    since: Instant,
}

struct Client {
    stream: UnixStream,
    frames: FrameReader,
    /// Console output not sent yet.
    out: Vec<u8>,
}

/// A detached container's console.
struct Detached<'a> {
    pty: &'a ConsolePty,
    log: Option<File>,
    logged: u64,
    client: Option<Client>,
    /// Client input not written to the console yet.
    input: Vec<u8>,
}

pub(crate) struct Control<'a> {
    owned: &'a mut Owned,
    pending: Vec<Pending>,
    /// Stop clients, told the exit code at the end.
    waiters: Vec<UnixStream>,
    detached: Option<Detached<'a>>,
    /// The pipe to the foreground rootrun that waits for init to run (`-d`).
    ready: Option<OwnedFd>,
    init_seen: bool,
    buf: Vec<u8>,
}

/// Where the control's fds are in one poll(2) array.
pub(super) struct Slots {
    first: usize,
    count: usize,
}

impl Slots {
    pub(super) fn ready(&self, fds: &[PollFd<'_>]) -> Vec<PollFlags> {
        fds[self.first..self.first + self.count]
            .iter()
            .map(|fd| fd.revents().unwrap_or(PollFlags::empty()))
            .collect()
    }
}

impl<'a> Control<'a> {
    /// `detached`: the console pty, served here (`-d`); `ready`: the pipe
    /// that says init runs.
    pub(crate) fn new(
        owned: &'a mut Owned,
        detached: Option<&'a ConsolePty>,
        ready: Option<OwnedFd>,
    ) -> Self {
        let detached = detached.map(|pty| Detached {
            pty,
            log: owned.create(state::CONSOLE_LOG).ok(),
            logged: 0,
            client: None,
            input: Vec::new(),
        });
        Control {
            owned,
            pending: Vec::new(),
            waiters: Vec::new(),
            detached,
            ready,
            init_seen: false,
            buf: vec![0; 64 * 1024],
        }
    }

    pub(super) fn is_detached(&self) -> bool {
        self.detached.is_some()
    }

    /// When the loop must wake up for the control even if no fd is ready.
    pub(super) fn wake_at(&self, now: Instant) -> Option<Instant> {
        let pending = self.pending.iter().map(|p| p.since + REQUEST_WAIT).min();
        let look = (!self.init_seen).then_some(now + INIT_LOOK_EVERY);
        [pending, look].into_iter().flatten().min()
    }

    pub(super) fn add_fds<'s>(&'s self, fds: &mut Vec<PollFd<'s>>) -> Slots {
        let first = fds.len();
        fds.push(PollFd::new(
            self.owned.listener().as_fd(),
            PollFlags::POLLIN,
        ));
        for pending in &self.pending {
            fds.push(PollFd::new(pending.stream.as_fd(), PollFlags::POLLIN));
        }
        if let Some(detached) = &self.detached {
            let mut master = PollFlags::POLLIN;
            if !detached.input.is_empty() {
                master |= PollFlags::POLLOUT;
            }
            fds.push(PollFd::new(detached.pty.master.as_fd(), master));
            if let Some(client) = &detached.client {
                let mut events = PollFlags::empty();
                if detached.input.len() < INPUT_BACKLOG {
                    events |= PollFlags::POLLIN;
                }
                if !client.out.is_empty() {
                    events |= PollFlags::POLLOUT;
                }
                fds.push(PollFd::new(client.stream.as_fd(), events));
            }
        }
        Slots {
            first,
            count: fds.len() - first,
        }
    }

    /// Serves what poll(2) found ready (`ready`, from `Slots::ready`).
    pub(super) fn serve(&mut self, ready: &[PollFlags], now: Instant) -> Vec<Event> {
        let mut events = Vec::new();
        let mut at = 0;
        let mut next = || {
            let flags = ready.get(at).copied().unwrap_or(PollFlags::empty());
            at += 1;
            flags
        };
        let listener_ready = !next().is_empty();
        let pending_ready: Vec<bool> = self.pending.iter().map(|_| !next().is_empty()).collect();
        let (master_ready, client_ready) = match &self.detached {
            Some(detached) => (next(), detached.client.as_ref().map(|_| next())),
            None => (PollFlags::empty(), None),
        };

        if let Some(detached) = self.detached.as_mut() {
            if master_ready.intersects(PollFlags::POLLIN | PollFlags::POLLHUP) {
                detached.drain(&mut self.buf, self.owned);
            }
            if master_ready.contains(PollFlags::POLLOUT) {
                let written = console::write_some(detached.pty.master.as_fd(), &detached.input);
                detached.input.drain(..written);
            }
            if let Some(flags) = client_ready {
                if let Some(event) = detached.serve_client(flags, &mut self.buf) {
                    events.push(event);
                }
            }
        }
        let pending = std::mem::take(&mut self.pending);
        for (mut pending, is_ready) in pending.into_iter().zip(pending_ready) {
            match is_ready.then(|| read_line(&mut pending)).flatten() {
                Some(Some(request)) => events.extend(self.answer(pending.stream, request)),
                // Garbage or a closed connection: dropped.
                Some(None) => {}
                None if now.duration_since(pending.since) > REQUEST_WAIT => {}
                None => self.pending.push(pending),
            }
        }
        if listener_ready {
            while let Ok((stream, _)) = self.owned.listener().accept() {
                if stream.set_nonblocking(true).is_ok() {
                    self.pending.push(Pending {
                        stream,
                        line: Vec::new(),
                        since: now,
                    });
                }
            }
        }
        events
    }

    /// Answers one request; the stop requests become events.
    fn answer(&mut self, mut stream: UnixStream, request: Request) -> Option<Event> {
        match request {
            Request::Console => {
                let answer = match self.detached.as_mut() {
                    None => "no its console is the terminal of the rootrun that started it\n",
                    Some(detached) if detached.client.is_some() => {
                        "no another rootrun console is attached\n"
                    }
                    Some(detached) => {
                        detached.client = Some(Client {
                            stream,
                            frames: FrameReader::default(),
                            out: b"ok\n".to_vec(),
                        });
                        return None;
                    }
                };
                let _ = stream.write_all(answer.as_bytes());
                None
            }
            Request::Stop { timeout } => {
                let _ = stream.write_all(format!("ok {}\n", self.owned.record().halt).as_bytes());
                self.waiters.push(stream);
                self.mark_stopping();
                Some(Event::Stop(timeout))
            }
            Request::Kill => {
                let _ = stream.write_all(b"ok SIGKILL\n");
                self.waiters.push(stream);
                self.mark_stopping();
                Some(Event::Kill)
            }
        }
    }

    /// A stop was requested, by a client or otherwise: `ls` says so.
    pub(super) fn mark_stopping(&mut self) {
        if !self.owned.record().stopping {
            let _ = self.owned.update(|record| record.stopping = true);
        }
    }

    /// Until init runs: looks for it (`find`), then records its PID and
    /// tells a waiting foreground rootrun that the container is up.
    pub(super) fn look_for_init(&mut self, find: impl FnOnce() -> Option<i32>) {
        if self.init_seen {
            return;
        }
        let Some(init) = find() else { return };
        self.init_seen = true;
        let _ = self.owned.update(|record| record.init_pid = Some(init));
        if let Some(ready) = self.ready.take() {
            // From here on the supervisor's notes go to rootrun.log.
            if let Ok(log) = self.owned.create(state::SUPERVISOR_LOG) {
                let _ = crate::sys::process::redirect(log.as_fd(), 2);
            }
            let _ = File::from(ready).write_all(format!("{}\n", self.owned.name()).as_bytes());
        }
    }

    /// The container is gone: the rest of the console goes to the log, and
    /// every stop client gets `code`.
    pub(super) fn finish(&mut self, code: u8) {
        if let Some(detached) = self.detached.as_mut() {
            detached.drain(&mut self.buf, self.owned);
            if let Some(mut client) = detached.client.take() {
                let _ = client.stream.set_nonblocking(false);
                let _ = client
                    .stream
                    .set_write_timeout(Some(Duration::from_millis(500)));
                let _ = client.stream.write_all(&client.out);
            }
        }
        for mut waiter in self.waiters.drain(..) {
            let _ = waiter.set_nonblocking(false);
            let _ = waiter.set_write_timeout(Some(Duration::from_millis(500)));
            let _ = waiter.write_all(exit_line(code).as_bytes());
        }
    }
}

impl Detached<'_> {
    /// Reads what the console printed: to the log, and to the client.
    fn drain(&mut self, buf: &mut [u8], owned: &Owned) {
        for _ in 0..8 {
            let n = match console::read_some(self.pty.master.as_fd(), buf) {
                Ok(n) if n > 0 => n,
                _ => return,
            };
            let bytes = &buf[..n];
            self.log_bytes(bytes, owned);
            if let Some(client) = self.client.as_mut() {
                client.out.extend_from_slice(bytes);
                if client.out.len() > CLIENT_BACKLOG {
                    // A client that reads nothing must not hold the
                    // console: it goes, the container goes on.
                    self.client = None;
                } else {
                    let sent = console::write_some(client.stream.as_fd(), &client.out);
                    client.out.drain(..sent);
                }
            }
        }
    }

    fn log_bytes(&mut self, bytes: &[u8], owned: &Owned) {
        if self.logged >= LOG_ROTATE_AT {
            if owned
                .rotate(state::CONSOLE_LOG, state::CONSOLE_LOG_OLD)
                .is_ok()
            {
                self.log = owned.create(state::CONSOLE_LOG).ok();
            }
            self.logged = 0;
        }
        if let Some(log) = self.log.as_mut() {
            // A full /run ends the log, not the container.
            if log.write_all(bytes).is_err() {
                self.log = None;
            }
            self.logged += bytes.len() as u64;
        }
    }

    fn serve_client(&mut self, flags: PollFlags, buf: &mut [u8]) -> Option<Event> {
        let client = self.client.as_mut()?;
        if flags.contains(PollFlags::POLLOUT) {
            let sent = console::write_some(client.stream.as_fd(), &client.out);
            client.out.drain(..sent);
        }
        if !flags.intersects(PollFlags::POLLIN | PollFlags::POLLHUP | PollFlags::POLLERR) {
            return None;
        }
        let mut event = None;
        match client.stream.read(buf) {
            Ok(0) => {
                self.client = None;
                return None;
            }
            Ok(n) => client.frames.feed(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return None,
            Err(_) => {
                self.client = None;
                return None;
            }
        }
        loop {
            match client.frames.next_frame() {
                Ok(Some(Frame::Data(data))) => self.input.extend_from_slice(&data),
                Ok(Some(Frame::Size { rows, cols })) => {
                    let size = nix::pty::Winsize {
                        ws_row: rows,
                        ws_col: cols,
                        ws_xpixel: 0,
                        ws_ypixel: 0,
                    };
                    crate::sys::tty::set_window_size(self.pty.master.as_fd(), &size);
                    event = Some(Event::Resized);
                }
                Ok(None) => break,
                Err(_) => {
                    self.client = None;
                    break;
                }
            }
        }
        event
    }
}

/// Reads what came of a request line: Some(Some) when whole and valid,
/// Some(None) when the connection is to be dropped, None to wait on.
fn read_line(pending: &mut Pending) -> Option<Option<Request>> {
    let mut buf = [0u8; MAX_LINE];
    match pending.stream.read(&mut buf) {
        Ok(0) => return Some(None),
        Ok(n) => pending.line.extend_from_slice(&buf[..n]),
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return None,
        Err(_) => return Some(None),
    }
    let end = pending.line.iter().position(|&b| b == b'\n');
    match end {
        Some(end) => Some(
            std::str::from_utf8(&pending.line[..end])
                .ok()
                .and_then(Request::parse),
        ),
        None if pending.line.len() >= MAX_LINE => Some(None),
        None => None,
    }
}
