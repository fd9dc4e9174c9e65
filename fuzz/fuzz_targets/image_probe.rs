//! Image probing as `rootrun inspect` and a run do it: the SquashFS opened
//! (superblock through backhand, then only the metadata blocks each lookup
//! needs: inodes, directory listings, id and fragment table entries),
//! paths and symlinks resolved inside the image, file heads read from their
//! first data blocks, init's ELF header classified, metadata.yaml,
//! /etc/inittab and /etc/passwd read.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rootrun::arch::Arch;
use rootrun::image::{examine, users, Image, InitUse};

#[path = "input_file.rs"]
mod input_file;

fuzz_target!(|data: &[u8]| {
    let path = input_file::path_of(data);
    let Ok(image) = Image::open(&path) else {
        return;
    };
    let _ = image.squashfs_facts();
    let _ = examine(&image, "/sbin/init", None, InitUse::Boot);
    // Command mode with --arch: every probe runs, whatever init turns out to be.
    let _ = examine(
        &image,
        "/bin/sh",
        Arch::from_name("aarch64"),
        InitUse::LookOnly,
    );
    if let Ok(passwd) = image.read_head("/etc/passwd", 64 * 1024) {
        let _ = users::from_passwd(&String::from_utf8_lossy(&passwd), "root");
    }
    let _ = image.resolve("/usr/libexec/../../../etc/./hostname");
});
