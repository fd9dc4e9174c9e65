//! Checks, before liblxc starts anything, that the container's first program
//! can be exec'd inside the root: it exists (127), is an executable file
//! (126), and the loader its ELF header names (PT_INTERP) or the interpreter
//! its `#!` line names exists too. Otherwise exec(2) fails with ENOENT deep
//! inside liblxc, which reads as "init is missing" when it is the loader.

use std::io::Read;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use crate::arch;
use crate::error::Error;
use crate::sys::rootfs::{self, Executable};

/// The PATH liblxc's init searches for a command without a slash.
pub const CONTAINER_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
/// Enough for an ELF header with its program headers, or a `#!` line.
const HEAD: u64 = 4096;

/// Returns the files exec will read first (the program and its loader or
/// interpreter), for warming the page cache.
pub fn check(program: &str, root: &OwnedFd) -> Result<Vec<PathBuf>, Error> {
    let path = find(program, root)?;
    let needed = needs(&path, root);
    match needed {
        Some(needed) if rootfs::check_executable(root, &needed) == Executable::Missing => {
            Err(Error::NotFound {
                what: needed.display().to_string(),
                hint: Some(format!(
                    "{} needs it to run; the image lacks its loader or interpreter",
                    path.display()
                )),
            })
        }
        Some(needed) => Ok(vec![path, needed]),
        None => Ok(vec![path]),
    }
}

/// The path exec would run: as given with a slash, else searched on PATH.
fn find(program: &str, root: &OwnedFd) -> Result<PathBuf, Error> {
    let candidates: Vec<PathBuf> = if program.contains('/') {
        vec![PathBuf::from(program)]
    } else {
        CONTAINER_PATH
            .split(':')
            .map(|dir| Path::new(dir).join(program))
            .collect()
    };
    let mut not_executable = None;
    for path in candidates {
        match rootfs::check_executable(root, &path) {
            Executable::Ok => return Ok(path),
            Executable::NotExecutable => not_executable = not_executable.or(Some(path)),
            Executable::Missing => {}
        }
    }
    match not_executable {
        Some(path) => Err(Error::NotExecutable {
            what: path.display().to_string(),
        }),
        None if program.contains('/') => Err(Error::NotFound {
            what: program.to_owned(),
            hint: None,
        }),
        None => Err(Error::NotFound {
            what: program.to_owned(),
            hint: Some(format!("searched {CONTAINER_PATH}")),
        }),
    }
}

/// The loader (PT_INTERP) or `#!` interpreter that `path` needs, if any.
fn needs(path: &Path, root: &OwnedFd) -> Option<PathBuf> {
    let fd = rootfs::open_in_root(root, path, libc::O_RDONLY).ok()?;
    let mut head = Vec::new();
    std::fs::File::from(fd)
        .take(HEAD)
        .read_to_end(&mut head)
        .ok()?;
    if let Some(line) = head.strip_prefix(b"#!") {
        let line = line.split(|&b| b == b'\n').next()?;
        let interpreter = String::from_utf8_lossy(line)
            .split_whitespace()
            .next()?
            .to_owned();
        return Some(PathBuf::from(interpreter));
    }
    arch::identify(&head).ok()?.interp().map(Path::to_path_buf)
}
