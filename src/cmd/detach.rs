//! `rootrun -d`: the run goes on in a child of its own session, the
//! supervisor; this process returns once the container's init runs, or
//! with the child's exit code when it could not start (its error is on
//! stderr already: the child keeps stderr until init runs).

use std::fs::File;
use std::io::Read;
use std::os::fd::{AsFd, OwnedFd};

use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::{pipe, setsid, ForkResult};

use crate::error::{Error, EXIT_ROOTRUN};
use crate::notice;
use crate::sys::{process, SysError};

/// Forks the supervisor, which runs `launch` with the write end of the
/// readiness pipe, and waits; prints the container's name. Must run before any thread exists.
pub(super) fn start_in_background(
    launch: impl FnOnce(OwnedFd) -> Result<u8, Error>,
) -> Result<u8, Error> {
    let (read_end, write_end) = pipe().map_err(|e| SysError::new("pipe", "rootrun", e))?;
    match process::fork_single_threaded().map_err(|e| SysError::new("fork", "rootrun", e))? {
        ForkResult::Child => {
            drop(read_end);
            let code = supervise(launch, write_end);
            std::process::exit(i32::from(code));
        }
        ForkResult::Parent { child } => {
            drop(write_end);
            let mut answer = Vec::new();
            let _ = File::from(read_end).read_to_end(&mut answer);
            // The name, once init runs: on stdout, for scripts.
            if answer.ends_with(b"\n") {
                notice::stdout(&String::from_utf8_lossy(&answer))?;
                return Ok(0);
            }
            // No name: the supervisor ended before init ran; its error is
            // on stderr, its code is ours.
            match waitpid(child, None) {
                Ok(WaitStatus::Exited(_, code)) => Ok(code as u8),
                Ok(WaitStatus::Signaled(_, signal, _)) => Ok(128 + signal as u8),
                _ => Ok(EXIT_ROOTRUN),
            }
        }
    }
}

/// The supervisor: a session of its own (no terminal, no SIGHUP when the
/// terminal closes), stdin and stdout on /dev/null (a `$(rootrun -d ...)`
/// must not wait for it), stderr kept until init runs.
fn supervise(launch: impl FnOnce(OwnedFd) -> Result<u8, Error>, ready: OwnedFd) -> u8 {
    let _ = setsid();
    if let Ok(null) = File::options().read(true).write(true).open("/dev/null") {
        let _ = process::redirect(null.as_fd(), 0);
        let _ = process::redirect(null.as_fd(), 1);
    }
    match launch(ready) {
        Ok(code) => code,
        Err(err) => {
            notice::note(&err.to_string());
            err.exit_code()
        }
    }
}
