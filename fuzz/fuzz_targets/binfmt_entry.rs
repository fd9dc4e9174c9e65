//! binfmt_misc text: an entry file as /proc/sys/fs/binfmt_misc/NAME shows it,
//! and a registration line as written to `register`. The input is the text,
//! then optionally a NUL and the head of a file to match the parsed entry
//! against (the kernel's choice).
#![no_main]

use libfuzzer_sys::fuzz_target;
use rootrun::arch::{parse_entry, parse_register_line, select, OrderKey};

fuzz_target!(|data: &[u8]| {
    let (text, head) = match data.iter().position(|&b| b == 0) {
        Some(at) => (&data[..at], &data[at + 1..]),
        None => (data, &[][..]),
    };
    let text = String::from_utf8_lossy(text);
    if let Ok(entry) = parse_entry("fuzz", &text, OrderKey { rank: 1 }) {
        let _ = entry.flags.letters();
        let _ = select(std::slice::from_ref(&entry), head, "/bin/prog.ext");
    }
    if let Ok(registration) = parse_register_line(&text) {
        let _ = format!("{registration:?}");
    }
});
