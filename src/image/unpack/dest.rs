//! The destination directory: it must be empty or not exist, and it is opened once, without
//! following a symlink; everything after that is relative to this fd. On failure, a DIR that
//! rootrun created is removed again, and a DIR the user had made is left with a note.

use std::ffi::CString;
use std::io::ErrorKind;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::DirBuilderExt;
use std::path::Path;

use nix::errno::Errno;

use super::error::{Cleanup, Failure};
use super::scan::MAX_DEPTH;
use crate::sys::fsops;

/// The name of the note left in a pre-existing DIR after a failed unpack.
pub const NOTE_NAME: &str = ".rootrun-unpack-incomplete";

pub struct Dest {
    pub fd: OwnedFd,
    /// Whether rootrun created the directory (and so may remove it).
    pub created: bool,
}

pub fn prepare(path: &Path) -> Result<Dest, Failure> {
    let c_path = CString::new(path.as_os_str().as_bytes()).map_err(|_| Failure::Dest {
        op: "name",
        errno: Errno::EINVAL,
    })?;
    let created = match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_symlink() => return Err(Failure::DestSymlink),
        Ok(meta) if !meta.is_dir() => return Err(Failure::DestNotDir),
        Ok(_) => false,
        Err(e) if e.kind() == ErrorKind::NotFound => {
            // 0700 until the image's root mode is applied at the end: nobody else can plant
            // entries while extraction runs.
            std::fs::DirBuilder::new()
                .mode(0o700)
                .create(path)
                .map_err(|e| Failure::Dest {
                    op: "create",
                    errno: io_errno(&e),
                })?;
            true
        }
        Err(e) => {
            return Err(Failure::Dest {
                op: "stat",
                errno: io_errno(&e),
            })
        }
    };
    let fd = match fsops::open_dir_path(&c_path) {
        Ok(fd) => fd,
        Err(errno) => {
            if created {
                let _ = std::fs::remove_dir(path);
            }
            return Err(Failure::Dest { op: "open", errno });
        }
    };
    if !created {
        let empty =
            fsops::dir_is_empty(fd.as_fd()).map_err(|errno| Failure::Dest { op: "list", errno })?;
        if !empty {
            return Err(Failure::DestNotEmpty);
        }
    }
    Ok(Dest { fd, created })
}

/// Removes what was extracted (rootrun's own DIR), or leaves a note in the user's DIR.
pub fn clean_up(dest: Dest, path: &Path, entries: u64, failure: &Failure) -> Cleanup {
    if dest.created {
        let emptied = fsops::remove_contents(dest.fd.as_fd(), MAX_DEPTH + 1);
        drop(dest.fd);
        return match emptied.and_then(|()| std::fs::remove_dir(path).map_err(|e| io_errno(&e))) {
            Ok(()) => Cleanup::Removed,
            Err(errno) => Cleanup::RemoveFailed(errno),
        };
    }
    let note = write_note(&dest.fd, entries, failure);
    Cleanup::LeftPartial { entries, note }
}

fn write_note(dir: &OwnedFd, entries: u64, failure: &Failure) -> Option<String> {
    use std::io::Write;
    let name = CString::new(NOTE_NAME).ok()?;
    // The image may hold an entry of that name already: then there is no note, only the error.
    let fd = fsops::create_file_at(dir.as_fd(), &name, 0o644).ok()?;
    let mut file = std::fs::File::from(fd);
    let text = format!(
        "rootrun unpack failed after extracting {entries} entries; this tree is incomplete.\n\
         error: {failure}\n"
    );
    file.write_all(text.as_bytes()).ok()?;
    Some(NOTE_NAME.to_string())
}

fn io_errno(e: &std::io::Error) -> Errno {
    Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO))
}
