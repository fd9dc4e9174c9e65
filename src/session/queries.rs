//! Terminal queries in console output that no terminal will answer.
//!
//! A guest asks its terminal things: BusyBox's line editor sends `ESC[6n`
//! (where is the cursor?) before every prompt, other programs ask for the
//! device attributes (`ESC[c`) or the colours (`ESC]11;?`). When the console
//! is not interactive (stdin is a pipe, or rootrun is a background job of its
//! terminal), no answer can come back through rootrun: the query only
//! clutters a log, or makes the terminal type its answer into whatever
//! program reads it next (the shell, after rootrun ended). Those sequences
//! are dropped; every other one (colours, cursor moves, titles) is kept.
//!
//! The sequences (ECMA-48, and xterm's ctlseqs for the private ones) are
//! recognised in their 7-bit forms only: the 8-bit C1 bytes are also UTF-8
//! continuation bytes.

const ESC: u8 = 0x1b;
const BEL: u8 = 0x07;

/// A control sequence longer than this is nobody's query: passed on as it is.
const CSI_MAX: usize = 64;
/// Likewise for an OSC or DCS string (a clipboard write is long; a query not).
const STRING_MAX: usize = 512;

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Plain text.
    #[default]
    Ground,
    /// After ESC (and maybe intermediate bytes).
    Escape,
    /// In `ESC [` ... final byte.
    Csi,
    /// In `ESC ]` or `ESC P` ... BEL or `ESC \`; `esc`: the last byte was ESC.
    String { esc: bool },
}

/// Drops terminal queries from a byte stream; a sequence split across reads
/// is held until its end is known.
#[derive(Debug, Default)]
pub(crate) struct Queries {
    state: State,
    /// The sequence read so far, from its ESC.
    held: Vec<u8>,
}

impl Queries {
    /// Appends `input` without its queries to `out`.
    pub(crate) fn filter(&mut self, input: &[u8], out: &mut Vec<u8>) {
        for &byte in input {
            self.feed(byte, out);
        }
    }

    /// The end of the output: a sequence cut short is not a query, it goes
    /// out as it came.
    pub(crate) fn end(&mut self, out: &mut Vec<u8>) {
        out.append(&mut self.held);
        self.state = State::Ground;
    }

    fn feed(&mut self, byte: u8, out: &mut Vec<u8>) {
        match self.state {
            State::Ground if byte == ESC => self.start(),
            State::Ground => out.push(byte),
            State::Escape => self.escape(byte, out),
            State::Csi => self.csi(byte, out),
            State::String { esc } => self.string(byte, esc, out),
        }
    }

    fn start(&mut self) {
        self.held.push(ESC);
        self.state = State::Escape;
    }

    fn escape(&mut self, byte: u8, out: &mut Vec<u8>) {
        let first = self.held.len() == 1;
        match byte {
            b'[' if first => self.hold(byte, State::Csi),
            b']' | b'P' if first => self.hold(byte, State::String { esc: false }),
            // Intermediate bytes, as in `ESC ( B`.
            0x20..=0x2f if self.held.len() < CSI_MAX => self.held.push(byte),
            0x30..=0x7e => {
                self.held.push(byte);
                self.complete(out);
            }
            _ => self.abandon(byte, out),
        }
    }

    fn csi(&mut self, byte: u8, out: &mut Vec<u8>) {
        match byte {
            // Parameter and intermediate bytes.
            0x20..=0x3f if self.held.len() < CSI_MAX => self.held.push(byte),
            0x40..=0x7e => {
                self.held.push(byte);
                self.complete(out);
            }
            _ => self.abandon(byte, out),
        }
    }

    fn string(&mut self, byte: u8, esc: bool, out: &mut Vec<u8>) {
        match (esc, byte) {
            (false, BEL) | (true, b'\\') => {
                self.held.push(byte);
                self.complete(out);
            }
            (false, ESC) => self.hold(byte, State::String { esc: true }),
            // Any other ESC starts a new sequence: this one was cut short.
            (true, _) => {
                self.held.pop();
                out.append(&mut self.held);
                self.start();
                self.escape(byte, out);
            }
            (false, _) if self.held.len() < STRING_MAX => self.held.push(byte),
            (false, _) => self.abandon(byte, out),
        }
    }

