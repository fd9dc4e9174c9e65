//! The fuzz input as a file path, for the APIs that open an image by path
//! (`Image::open`): one memfd per process, rewritten for every input, reached
//! through /proc/self/fd. Nothing lands on disk, and nothing is left behind.

use std::fs::File;
use std::io::{Seek, Write};
use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::sync::OnceLock;

use nix::sys::memfd::{memfd_create, MFdFlags};

static MEMFD: OnceLock<File> = OnceLock::new();

/// Writes `data` into this process's memfd and returns a path that opens it.
pub fn path_of(data: &[u8]) -> PathBuf {
    let mut file: &File = MEMFD.get_or_init(|| {
        File::from(memfd_create(c"rootrun-fuzz-image", MFdFlags::empty()).expect("memfd_create"))
    });
    file.set_len(0).expect("truncate the memfd");
    file.rewind().expect("rewind the memfd");
    file.write_all(data).expect("write the memfd");
    PathBuf::from(format!("/proc/self/fd/{}", file.as_raw_fd()))
}
