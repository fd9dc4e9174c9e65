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

/// `rootrun: TEXT` on stderr, if stderr takes it. Control characters are
/// escaped: messages carry names and text from the image, which is hostile
/// (an escape sequence in a file name must not reach the terminal).
pub fn note(text: &str) {
    let _ = writeln!(io::stderr().lock(), "rootrun: {}", printable(text));
}

/// `text` with its control characters (ESC, BEL, CR, ...) written as
/// escapes (`\u{1b}`), for a terminal.
pub fn printable(text: &str) -> String {
    text.chars()
        .flat_map(|c| {
            let escaped: Vec<char> = if c.is_control() {
                c.escape_default().collect()
            } else {
                vec![c]
            };
            escaped
        })
        .collect()
}

/// `rootrun: warning: TEXT` on stderr, if stderr takes it.
pub fn warning(text: &str) {
    note(&format!("warning: {text}"));
}

#[cfg(test)]
mod tests {
    #[test]
    fn control_characters_are_escaped() {
        assert_eq!(
            super::printable("a\x1b]0;OWNED\x07b"),
            "a\\u{1b}]0;OWNED\\u{7}b"
        );
        assert_eq!(super::printable("plain: ü"), "plain: ü");
    }
}
