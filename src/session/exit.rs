//! How the container's end maps to rootrun's exit code (DESIGN.md, style
//! rule 6): the container's status passes through, a signal as 128+n.

use std::fs;
use std::path::Path;

use super::StopCause;
use crate::error::Error;
use crate::plan::{LaunchPlan, Mode};
use crate::sys::process::Outcome;

/// rootrun's exit code: the container's status passed through (a signal as
/// 128+n); a user's stop request wins over how init then ended.
pub(crate) fn exit_code(
    plan: &LaunchPlan,
    outcome: Outcome,
    stop: Option<StopCause>,
    log: &Path,
) -> Result<u8, Error> {
    match (stop, outcome) {
        // A command stopped by `rootrun stop` ends as it ends (143 when
        // the SIGTERM ended it), as `docker stop` reports it.
        (Some(StopCause::Request { .. }), Outcome::Exited(status))
            if matches!(plan.mode, Mode::Command { .. }) =>
        {
            Ok(status_code(&plan.mode, status))
        }
        // Stopped on request, even before start() returned or by killing
        // the monitor: the request decides the code.
        (Some(StopCause::Signal(signal)), _) => Ok(128 + signal as u8),
        (
            Some(
                StopCause::Escape
                | StopCause::Expected
                | StopCause::EndOfInput
                | StopCause::Request { kill: false },
            ),
            _,
        ) => Ok(0),
        (Some(StopCause::Request { kill: true }), _) => Ok(128 + libc::SIGKILL as u8),
        (Some(StopCause::TimedOut), _) => Ok(crate::error::EXIT_TIMED_OUT),
        // The boot check's pattern never came: init ended first.
        (None, Outcome::Exited(_)) if plan.expect.is_some() => {
            Ok(crate::error::EXIT_ENDED_UNMATCHED)
        }
        (None, Outcome::Exited(status)) => Ok(status_code(&plan.mode, status)),
        (None, Outcome::StartFailed | Outcome::Unknown) => Err(Error::Start {
            detail: lxc_log_errors(log, plan.debug.kept.as_deref()),
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
    if let Some(signal) = killed_by(status) {
        if matches!(mode, Mode::Boot { .. }) && signal == libc::SIGINT {
            return 0;
        }
        return 128u8.saturating_add(signal as u8);
    }
    crate::error::EXIT_ROOTRUN
}

/// The signal that killed init (or CMD), from its wait status.
fn killed_by(status: i32) -> Option<i32> {
    // liblxc reports a signalled init as `signal << 8 | 0x7f` (observed with
    // liblxc 5.0.2: poweroff inside the container gives 0x27f).
    if libc::WIFEXITED(status) {
        None
    } else if libc::WIFSIGNALED(status) {
        Some(libc::WTERMSIG(status))
    } else if status & 0x7f == 0x7f {
        Some((status >> 8) & 0x7f)
    } else {
        None
    }
}

/// What a bare exit code would not say: init (or CMD) killed by SIGBUS
/// means, for a program the kernel maps from the image, that reading a
/// page of it failed (mmap(2): SIGBUS on access to a part of the file that
/// cannot be read) -- a corrupt or truncated image, whose SquashFS blocks
/// do not decompress.
pub(crate) fn death_hint(plan: &LaunchPlan, outcome: Outcome) -> Option<String> {
    let Outcome::Exited(status) = outcome else {
        return None;
    };
    // liblxc's init in command mode passes a killed command on as exit
    // status 128+n, which the command could also have exited with.
    let sigbus = 128 + libc::SIGBUS;
    let who = match (&plan.mode, killed_by(status)) {
        (Mode::Boot { init }, Some(libc::SIGBUS)) => {
            format!("init ({init}) was killed by SIGBUS: ")
        }
        (Mode::Command { argv }, Some(libc::SIGBUS)) => {
            format!(
                "{} was killed by SIGBUS",
                argv.first().cloned().unwrap_or_default()
            )
        }
        (Mode::Command { argv }, None) if libc::WEXITSTATUS(status) == sigbus => format!(
            "{} ended with status {sigbus}, as a command killed by SIGBUS does; if it was, ",
            argv.first().cloned().unwrap_or_default()
        ),
        _ => return None,
    };
    Some(format!(
        "{who}reading its program (or a file it mapped) from {} \
         failed, the mark of a corrupt or truncated image; check it with `unsquashfs -l` \
         or `rootrun unpack` (the kernel log has the SquashFS error)",
        plan.image.display()
    ))
}

/// The ERROR lines liblxc wrote to its log, without their prefixes, and
/// where the whole log is when it is kept (`--keep-logs`).
fn lxc_log_errors(log: &Path, kept: Option<&Path>) -> String {
    let errors = last_errors(log, kept.is_none());
    match kept {
        Some(dir) => format!("{errors} (logs kept in {})", dir.display()),
        None => errors,
    }
}

/// `gone`: the log vanishes with the run, so naming it helps nobody.
fn last_errors(log: &Path, gone: bool) -> String {
    let text = fs::read_to_string(log).unwrap_or_default();
    let lines = relevant_errors(&text);
    if lines.is_empty() && gone {
        "liblxc gave no reason (--keep-logs DIR --log-level debug keeps its whole log)".into()
    } else if lines.is_empty() {
        format!("liblxc gave no reason (see {})", log.display())
    } else {
        lines.join("; ")
    }
}

/// liblxc's ERROR lines, each without its prefix (`lxc NAME TIME ERROR
/// module - file:function:line - `), the errno text kept: the first two,
/// where the cause is (a failed mount), and the last, what it led to
/// (liblxc's own "Failed to spawn" and sync lines come in between).
fn relevant_errors(text: &str) -> Vec<&str> {
    let lines: Vec<&str> = text
        .lines()
        .filter(|line| line.contains(" ERROR "))
        .map(|line| line.splitn(3, " - ").nth(2).unwrap_or(line))
        .collect();
    match lines.as_slice() {
        [first, second, .., last] if lines.len() > 3 => vec![first, second, last],
        _ => lines,
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
    fn the_cause_of_a_failed_start_comes_first_with_its_errno() {
        let log = "\
lxc c 1.0 ERROR    conf - conf.c:mount_entry:2446 - No such file or directory - Failed to mount \"/x\"
lxc c 1.0 ERROR    conf - conf.c:lxc_setup:4419 - Failed to setup mount entries
lxc c 1.0 ERROR    start - start.c:do_start:1272 - Failed to setup container \"c\"
lxc c 1.0 ERROR    sync - sync.c:sync_wait:34 - An error occurred in another process
lxc c 1.0 ERROR    start - start.c:__lxc_start:2107 - Failed to spawn container \"c\"
lxc c 1.0 DEBUG    conf - conf.c:x:1 - not this
";
        assert_eq!(
            relevant_errors(log),
            [
                "No such file or directory - Failed to mount \"/x\"",
                "Failed to setup mount entries",
                "Failed to spawn container \"c\"",
            ]
        );
    }

    #[test]
    fn only_sigbus_gets_a_hint() {
        assert_eq!(killed_by(libc::SIGBUS), Some(libc::SIGBUS));
        assert_eq!(killed_by(libc::SIGBUS << 8 | 0x7f), Some(libc::SIGBUS));
        assert_eq!(killed_by(7 << 8), None);
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