    fn hold(&mut self, byte: u8, next: State) {
        self.held.push(byte);
        self.state = next;
    }

    /// A complete sequence: dropped if it is a query.
    fn complete(&mut self, out: &mut Vec<u8>) {
        if is_query(&self.held) {
            self.held.clear();
        } else {
            out.append(&mut self.held);
        }
        self.state = State::Ground;
    }

    /// Not a sequence after all (or too long to be a query): what was held
    /// goes out, and `byte` is read as plain text again.
    fn abandon(&mut self, byte: u8, out: &mut Vec<u8>) {
        out.append(&mut self.held);
        self.state = State::Ground;
        self.feed(byte, out);
    }
}

/// Whether a complete escape sequence (from its ESC) asks the terminal for
/// an answer.
fn is_query(sequence: &[u8]) -> bool {
    match sequence {
        // DECID: identify the terminal.
        [ESC, b'Z'] => true,
        [ESC, b'[', body @ ..] => csi_is_query(body),
        [ESC, b']', body @ ..] => osc_is_query(string_body(body)),
        [ESC, b'P', body @ ..] => {
            // DECRQSS (`$q`) and XTGETTCAP (`+q`).
            let body = string_body(body);
            body.starts_with(b"$q") || body.starts_with(b"+q")
        }
        _ => false,
    }
}

/// A string's body without its terminator (BEL or `ESC \`).
fn string_body(body: &[u8]) -> &[u8] {
    body.strip_suffix(&[BEL])
        .or_else(|| body.strip_suffix(&[ESC, b'\\']))
        .unwrap_or(body)
}

/// Whether a CSI body (after `ESC [`: prefix, parameters, intermediates,
/// final byte) is a request for a report.
fn csi_is_query(body: &[u8]) -> bool {
    let Some((&last, rest)) = body.split_last() else {
        return false;
    };
    // `<=>?` open a private parameter string.
    let (prefix, rest) = match rest.first() {
        Some(&p @ b'<'..=b'?') => (Some(p), &rest[1..]),
        _ => (None, rest),
    };
    let split = rest
        .iter()
        .position(|b| (0x20..=0x2f).contains(b))
        .unwrap_or(rest.len());
    let (params, intermediates) = rest.split_at(split);
    match (prefix, intermediates, last) {
        // DSR: status (5n), cursor position (6n, ?6n), and the private ones.
        (None | Some(b'?'), [], b'n') => true,
        // DA1, DA2, DA3. (`ESC[?...c` sets the Linux console's cursor.)
        (None | Some(b'>') | Some(b'='), [], b'c') => true,
        // DECRQM: is this mode set?
        (None | Some(b'?'), [b'$'], b'p') => true,
        // XTVERSION.
        (Some(b'>'), [], b'q') => true,
        // DECREQTPARM.
        (None, [], b'x') => true,
        // The kitty keyboard protocol's flags.
        (Some(b'?'), [], b'u') => params.is_empty(),
        // xterm window operations that report (sizes, position, state, title).
        (None, [], b't') => {
            let first = params.split(|&b| b == b';').next().unwrap_or_default();
            matches!(
                first,
                b"11" | b"13" | b"14" | b"15" | b"16" | b"18" | b"19" | b"20" | b"21"
            )
        }
        _ => false,
    }
}

