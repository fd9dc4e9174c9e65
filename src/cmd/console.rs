//! `rootrun console NAME`: attach to a detached container's console;
//! Ctrl-<key> q detaches and leaves the container running.

use std::io::{self, Read, Write};
use std::os::fd::AsFd;
use std::os::unix::net::UnixStream;

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};

use crate::cli::ConsoleArgs;
use crate::console::{self, EscapeScanner, RawMode};
use crate::error::Error;
use crate::notice;
use crate::state;
use crate::state::control::{self, Frame, Request};
use crate::sys::SysError;

pub fn run(args: &ConsoleArgs) -> Result<u8, Error> {
    super::need_root()?;
    let found = state::find(&args.name)?;
    let (mut stream, _) = control::connect(&found, Request::Console)?;
    let stdin = io::stdin();
    let interactive = console::interactive(stdin.as_fd());
    let key = char::from(b'a' + args.escape - 1);
    let how = if interactive {
        format!("Ctrl-{key} q detaches")
    } else {
        "the end of input detaches".into()
    };
    notice::note(&format!(
        "attached to {}'s console ({how}; press Enter for a prompt)",
        args.name
    ));
    let mut signals = SigSet::empty();
    signals.add(Signal::SIGWINCH);
    signals
        .thread_block()
        .map_err(|e| SysError::new("block signals in", "rootrun", e))?;
    let winch = SignalFd::with_flags(&signals, SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC)
        .map_err(|e| SysError::new("signalfd", "rootrun", e))?;

    let raw = interactive.then(|| RawMode::enter(stdin.as_fd())).flatten();
    let ended = proxy(
        &mut stream,
        &winch,
        interactive.then(|| EscapeScanner::new(args.escape)),
    );
    drop(raw);
    match ended {
        Ended::Detached => notice::note(&format!(
            "detached from {}'s console; it runs on (rootrun stop {} stops it)",
            args.name, args.name
        )),
        Ended::Stopped => notice::note(&format!("{} has stopped", args.name)),
    }
    Ok(0)
}

enum Ended {
    Detached,
    Stopped,
}

fn proxy(stream: &mut UnixStream, winch: &SignalFd, mut escape: Option<EscapeScanner>) -> Ended {
    let stdin = io::stdin();
    let mut stdout = io::stdout().lock();
    let mut out = Vec::new();
    send_size(stream, &mut out);
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let mut fds = vec![
            PollFd::new(stream.as_fd(), PollFlags::POLLIN),
            PollFd::new(winch.as_fd(), PollFlags::POLLIN),
            PollFd::new(stdin.as_fd(), PollFlags::POLLIN),
        ];
        if poll(&mut fds, PollTimeout::NONE).is_err() {
            continue;
        }
        let ready: Vec<bool> = fds
            .iter()
            .map(|fd| fd.revents().is_some_and(|r| !r.is_empty()))
            .collect();
        drop(fds);
        if ready[0] {
            match stream.read(&mut buf) {
                Ok(0) | Err(_) => return Ended::Stopped,
                Ok(n) => {
                    if stdout
                        .write_all(&buf[..n])
                        .and_then(|()| stdout.flush())
                        .is_err()
                    {
                        return Ended::Detached;
                    }
                }
            }
        }
        if ready[1] {
            while let Ok(Some(_)) = winch.read_signal() {}
            send_size(stream, &mut out);
        }
        if ready[2] {
            let n = console::read_some(stdin.as_fd(), &mut buf).unwrap_or(0);
            if n == 0 {
                // Piped input ended: detach, as a script means to.
                return Ended::Detached;
            }
            let mut input = Vec::new();
            let quit = match escape.as_mut() {
                Some(scanner) => scanner.feed(&buf[..n], &mut input),
                None => {
                    input.extend_from_slice(&buf[..n]);
                    false
                }
            };
            out.clear();
            Frame::encode_data(&input, &mut out);
            if stream.write_all(&out).is_err() {
                return Ended::Stopped;
            }
            if quit {
                return Ended::Detached;
            }
        }
    }
}

/// Tells the supervisor this terminal's size, when stdin is one.
fn send_size(stream: &mut UnixStream, out: &mut Vec<u8>) {
    if let Some(size) = console::window_size(io::stdin().as_fd()) {
        out.clear();
        Frame::encode_size(size.ws_row, size.ws_col, out);
        let _ = stream.write_all(out);
    }
}
