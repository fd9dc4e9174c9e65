//! Unit tests for stop.rs: every path of a stop, driven by a fake container
//! and a fake clock.

use super::*;

const MONITOR: i32 = 100;
const INIT: i32 = 200;
const COMMAND: i32 = 201;
const TIMEOUT: Duration = Duration::from_secs(10);
const KILL: i32 = libc::SIGKILL;
const USR2: i32 = libc::SIGUSR2;

/// The container's processes as the stop machine would see them in /proc.
#[derive(Default)]
struct Fake {
    init: Option<i32>,
    /// `(parent, child)`.
    children: Vec<(i32, i32)>,
    /// `(pid, signal)` that the process catches or blocks.
    catches: Vec<(i32, i32)>,
}

impl Fake {
    fn booted(catches: &[i32]) -> Self {
        Fake {
            init: Some(INIT),
            children: Vec::new(),
            catches: catches.iter().map(|&signal| (INIT, signal)).collect(),
        }
    }
}

impl Processes for Fake {
    fn container_init(&self, monitor: i32) -> Option<i32> {
        assert_eq!(monitor, MONITOR);
        self.init
    }

    fn first_child(&self, pid: i32) -> Option<i32> {
        self.children
            .iter()
            .find(|(parent, _)| *parent == pid)
            .map(|(_, child)| *child)
    }

    fn receives(&self, pid: i32, signal: i32) -> bool {
        self.catches.contains(&(pid, signal))
    }
}

/// Every kill(2) the machine tried, in order; the PIDs in `gone` fail
/// with ESRCH. Requests written go to `requests`; `no_fifo` makes them fail.
#[derive(Default)]
struct Sent {
    log: Vec<(i32, i32)>,
    gone: Vec<i32>,
    requests: Vec<(i32, String, Vec<u8>)>,
    no_fifo: bool,
}

impl Signals for Sent {
    fn send(&mut self, pid: i32, signal: i32) -> Result<(), Errno> {
        self.log.push((pid, signal));
        if self.gone.contains(&pid) {
            return Err(Errno::ESRCH);
        }
        Ok(())
    }

    fn request(&mut self, init: i32, path: &str, request: &[u8]) -> Result<(), String> {
        self.requests
            .push((init, path.to_owned(), request.to_vec()));
        if self.no_fifo {
            return Err(format!("{path}: ENOENT"));
        }
        Ok(())
    }
}

fn boot_stop() -> Stop {
    Stop::new(MONITOR, false, Halt::Signal("SIGUSR2"), TIMEOUT)
}

