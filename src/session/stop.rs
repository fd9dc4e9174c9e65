//! Stopping the container, as a state machine that only decides: what it
//! sees of the container's processes comes through `Processes`, what it does
//! goes through `Signals`, and the time is an argument. The event loop
//! feeds it requests and wake-ups; unit tests drive every path with fakes.
//!
//! Every step is a plain kill(2) on a PID rootrun found itself (or, for
//! sysvinit, a non-blocking write to init's FIFO): a call into liblxc's
//! command socket would block until the monitor answers, and the monitor
//! may be blocked writing to the console that only rootrun's loop drains.

use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sys::signal::Signal;

/// What the stop machine looks at: the container's processes (in /proc on
/// the host, see `crate::sys::proc`).
pub(crate) trait Processes {
    /// The container's init (the monitor's child in a PID namespace of its
    /// own); None before it exists and after it is gone.
    fn container_init(&self, monitor: i32) -> Option<i32>;
    /// The oldest child of `pid`.
    fn first_child(&self, pid: i32) -> Option<i32>;
    /// Whether `pid`, the first of a PID namespace, would receive `signal`
    /// rather than have the kernel drop it (pid_namespaces(7)).
    fn receives(&self, pid: i32, signal: i32) -> bool;
}

/// How the stop machine acts: kill(2) on the host, and writes to init's
/// request FIFO.
pub(crate) trait Signals {
    fn send(&mut self, pid: i32, signal: i32) -> Result<(), Errno>;
    /// Writes `request` whole to the FIFO `path` inside the root of `init`,
    /// without blocking; the error says why not.
    fn request(&mut self, init: i32, path: &str, request: &[u8]) -> Result<(), String>;
}

