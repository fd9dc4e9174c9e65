//! When piped input may go to the console.

use std::time::{Duration, Instant};

/// How long the console must be quiet before piped input goes in.
const QUIET: Duration = Duration::from_millis(500);

/// Holds piped input until the console has printed something and then been
/// quiet for `QUIET`: inits and shells flush the console's input queue while
/// they start (piped input written at once was lost with BusyBox), and a
/// script feeding `rootrun IMG` cannot see the prompt. Terminal input is never
/// held: a person types after seeing the prompt.
#[derive(Debug)]
pub(super) struct InputGate {
    open: bool,
    last_output: Option<Instant>,
}

impl InputGate {
    /// `open`: the input is a person's, at an interactive terminal.
    pub(super) fn new(open: bool) -> Self {
        InputGate {
            open,
            last_output: None,
        }
    }

    pub(super) fn saw_output(&mut self, at: Instant) {
        if !self.open {
            self.last_output = Some(at);
        }
    }

    /// When the gate opens, if the console has printed anything yet.
    pub(super) fn opens_at(&self) -> Option<Instant> {
        match (self.open, self.last_output) {
            (false, Some(at)) => Some(at + QUIET),
            _ => None,
        }
    }

    /// Whether input may go in now; once open, the gate stays open.
    pub(super) fn is_open(&mut self, now: Instant) -> bool {
        if !self.open && self.opens_at().is_some_and(|at| now >= at) {
            self.open = true;
        }
        self.open
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terminal_input_is_never_held() {
        let mut gate = InputGate::new(true);
        assert!(gate.is_open(Instant::now()));
        gate.saw_output(Instant::now());
        assert_eq!(gate.opens_at(), None);
    }

    #[test]
    fn piped_input_waits_for_output_then_quiet_and_stays_open() {
        let t0 = Instant::now();
        let mut gate = InputGate::new(false);
        assert!(!gate.is_open(t0 + QUIET * 10), "nothing printed yet");
        assert_eq!(gate.opens_at(), None);
        gate.saw_output(t0);
        gate.saw_output(t0 + QUIET / 2);
        assert_eq!(gate.opens_at(), Some(t0 + QUIET / 2 + QUIET));
        assert!(!gate.is_open(t0 + QUIET));
        assert!(gate.is_open(t0 + QUIET / 2 + QUIET));
        gate.saw_output(t0 + QUIET * 3);
        assert!(gate.is_open(t0 + QUIET * 3), "open for good");
        assert_eq!(gate.opens_at(), None);
    }
}
