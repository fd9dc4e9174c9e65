//! Ctrl-C, SIGTERM and SIGHUP as a flag to poll instead of the end of
//! rootrun, for work that must clean up after itself when interrupted.

use std::sync::atomic::{AtomicI32, Ordering};

use nix::sys::signal::{sigaction, SaFlags, SigAction, SigHandler, SigSet, Signal};

/// The first interrupting signal's number, 0 until one comes.
static INTERRUPT: AtomicI32 = AtomicI32::new(0);

extern "C" fn record(signal: libc::c_int) {
    // Only an atomic operation: async-signal-safe (signal-safety(7)). The
    // first signal is the one that counts.
    let _ = INTERRUPT.compare_exchange(0, signal, Ordering::Relaxed, Ordering::Relaxed);
}

/// Makes the next SIGINT, SIGTERM or SIGHUP set the returned flag to its
/// number instead of killing rootrun. Each handler is used once
/// (SA_RESETHAND): a second Ctrl-C kills rootrun, even during a long
/// clean-up. SA_RESTART: system calls go on; the flag is polled. A signal
/// rootrun was started with ignored (`nohup`, a script's `&` job) stays
/// ignored.
pub fn catch_once() -> &'static AtomicI32 {
    let action = SigAction::new(
        SigHandler::Handler(record),
        SaFlags::SA_RESTART | SaFlags::SA_RESETHAND,
        SigSet::empty(),
    );
    for signal in [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP] {
        // SAFETY: the handler only does an atomic operation, which is
        // async-signal-safe; the previous action is put back as it was.
        let before = unsafe { sigaction(signal, &action) };
        if let Ok(before) = before {
            if matches!(before.handler(), SigHandler::SigIgn) {
                // SAFETY: as above; restores the inherited disposition.
                let _ = unsafe { sigaction(signal, &before) };
            }
        }
    }
    &INTERRUPT
}
