//! ELF classification from a file's first bytes: goblin's header parse,
//! rootrun's e_flags reading and its own program-header walk (PT_INTERP),
//! then the binfmt_misc choice among qemu's patterns for every architecture,
//! and systemd's version from the same bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rootrun::arch::{self, Arch, Entry, Flags, OrderKey};

fuzz_target!(|data: &[u8]| {
    if let Ok(facts) = arch::identify(data) {
        let _ = facts.interp();
        let _ = facts.is_static();
        let _ = facts.arch.names();
    }
    let entries: Vec<Entry> = Arch::all()
        .enumerate()
        .map(|(rank, a)| Entry {
            name: format!("qemu-{}", a.qemu()),
            enabled: true,
            kind: arch::qemu_pattern(a).kind(),
            interpreter: format!("/usr/bin/qemu-{}-static", a.qemu()).into(),
            flags: Flags::default(),
            order_key: OrderKey { rank: rank as u64 },
        })
        .collect();
    let _ = arch::select(&entries, data, "/sbin/init");
    let _ = rootrun::image::systemd_version(data);
});
