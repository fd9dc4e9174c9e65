//! Boot checks on the console (`--expect`, `--timeout`, `--console-log`):
//! what the guest printed is matched against the pattern, kept in the log
//! file, and its last lines are kept for a report when the check fails.

use std::fs::File;
use std::io::Write;

use regex::bytes::Regex;

/// Text kept for matching: a pattern may span reads, not more than this.
const WINDOW: usize = 16 * 1024;
/// What is kept for the report of a failed check.
const TAIL: usize = 4 * 1024;
/// Lines of it shown on stderr.
const TAIL_LINES: usize = 20;

pub(crate) struct Watch {
    expect: Option<Regex>,
    /// Bytes, not text: a UTF-8 sequence split across reads still matches.
    window: Vec<u8>,
    matched: bool,
    reported: bool,
    log: Option<File>,
    tail: Vec<u8>,
}

impl Watch {
    pub(super) fn new(expect: Option<Regex>, log: Option<File>) -> Self {
        Watch {
            expect,
            window: Vec::new(),
            matched: false,
            reported: false,
            log,
            tail: Vec::new(),
        }
    }

    /// Console output as read from the pty.
    pub(super) fn feed(&mut self, bytes: &[u8]) {
        if let Some(log) = self.log.as_mut() {
            // A full disk ends the log, not the boot.
            if log.write_all(bytes).is_err() {
                self.log = None;
            }
        }
        self.tail.extend_from_slice(bytes);
        if self.tail.len() > TAIL {
            self.tail.drain(..self.tail.len() - TAIL);
        }
        let Some(expect) = &self.expect else { return };
        if self.matched {
            return;
        }
        self.window.extend_from_slice(bytes);
        if expect.is_match(&self.window) {
            self.matched = true;
        }
        if self.window.len() > WINDOW {
            self.window.drain(..self.window.len() - WINDOW);
        }
    }

    /// True once, when the pattern has just matched.
    pub(super) fn take_match(&mut self) -> bool {
        let first = self.matched && !self.reported;
        self.reported |= first;
        first
    }

    pub(super) fn matched(&self) -> bool {
        self.matched
    }

    /// The last lines the console printed, CR LF as LF.
    pub(super) fn last_lines(&self) -> String {
        let text = String::from_utf8_lossy(&self.tail).replace("\r\n", "\n");
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(TAIL_LINES)..].join("\n")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pattern_split_across_reads_matches_once() {
        let mut watch = Watch::new(Regex::new("log+in:").ok(), None);
        watch.feed(b"Debian 12 box lo");
        assert!(!watch.take_match());
        watch.feed(b"gin: ");
        assert!(watch.take_match());
        assert!(!watch.take_match(), "reported once");
        assert!(watch.matched());
    }

    #[test]
    fn a_character_split_across_reads_still_matches() {
        let mut watch = Watch::new(Regex::new("Grüß").ok(), None);
        let text = "Grüß Gott".as_bytes();
        watch.feed(&text[..3]); // "Gr" and half of 'ü'
        watch.feed(&text[3..]);
        assert!(watch.take_match());
    }

    #[test]
    fn the_tail_keeps_the_last_lines() {
        let mut watch = Watch::new(None, None);
        for i in 0..100 {
            watch.feed(format!("line {i}\r\n").as_bytes());
        }
        let tail = watch.last_lines();
        assert!(tail.ends_with("line 99"), "{tail}");
        assert_eq!(tail.lines().count(), TAIL_LINES);
        assert!(!tail.contains('\r'));
    }
}
