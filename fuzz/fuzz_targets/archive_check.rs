//! tar and cpio newc archives, plain or compressed (gzip, xz, zstd, bzip2),
//! read to their end as rootrun unpacks them, writing nothing: the
//! decompressors, both readers and the name and hard-link rules.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "input_file.rs"]
mod input_file;

fuzz_target!(|data: &[u8]| {
    let path = input_file::path_of(data);
    let _ = rootrun::image::archive::check_only(&path);
});
