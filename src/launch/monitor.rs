//! The liblxc monitor child.

use nix::sys::signal::{SigSet, Signal};
use nix::unistd::{setpgid, Pid};

use crate::lxc::Container;
use crate::plan::{LaunchPlan, Mode};
use crate::sys::process::{self, Outcome, SharedOutcome};

/// The liblxc monitor: runs in a forked child so that rootrun itself stays
/// free to proxy the console and react to signals while `start()` blocks.
/// `quiet`: stdio goes to /dev/null (`-d`: liblxc's errors are in its log,
/// which rootrun reads when the start fails).
pub fn monitor_main(
    plan: &LaunchPlan,
    rootrun: Pid,
    signals: &SigSet,
    outcome: &SharedOutcome,
    quiet: bool,
) {
    if quiet {
        process::stdio_to_null();
    }
    // Its own process group: a Ctrl-C on rootrun's terminal is for rootrun,
    // which decides how to stop the container.
    let _ = setpgid(Pid::from_raw(0), Pid::from_raw(0));
    // If rootrun is SIGKILLed, the monitor dies too, and liblxc's own
    // PR_SET_PDEATHSIG on init takes the container with it: the namespace,
    // its mounts and the autoclear loop device then vanish.
    if process::die_with_parent(rootrun).is_err() {
        return outcome.report(Outcome::StartFailed);
    }
    let _ = signals.thread_unblock();
    // rootrun blocks the terminal's job-control signals for itself
    // (`launch::run`); the container must get them as usual.
    let mut job_control = SigSet::empty();
    job_control.add(Signal::SIGTTIN);
    job_control.add(Signal::SIGTTOU);
    let _ = job_control.thread_unblock();
    process::default_signal_dispositions();
    let started = Container::new(&plan.name, &plan.layout.lxcpath).and_then(|container| {
        container.want_daemonize(false)?;
        container.want_close_all_fds(true)?;
        match &plan.mode {
            Mode::Boot { .. } => container.start(false, &[])?,
            Mode::Command { argv } => container.start(true, argv)?,
        }
        Ok(container.exit_status())
    });
    outcome.report(match started {
        Ok(status) => Outcome::Exited(status),
        Err(_) => Outcome::StartFailed,
    });
}