/// How init is asked to halt when a stop begins.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Halt {
    /// The halt signal, by name (`lxc.signal.halt`'s spelling).
    Signal(&'static str),
    /// `request` written to the FIFO `path` in init's root (sysvinit's
    /// /run/initctl), again and again until init takes it: early in boot
    /// the FIFO is not there yet, and no signal would do instead (Debian's
    /// sysvinit runs a missing powerfail script on SIGPWR).
    Request {
        path: &'static str,
        request: Vec<u8>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StopCause {
    Escape,
    Signal(Signal),
    /// `--expect` matched: the boot check passed.
    Expected,
    /// `--timeout` passed first.
    TimedOut,
    /// `--stop-on-eof`: the piped input ended and the guest went quiet.
    EndOfInput,
    /// `rootrun stop NAME` (`kill`: `--kill`).
    Request {
        kill: bool,
    },
}

/// How long the monitor has to clean up after init was killed.
pub(crate) const KILL_GRACE: Duration = Duration::from_secs(2);

/// How often a dropped first stop signal, or a request init could not take
/// yet, is tried again.
const RETRY_EVERY: Duration = Duration::from_millis(200);

/// How far a stop has gone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    /// Init got its halt signal (a command, the signal rootrun got).
    Asked,
    /// Init got SIGKILL: the PID namespace dies, the monitor cleans up.
    InitKilled,
    /// The monitor got SIGKILL; liblxc's parent-death signal kills init.
    MonitorKilled,
}

#[derive(Debug, Clone, Copy)]
struct Request {
    cause: StopCause,
    step: Step,
    /// When the next, harder step is due; none after the last one.
    deadline: Option<Instant>,
    /// When to ask init again, and how.
    retry: Option<Retry>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Retry {
    at: Instant,
    again: Again,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Again {
    /// The first signal went to a PID-namespace init that did not catch
    /// it, so the kernel dropped it (pid_namespaces(7)): look again whether
    /// init has a handler by now, and send it again.
    Signal { pid: i32, signal: i32 },
    /// init's request FIFO could not be written (early in boot it does not
    /// exist yet, or init has not opened it): write it again.
    Request,
}

/// What became of the first stop signal.
enum Asked {
    Sent,
    /// Sent to init (this PID), which looked as if it would drop it.
    MaybeDropped(i32, i32),
    /// The halt request could not be written yet.
    NotTaken,
}

/// The stop of one container, from the first request to the monitor's
/// SIGKILL.
#[derive(Debug)]
pub(crate) struct Stop {
    monitor: i32,
    /// Command mode: a signal rootrun gets goes to the command itself.
    command: bool,
    /// The host signal that halts init; None when its name is unknown.
    halt: Option<i32>,
    /// A request that comes before the halt signal, if init takes one.
    halt_request: Option<(&'static str, Vec<u8>)>,
    /// What the user should know about the stop (a request that failed).
    note: Option<String>,
    /// How long init has to halt before it is killed.
    timeout: Duration,
    request: Option<Request>,
}

impl Stop {
    pub(crate) fn new(monitor: i32, command: bool, halt: Halt, timeout: Duration) -> Self {
        let (signal, halt_request) = match halt {
            Halt::Signal(signal) => (Some(signal), None),
            Halt::Request { path, request } => (None, Some((path, request))),
        };
        Stop {
            monitor,
            command,
            halt: signal.and_then(signal_number),
            halt_request,
            timeout,
            request: None,
            note: None,
        }
    }

    /// How long init has to halt, for a stop not requested yet (`rootrun
    /// stop --timeout`).
    pub(crate) fn set_timeout(&mut self, timeout: Duration) {
        if self.request.is_none() {
            self.timeout = timeout;
        }
    }

    /// A note for the user about how the stop went, once.
    pub(crate) fn take_note(&mut self) -> Option<String> {
        self.note.take()
    }

    /// What the first request was for; None while nobody asked.
    pub(crate) fn cause(&self) -> Option<StopCause> {
        self.request.map(|request| request.cause)
    }

    pub(crate) fn requested(&self) -> bool {
        self.request.is_some()
    }

    /// When `tick` has something to do next.
    pub(crate) fn wake_at(&self) -> Option<Instant> {
        let request = self.request?;
        let retry_at = request.retry.map(|retry| retry.at);
        [request.deadline, retry_at].into_iter().flatten().min()
    }

    /// First request: ask init to halt and start the grace period. A second
    /// request (Ctrl-C twice) goes straight to the next step.
    pub(crate) fn request(
        &mut self,
        cause: StopCause,
        now: Instant,
        procs: &impl Processes,
        signals: &mut impl Signals,
    ) {
        if self.request.is_some() {
            self.escalate(now, procs, signals);
            return;
        }
        let mut request = Request {
            cause,
            step: Step::Asked,
            deadline: Some(now + self.timeout),
            retry: None,
        };
        match self.ask(cause, procs, signals) {
            // No init yet (or already gone): nothing to ask.
            None => {
                self.request = Some(request);
                self.escalate(now, procs, signals);
                return;
            }
            Some(Asked::Sent) => {}
            Some(Asked::MaybeDropped(pid, signal)) => {
                request.retry = Some(Retry {
                    at: now + RETRY_EVERY,
                    again: Again::Signal { pid, signal },
                });
            }
            Some(Asked::NotTaken) => {
                request.retry = Some(Retry {
                    at: now + RETRY_EVERY,
                    again: Again::Request,
                });
            }
        }
        self.request = Some(request);
    }

    /// Takes the next step when its deadline has come, sends a dropped
    /// first signal again when its target catches it by now, and writes a
    /// halt request again that init could not take yet.
    pub(crate) fn tick(
        &mut self,
        now: Instant,
        procs: &impl Processes,
        signals: &mut impl Signals,
    ) {
        if self
            .request
            .and_then(|request| request.deadline)
            .is_some_and(|at| now >= at)
        {
            self.escalate(now, procs, signals);
        }
        self.retry_ask(now, procs, signals);
    }

    /// Sends the first stop signal (or writes init's halt request) and says
    /// whether init may have dropped it; None when there is no init to ask.
    fn ask(
        &mut self,
        cause: StopCause,
        procs: &impl Processes,
        signals: &mut impl Signals,
    ) -> Option<Asked> {
        let init = procs.container_init(self.monitor)?;
        let (target, signal) = match (self.command, cause) {
            // A command gets the very signal rootrun got, as a shell's child
            // would. It goes to the command itself: liblxc's init turns
            // SIGINT into a SIGTERM shutdown of everything.
            (true, StopCause::Signal(signal)) => {
                (procs.first_child(init).unwrap_or(init), signal as i32)
            }
            // An init that reads requests gets one, now or, when it
            // cannot take it yet, on a later tick.
            _ => {
                if let Some((path, request)) = &self.halt_request {
                    return Some(match signals.request(init, path, request) {
                        Ok(()) => Asked::Sent,
                        Err(why) => {
                            self.note = Some(format!(
                                "init cannot take the halt request yet ({why}); trying again \
                                 every {} ms until the stop timeout",
                                RETRY_EVERY.as_millis()
                            ));
                            Asked::NotTaken
                        }
                    });
                }
                // An init is asked to power off with its own halt signal.
                (init, self.halt?)
            }
        };
        // Only a namespace's init drops signals it does not take. Sent
        // anyway: the look into /proc cannot see every way of waiting for
        // a signal, and a dropped one costs nothing.
        let dropped = target == init && !procs.receives(init, signal);
        signals.send(target, signal).ok()?;
        Some(if dropped {
            Asked::MaybeDropped(init, signal)
        } else {
            Asked::Sent
        })
    }

    /// Sends a dropped first stop signal again once its target catches it,
    /// and writes a halt request again until init takes it.
    fn retry_ask(&mut self, now: Instant, procs: &impl Processes, signals: &mut impl Signals) {
        let Some(request) = self.request.as_mut() else {
            return;
        };
        let Some(retry) = request.retry else { return };
        if request.step != Step::Asked {
            request.retry = None;
            return;
        }
        if now < retry.at {
            return;
        }
        let done = match retry.again {
            Again::Signal { pid, signal } => {
                let handled = procs.receives(pid, signal);
                // Still the container's init, not a reused PID.
                if handled && procs.container_init(self.monitor) == Some(pid) {
                    let _ = signals.send(pid, signal);
                }
                handled
            }
            Again::Request => match (procs.container_init(self.monitor), &self.halt_request) {
                (Some(init), Some((path, halt))) => signals.request(init, path, halt).is_ok(),
                // No init now: nothing to ask, the monitor's exit ends the
                // stop, or the deadline does.
                _ => false,
            },
        };
        request.retry = (!done).then(|| Retry {
            at: now + RETRY_EVERY,
            ..retry
        });
    }

    /// The next, harder step of a stop.
    fn escalate(&mut self, now: Instant, procs: &impl Processes, signals: &mut impl Signals) {
        let Some(current) = self.request.map(|request| request.step) else {
            return;
        };
        let step = match (current, procs.container_init(self.monitor)) {
            (Step::Asked, Some(init)) => {
                let _ = signals.send(init, libc::SIGKILL);
                Step::InitKilled
            }
            (Step::MonitorKilled, _) => return,
            _ => {
                let _ = signals.send(self.monitor, libc::SIGKILL);
                Step::MonitorKilled
            }
        };
        if let Some(request) = self.request.as_mut() {
            request.step = step;
            request.deadline = (step == Step::InitKilled).then(|| now + KILL_GRACE);
        }
    }
}

/// A signal's number from its name as liblxc's `lxc.signal.halt` takes it:
/// `SIGPWR`, `SIGUSR2`, `SIGRTMIN+4`.
fn signal_number(name: &str) -> Option<i32> {
    if let Some(offset) = name.strip_prefix("SIGRTMIN+") {
        let number = libc::SIGRTMIN() + offset.parse::<i32>().ok()?;
        return (number <= libc::SIGRTMAX()).then_some(number);
    }
    name.parse::<Signal>().ok().map(|signal| signal as i32)
}

#[cfg(test)]
#[path = "stop_tests.rs"]
mod tests;