fn command_stop() -> Stop {
    Stop::new(MONITOR, true, Halt::Signal("SIGTERM"), TIMEOUT)
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

const TERM: StopCause = StopCause::Signal(Signal::SIGTERM);

#[test]
fn a_stop_sends_init_its_halt_signal_and_waits_for_the_deadline() {
    let (t0, fake, mut sent) = (Instant::now(), Fake::booted(&[USR2]), Sent::default());
    let mut stop = boot_stop();
    assert_eq!((stop.cause(), stop.wake_at()), (None, None));
    stop.request(TERM, t0, &fake, &mut sent);
    // Boot mode: init's own halt signal, not the one rootrun got.
    assert_eq!(sent.log, [(INIT, USR2)]);
    assert_eq!(stop.cause(), Some(TERM));
    assert_eq!(stop.wake_at(), Some(t0 + TIMEOUT));
    stop.tick(t0 + TIMEOUT - ms(1), &fake, &mut sent);
    assert_eq!(sent.log, [(INIT, USR2)], "nothing before the deadline");
}

#[test]
fn a_halt_init_looked_like_dropping_is_sent_again_once_when_it_shows_a_handler() {
    let (t0, mut fake, mut sent) = (Instant::now(), Fake::booted(&[]), Sent::default());
    let mut stop = boot_stop();
    stop.request(TERM, t0, &fake, &mut sent);
    assert_eq!(sent.log, [(INIT, USR2)], "sent anyway");
    assert_eq!(stop.wake_at(), Some(t0 + RETRY_EVERY));
    stop.tick(t0 + ms(100), &fake, &mut sent);
    stop.tick(t0 + RETRY_EVERY, &fake, &mut sent);
    assert_eq!(sent.log.len(), 1, "still no handler: not sent again");
    assert_eq!(stop.wake_at(), Some(t0 + 2 * RETRY_EVERY));
    fake.catches.push((INIT, USR2));
    stop.tick(t0 + ms(300), &fake, &mut sent);
    assert_eq!(sent.log.len(), 1, "not due yet");
    stop.tick(t0 + 2 * RETRY_EVERY, &fake, &mut sent);
    assert_eq!(sent.log, [(INIT, USR2), (INIT, USR2)]);
    assert_eq!(stop.wake_at(), Some(t0 + TIMEOUT));
    for later in [ms(600), ms(1000), ms(5000)] {
        stop.tick(t0 + later, &fake, &mut sent);
    }
    assert_eq!(sent.log.len(), 2, "sent again once only");
}

#[test]
fn a_dropped_halt_is_not_sent_again_to_a_pid_that_is_no_longer_init() {
    for now_init in [None, Some(INIT + 50)] {
        let (t0, mut fake, mut sent) = (Instant::now(), Fake::booted(&[]), Sent::default());
        let mut stop = boot_stop();
        stop.request(TERM, t0, &fake, &mut sent);
        // Init is gone; its PID now belongs to a process with a handler.
        fake.init = now_init;
        fake.catches.push((INIT, USR2));
        stop.tick(t0 + RETRY_EVERY, &fake, &mut sent);
        stop.tick(t0 + 2 * RETRY_EVERY, &fake, &mut sent);
        assert_eq!(sent.log, [(INIT, USR2)], "init now {now_init:?}");
        assert_eq!(stop.wake_at(), Some(t0 + TIMEOUT), "no retry left");
    }
}

#[test]
fn init_is_killed_at_the_deadline_and_the_monitor_kill_grace_later() {
    let (t0, fake, mut sent) = (Instant::now(), Fake::booted(&[USR2]), Sent::default());
    let mut stop = boot_stop();
    stop.request(TERM, t0, &fake, &mut sent);
    stop.tick(t0 + TIMEOUT, &fake, &mut sent);
    assert_eq!(sent.log, [(INIT, USR2), (INIT, KILL)]);
    assert_eq!(stop.wake_at(), Some(t0 + TIMEOUT + KILL_GRACE));
    stop.tick(t0 + TIMEOUT + KILL_GRACE - ms(1), &fake, &mut sent);
    assert_eq!(sent.log.len(), 2, "the monitor has its grace period");
    stop.tick(t0 + TIMEOUT + KILL_GRACE, &fake, &mut sent);
    assert_eq!(sent.log, [(INIT, USR2), (INIT, KILL), (MONITOR, KILL)]);
    assert_eq!(stop.wake_at(), None, "the last step");
    stop.tick(t0 + TIMEOUT * 10, &fake, &mut sent);
    stop.request(TERM, t0 + TIMEOUT * 10, &fake, &mut sent);
    assert_eq!(sent.log.len(), 3, "nothing after the monitor's SIGKILL");
}

#[test]
fn a_dropped_halt_is_not_sent_again_once_init_was_killed() {
    let (t0, mut fake, mut sent) = (Instant::now(), Fake::booted(&[]), Sent::default());
    let mut stop = boot_stop();
    stop.request(TERM, t0, &fake, &mut sent);
    // The retry and the deadline are both due: the kill wins.
    stop.tick(t0 + TIMEOUT, &fake, &mut sent);
    fake.catches.push((INIT, USR2));
    stop.tick(t0 + TIMEOUT + RETRY_EVERY, &fake, &mut sent);
    assert_eq!(sent.log, [(INIT, USR2), (INIT, KILL)]);
}

#[test]
fn a_stop_before_init_exists_kills_the_monitor() {
    let (t0, mut sent) = (Instant::now(), Sent::default());
    let fake = Fake::default();
    let mut stop = boot_stop();
    stop.request(TERM, t0, &fake, &mut sent);
    assert_eq!(sent.log, [(MONITOR, KILL)]);
    assert_eq!(stop.cause(), Some(TERM));
    assert_eq!(stop.wake_at(), None);
    stop.request(TERM, t0 + ms(10), &fake, &mut sent);
    assert_eq!(sent.log.len(), 1);
}

#[test]
fn a_second_request_escalates_at_once_and_the_first_cause_stays() {
    let (t0, fake, mut sent) = (Instant::now(), Fake::booted(&[USR2]), Sent::default());
    let mut stop = boot_stop();
    stop.request(StopCause::Escape, t0, &fake, &mut sent);
    assert_eq!(
        sent.log,
        [(INIT, USR2)],
        "the escape key asks with the halt"
    );
    stop.request(TERM, t0 + ms(500), &fake, &mut sent);
    assert_eq!(sent.log, [(INIT, USR2), (INIT, KILL)]);
    assert_eq!(stop.wake_at(), Some(t0 + ms(500) + KILL_GRACE));
    stop.request(TERM, t0 + ms(600), &fake, &mut sent);
    assert_eq!(sent.log, [(INIT, USR2), (INIT, KILL), (MONITOR, KILL)]);
    stop.request(TERM, t0 + ms(700), &fake, &mut sent);
    assert_eq!(sent.log.len(), 3);
    assert_eq!(stop.cause(), Some(StopCause::Escape));
}

#[test]
fn command_mode_sends_the_very_signal_to_the_command() {
    for signal in [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP] {
        let (t0, mut sent) = (Instant::now(), Sent::default());
        let mut fake = Fake::booted(&[]);
        fake.children.push((INIT, COMMAND));
        let mut stop = command_stop();
        stop.request(StopCause::Signal(signal), t0, &fake, &mut sent);
        assert_eq!(sent.log, [(COMMAND, signal as i32)]);
        // Not init: nothing is dropped, nothing to send again.
        assert_eq!(stop.wake_at(), Some(t0 + TIMEOUT), "{signal}");
    }
    // No command yet (liblxc's init has not forked it): init gets it.
    let (t0, fake, mut sent) = (Instant::now(), Fake::booted(&[]), Sent::default());
    let mut stop = command_stop();
    stop.request(StopCause::Signal(Signal::SIGINT), t0, &fake, &mut sent);
    assert_eq!(sent.log, [(INIT, libc::SIGINT)]);
    assert_eq!(stop.wake_at(), Some(t0 + RETRY_EVERY));
}

#[test]
fn an_unknown_halt_signal_or_a_failed_send_goes_to_the_next_step_at_once() {
    let (t0, fake, mut sent) = (Instant::now(), Fake::booted(&[USR2]), Sent::default());
    let mut stop = Stop::new(MONITOR, false, Halt::Signal("SIGNOPE"), TIMEOUT);
    stop.request(TERM, t0, &fake, &mut sent);
    assert_eq!(sent.log, [(INIT, KILL)]);
    assert_eq!(stop.wake_at(), Some(t0 + KILL_GRACE));

    let mut sent = Sent {
        gone: vec![INIT],
        ..Sent::default()
    };
    let mut stop = boot_stop();
    stop.request(TERM, t0, &fake, &mut sent);
    assert_eq!(sent.log, [(INIT, USR2), (INIT, KILL)]);
    assert_eq!(stop.wake_at(), Some(t0 + KILL_GRACE));
}

#[test]
fn halt_signal_names_map_to_numbers() {
    assert_eq!(signal_number("SIGPWR"), Some(libc::SIGPWR));
    assert_eq!(signal_number("SIGUSR2"), Some(libc::SIGUSR2));
    assert_eq!(signal_number("SIGRTMIN+4"), Some(libc::SIGRTMIN() + 4));
    assert_eq!(signal_number("SIGRTMIN+6"), Some(libc::SIGRTMIN() + 6));
    assert_eq!(signal_number("SIGRTMIN+99"), None);
    assert_eq!(signal_number("SIGNOPE"), None);
}

fn sysvinit_stop() -> Stop {
    let halt = Halt::Request {
        path: "/run/initctl",
        request: b"runlevel 0".to_vec(),
    };
    Stop::new(MONITOR, false, halt, TIMEOUT)
}

#[test]
fn an_init_that_takes_requests_gets_one_then_sigkill_at_the_deadline() {
    let (t0, fake, mut sent) = (Instant::now(), Fake::booted(&[]), Sent::default());
    let mut stop = sysvinit_stop();
    stop.request(TERM, t0, &fake, &mut sent);
    assert_eq!(
        sent.requests,
        [(INIT, "/run/initctl".to_owned(), b"runlevel 0".to_vec())]
    );
    assert!(sent.log.is_empty(), "no signal besides the request");
    assert_eq!(stop.take_note(), None);
    // A request is not dropped like a signal: no retry, only the deadline.
    assert_eq!(stop.wake_at(), Some(t0 + TIMEOUT));
    stop.tick(t0 + ms(400), &fake, &mut sent);
    assert!(sent.log.is_empty());
    stop.tick(t0 + TIMEOUT, &fake, &mut sent);
    assert_eq!(sent.log, [(INIT, KILL)]);
    stop.tick(t0 + TIMEOUT + KILL_GRACE, &fake, &mut sent);
    assert_eq!(sent.log, [(INIT, KILL), (MONITOR, KILL)]);
    assert_eq!(sent.requests.len(), 1, "asked once");
}

#[test]
fn a_request_init_cannot_take_yet_is_written_again_until_it_can() {
    let (t0, fake) = (Instant::now(), Fake::booted(&[libc::SIGPWR]));
    let mut sent = Sent {
        no_fifo: true,
        ..Sent::default()
    };
    let mut stop = sysvinit_stop();
    stop.request(TERM, t0, &fake, &mut sent);
    assert_eq!(sent.requests.len(), 1);
    assert!(sent.log.is_empty(), "no signal instead: {:?}", sent.log);
    let note = stop.take_note().expect("a note about the wait");
    assert!(note.contains("/run/initctl: ENOENT"), "{note}");
    assert!(note.contains("trying again every 200 ms"), "{note}");
    assert_eq!(stop.take_note(), None, "said once");
    assert_eq!(stop.wake_at(), Some(t0 + RETRY_EVERY));
    stop.tick(t0 + ms(100), &fake, &mut sent);
    assert_eq!(sent.requests.len(), 1, "not due yet");
    stop.tick(t0 + RETRY_EVERY, &fake, &mut sent);
    assert_eq!(sent.requests.len(), 2, "still no FIFO: tried again");
    assert_eq!(stop.wake_at(), Some(t0 + 2 * RETRY_EVERY));
    // init has made its FIFO: the next write goes through, and is the last.
    sent.no_fifo = false;
    stop.tick(t0 + 2 * RETRY_EVERY, &fake, &mut sent);
    assert_eq!(sent.requests.len(), 3);
    assert_eq!(stop.wake_at(), Some(t0 + TIMEOUT));
    for later in [ms(600), ms(1000), ms(5000)] {
        stop.tick(t0 + later, &fake, &mut sent);
    }
    assert_eq!(sent.requests.len(), 3, "taken: not written again");
    assert!(sent.log.is_empty());
}

#[test]
fn a_request_never_taken_ends_in_sigkill_at_the_deadline() {
    let (t0, mut fake) = (Instant::now(), Fake::booted(&[]));
    let mut sent = Sent {
        no_fifo: true,
        ..Sent::default()
    };
    let mut stop = sysvinit_stop();
    stop.request(TERM, t0, &fake, &mut sent);
    // A moment without init (none found in /proc): nothing written then.
    fake.init = None;
    stop.tick(t0 + RETRY_EVERY, &fake, &mut sent);
    assert_eq!(sent.requests.len(), 1);
    fake.init = Some(INIT);
    let mut now = t0 + 2 * RETRY_EVERY;
    while now < t0 + TIMEOUT {
        stop.tick(now, &fake, &mut sent);
        now += RETRY_EVERY;
    }
    let tries = sent.requests.len();
    assert!(tries > 40, "{tries} tries in {TIMEOUT:?}");
    assert!(sent.log.is_empty());
    stop.tick(t0 + TIMEOUT, &fake, &mut sent);
    assert_eq!(sent.log, [(INIT, KILL)]);
    stop.tick(t0 + TIMEOUT + RETRY_EVERY, &fake, &mut sent);
    assert_eq!(sent.requests.len(), tries, "no request after the kill");
    // A second request escalates as always.
    stop.request(TERM, t0 + TIMEOUT + ms(10), &fake, &mut sent);
    assert_eq!(sent.log, [(INIT, KILL), (MONITOR, KILL)]);
}

#[test]
fn a_command_gets_the_signal_even_with_a_request_planned() {
    let (t0, mut fake, mut sent) = (Instant::now(), Fake::booted(&[]), Sent::default());
    fake.children.push((INIT, COMMAND));
    let halt = Halt::Request {
        path: "/run/initctl",
        request: vec![0; 4],
    };
    let mut stop = Stop::new(MONITOR, true, halt, TIMEOUT);
    stop.request(TERM, t0, &fake, &mut sent);
    assert!(sent.requests.is_empty());
    assert_eq!(sent.log, [(COMMAND, libc::SIGTERM)]);
}
