//! rootrun's own words on stdout and stderr, written without panicking.
//!
//! `println!` and `eprintln!` panic when the write fails (a closed pipe,
//! `> /dev/full`). A report on stdout returns the failure so the command can
//! end quietly (closed pipe) or say so once; a note on stderr is best effort.

use std::io::{self, Write};

use crate::error::Error;

/// Writes a report (inspect, a dry run) to stdout.
pub fn stdout(text: &str) -> Result<(), Error> {
    let mut out = io::stdout().lock();
    out.write_all(text.as_bytes())
        .and_then(|()| out.flush())
        .map_err(Error::Stdout)
}

/// `rootrun: TEXT` on stderr, if stderr takes it.
pub fn note(text: &str) {
    let _ = writeln!(io::stderr().lock(), "rootrun: {text}");
}

/// `rootrun: warning: TEXT` on stderr, if stderr takes it.
pub fn warning(text: &str) {
    note(&format!("warning: {text}"));
}