/// Whether an OSC body asks for a value: one of its fields after the
/// command number is `?` (`10;?` foreground colour, `4;1;?` a palette
/// entry, `52;c;?` the clipboard).
fn osc_is_query(body: &[u8]) -> bool {
    body.split(|&b| b == b';')
        .skip(1)
        .any(|field| field == b"?")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filtered(reads: &[&[u8]]) -> Vec<u8> {
        let mut filter = Queries::default();
        let mut out = Vec::new();
        for read in reads {
            filter.filter(read, &mut out);
        }
        filter.end(&mut out);
        out
    }

    const QUERIES: [&[u8]; 20] = [
        b"\x1b[6n",
        b"\x1b[5n",
        b"\x1b[?6n",
        b"\x1b[c",
        b"\x1b[0c",
        b"\x1b[>c",
        b"\x1b[>0c",
        b"\x1b[=c",
        b"\x1b]11;?\x07",
        b"\x1b]10;?\x1b\\",
        b"\x1b]4;1;?\x07",
        b"\x1b]52;c;?\x07",
        b"\x1bP$qm\x1b\\",
        b"\x1bP+q544e\x1b\\",
        b"\x1b[?2004$p",
        b"\x1b[>q",
        b"\x1b[18t",
        b"\x1b[14;2t",
        b"\x1b[?u",
        b"\x1bZ",
    ];

    const KEPT: [&[u8]; 16] = [
        b"\x1b[1;31m",
        b"\x1b[0m",
        b"\x1b[H",
        b"\x1b[2J",
        b"\x1b[?25l",
        b"\x1b[?1c",
        b"\x1b[2 q",
        b"\x1b[>4;1m",
        b"\x1b[8;24;80t",
        b"\x1b[u",
        b"\x1b[>1u",
        b"\x1b]0;title\x07",
        b"\x1b]8;;http://x/?a\x1b\\",
        b"\x1b(B",
        b"\x1b7",
        b"\x1bc",
    ];

    #[test]
    fn queries_are_dropped_and_the_text_around_them_kept() {
        for query in QUERIES {
            let input = [b"a".as_slice(), query, b"b"].concat();
            assert_eq!(filtered(&[&input]), b"ab", "{query:?}");
        }
    }

    #[test]
    fn other_escape_sequences_are_kept() {
        for sequence in KEPT {
            let input = [b"a".as_slice(), sequence, b"b"].concat();
            assert_eq!(filtered(&[&input]), input, "{sequence:?}");
        }
    }

    #[test]
    fn a_sequence_split_across_reads_is_recognised_at_every_split() {
        let input = [
            b"/ # ".as_slice(),
            b"\x1b[6n",
            b"\x1b[1;32mok\x1b[0m",
            b"\x1b]11;?\x1b\\!",
        ]
        .concat();
        let expected = b"/ # \x1b[1;32mok\x1b[0m!".to_vec();
        assert_eq!(filtered(&[&input]), expected);
        for at in 0..input.len() {
            let (a, b) = input.split_at(at);
            assert_eq!(filtered(&[a, b]), expected, "split at {at}");
        }
        let bytes: Vec<&[u8]> = input.chunks(1).collect();
        assert_eq!(filtered(&bytes), expected, "one byte a read");
    }

    #[test]
    fn a_partial_sequence_is_held_until_the_next_read_and_given_back_at_the_end() {
        let mut filter = Queries::default();
        let mut out = Vec::new();
        filter.filter(b"x\x1b[6", &mut out);
        assert_eq!(out, b"x", "held: it may still become a query");
        filter.end(&mut out);
        assert_eq!(out, b"x\x1b[6");
        // The filter starts afresh after its end.
        filter.filter(b"\x1b[6ny", &mut out);
        assert_eq!(out, b"x\x1b[6y");
    }

    #[test]
    fn sequences_cut_short_or_too_long_pass_through() {
        // A new ESC ends the sequence before it: only the query goes.
        assert_eq!(filtered(&[b"\x1b[6\x1b[6n."]), b"\x1b[6.");
        assert_eq!(filtered(&[b"\x1b]11;\x1b[6n."]), b"\x1b]11;.");
        // A control byte inside a CSI is not part of it.
        assert_eq!(filtered(&[b"\x1b[6\r\nn"]), b"\x1b[6\r\nn");
        assert_eq!(filtered(&[b"\x1b\x1b[c"]), b"\x1b");
        // A long OSC (a clipboard write) is not held without bound.
        let long = [b"\x1b]52;c;".as_slice(), &[b'A'; 2000], b"\x07"].concat();
        assert_eq!(filtered(&[&long]), long);
        let mut filter = Queries::default();
        let mut out = Vec::new();
        filter.filter(&long[..1500], &mut out);
        assert_eq!(out, &long[..1500], "given up on after STRING_MAX bytes");
        let csi = [b"\x1b[".as_slice(), &[b'1'; 100], b"n"].concat();
        assert_eq!(filtered(&[&csi]), csi);
    }
}
