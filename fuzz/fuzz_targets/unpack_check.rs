//! `rootrun unpack`'s checks before anything is written: the whole tree walked
//! (names, duplicates, entry types against inodes, loops and DAGs, depth and
//! entry bounds) and the xattr table read. Never touches a destination.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "input_file.rs"]
mod input_file;

fuzz_target!(|data: &[u8]| {
    let path = input_file::path_of(data);
    let _ = rootrun::image::unpack::check_only(&path);
});
