//! Warming the page cache for the container's first exec.

use std::fs;
use std::os::fd::OwnedFd;
use std::path::PathBuf;

use nix::sys::signal::Signal;
use nix::unistd::Pid;

use crate::sys::process;
use crate::sys::rootfs;

/// A child that reads the files the container's first exec needs, beside
/// the liblxc monitor: the SquashFS was just mounted, so its pages are cold,
/// and decompressing them (about 10 ms for BusyBox from a gzip image, on the
/// kernel's single decompressor) then overlaps liblxc's container setup
/// instead of following it. Best effort: a failed fork only costs time.
/// Killed and reaped on drop, normally long done by then.
pub struct Prefetch(Option<Pid>);

impl Prefetch {
    /// `quiet`: the child's stdio goes to /dev/null (`-d`).
    pub fn start(root: &OwnedFd, files: &[PathBuf], quiet: bool) -> Self {
        let rootrun = nix::unistd::getpid();
        Prefetch(
            process::spawn(|| {
                if quiet {
                    process::stdio_to_null();
                }
                // Its open files would keep the namespace's mounts and the
                // loop device alive after a SIGKILLed rootrun.
                if process::die_with_parent(rootrun).is_ok() {
                    warm_page_cache(root, files);
                }
            })
            .ok(),
        )
    }
}

impl Drop for Prefetch {
    fn drop(&mut self) {
        if let Some(pid) = self.0 {
            let _ = nix::sys::signal::kill(pid, Signal::SIGKILL);
            let _ = nix::sys::wait::waitpid(pid, None);
        }
    }
}

/// Reads at most this much of each file: exec touches only part of a large
/// program, and the child must not outlive the container's start by much.
const PREFETCH_MAX: u64 = 64 << 20;

/// Reads the regular files among `files`, at most `PREFETCH_MAX` bytes of
/// each; returns how many bytes it read. The image is untrusted: a FIFO (or
/// a device) in a program's place is opened without blocking and skipped.
fn warm_page_cache(root: &OwnedFd, files: &[PathBuf]) -> u64 {
    let mut buf = vec![0u8; 128 * 1024];
    let mut total = 0;
    for path in files {
        let Ok(fd) = rootfs::open_in_root(root, path, libc::O_RDONLY | libc::O_NONBLOCK) else {
            continue;
        };
        let file = fs::File::from(fd);
        if !file.metadata().is_ok_and(|m| m.is_file()) {
            continue;
        }
        let mut file = std::io::Read::take(file, PREFETCH_MAX);
        while let Ok(n @ 1..) = std::io::Read::read(&mut file, &mut buf) {
            total += n as u64;
        }
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefetch_reads_regular_files_up_to_the_cap_and_skips_fifos() {
        let dir = std::env::temp_dir().join(format!("rootrun-prefetch-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(dir.join("bin")).unwrap();
        fs::write(dir.join("bin/small"), vec![7u8; 5000]).unwrap();
        // Sparse: costs no disk, reads as zeros.
        let big = fs::File::create(dir.join("bin/big")).unwrap();
        big.set_len(PREFETCH_MAX + (1 << 20)).unwrap();
        nix::unistd::mkfifo(&dir.join("bin/fifo"), nix::sys::stat::Mode::S_IRWXU).unwrap();
        let root: OwnedFd = fs::File::open(&dir).unwrap().into();
        let files = [
            PathBuf::from("/bin/small"),
            PathBuf::from("/bin/missing"),
            // Would block forever in open(2) without a writer.
            PathBuf::from("/bin/fifo"),
            PathBuf::from("/bin/big"),
        ];
        let read = warm_page_cache(&root, &files);
        fs::remove_dir_all(&dir).unwrap();
        assert_eq!(read, 5000 + PREFETCH_MAX);
    }
}
