//! Reading binfmt_misc where it is not mounted.
//!
//! Not mounted in rootrun's view does not mean empty: the kernel keeps one
//! binfmt_misc instance per user namespace, alive while it is mounted
//! anywhere (another mount namespace, a container). A child process mounts
//! it in a private mount namespace of its own, lists it and exits; the mount
//! goes with it, so planning changes nothing.

use std::io::Read;
use std::os::fd::OwnedFd;
use std::path::Path;

use nix::sys::wait::{waitpid, WaitStatus};

use super::{mount, namespace, process, SysError};

/// A listing of binfmt_misc: `(name, contents)` of every file, `status`
/// and `register` included, in the kernel's order (newest entry first).
pub type Listing = Vec<(String, String)>;

/// At most this much of a listing is read (hundreds of entries).
const LISTING_MAX: u64 = 4 << 20;

/// binfmt_misc mounted at `dir` in a throwaway namespace and listed; None
/// when that cannot be done (not root, no binfmt_misc in this kernel).
pub fn list_unmounted(dir: &Path) -> Option<Listing> {
    let (read_end, write_end) = nix::unistd::pipe().ok()?;
    let child = process::spawn(|| {
        if let Some(text) = list_in_own_namespace(dir) {
            let _ = write_all(&write_end, text.as_bytes());
        }
    })
    .ok()?;
    drop(write_end);
    let mut bytes = Vec::new();
    let read = std::fs::File::from(read_end)
        .take(LISTING_MAX)
        .read_to_end(&mut bytes);
    let status = waitpid(child, None);
    if read.is_err() || !matches!(status, Ok(WaitStatus::Exited(_, 0))) {
        return None;
    }
    decode(&bytes)
}

/// In the child: a private namespace, binfmt_misc on `dir`, the listing.
fn list_in_own_namespace(dir: &Path) -> Option<String> {
    namespace::enter_private_mount_namespace().ok()?;
    let _mounted = mount::binfmt_misc(dir).ok()?;
    let mut text = String::new();
    for entry in std::fs::read_dir(dir).ok()?.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let contents = std::fs::read_to_string(entry.path()).unwrap_or_default();
        // NUL separates: neither a file name nor an entry's text holds one.
        text.push_str(&name);
        text.push('\0');
        text.push_str(&contents);
        text.push('\0');
    }
    Some(text)
}

fn write_all(fd: &OwnedFd, mut bytes: &[u8]) -> Result<(), SysError> {
    while !bytes.is_empty() {
        match nix::unistd::write(fd, bytes) {
            Ok(n) => bytes = &bytes[n..],
            Err(nix::errno::Errno::EINTR) => {}
            Err(e) => {
                return Err(SysError::new(
                    "write the binfmt_misc listing to",
                    "a pipe",
                    e,
                ))
            }
        }
    }
    Ok(())
}

fn decode(bytes: &[u8]) -> Option<Listing> {
    let text = std::str::from_utf8(bytes).ok()?;
    let mut fields = text.split('\0');
    let mut listing = Vec::new();
    while let (Some(name), Some(contents)) = (fields.next(), fields.next()) {
        listing.push((name.to_owned(), contents.to_owned()));
    }
    Some(listing)
}

#[cfg(test)]
mod tests {
    #[test]
    fn listings_decode_in_order() {
        let listing = super::decode(b"qemu-arm\0enabled\ninterpreter /q\n\0status\0enabled\n\0");
        assert_eq!(
            listing,
            Some(vec![
                ("qemu-arm".into(), "enabled\ninterpreter /q\n".into()),
                ("status".into(), "enabled\n".into())
            ])
        );
    }
}
