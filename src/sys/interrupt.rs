//! Ctrl-C, SIGTERM and SIGHUP as a flag to poll instead of the end of
//! rootrun, for work that must clean up after itself when interrupted.

use std::sync::atomic::{AtomicI32, Ordering};

use nix::sys::signal::{sigaction, SaFlags, SigAction, SigHandler, SigSet, Signal};

/// The first interrupting signal's number, 0 until one comes.
static INTERRUPT: AtomicI32 = AtomicI32::new(0);

extern "C" fn record(signal: libc::c_int) {
    // Only an atomic store: async-signal-safe (signal-safety(7)).
    INTERRUPT.store(signal, Ordering::Relaxed);
}

/// Makes the next SIGINT, SIGTERM or SIGHUP set the returned flag to its
/// number instead of killing rootrun. Each handler is used once
/// (SA_RESETHAND): a second Ctrl-C kills rootrun, even during a long
/// clean-up. SA_RESTART: system calls go on; the flag is polled.
pub fn catch_once() -> &'static AtomicI32 {
    let action = SigAction::new(
        SigHandler::Handler(record),
        SaFlags::SA_RESTART | SaFlags::SA_RESETHAND,
        SigSet::empty(),
    );
    for signal in [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP] {
        // SAFETY: the handler only stores to an atomic, which is
        // async-signal-safe; nothing else is replaced.
        let _ = unsafe { sigaction(signal, &action) };
    }
    &INTERRUPT
}
