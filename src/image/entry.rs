//! Checks that the container's first program can be exec'd inside the root:
//! it exists (127), is an executable file (126), and the loader its ELF
//! header names (PT_INTERP) or the interpreter its `#!` line names exists
//! too. Otherwise exec(2) fails with ENOENT deep inside liblxc, which reads
//! as "init is missing" when it is the loader.
//!
//! The same rules run on the mounted root just before the start and on the
//! unmounted image (through backhand) for `--dry-run`, so the dry run fails
//! where the run would.

use std::path::{Path, PathBuf};

use crate::arch;
use crate::error::Error;

use super::{FileKind, Image};

/// The PATH liblxc's init searches for a command without a slash.
pub const CONTAINER_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
/// Enough for an ELF header with its program headers, or a `#!` line.
pub const HEAD: usize = 4096;

/// What a lookup found at a path inside the root.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Executable {
    Ok,
    Missing,
    /// Exists but is not a regular file with an execute bit.
    NotExecutable,
}

/// A root file system as exec(2) would see it: every path resolves inside
/// it, symlinks included.
pub trait ExecRoot {
    fn executable(&self, path: &Path) -> Executable;
    /// The first `max` bytes of the file at `path`, if it can be read.
    fn head(&self, path: &Path, max: usize) -> Option<Vec<u8>>;
}

/// Returns the files exec will read first (the program and its loader or
/// interpreter), for warming the page cache.
pub fn check(program: &str, root: &dyn ExecRoot) -> Result<Vec<PathBuf>, Error> {
    let path = find(program, root)?;
    match needs(&path, root) {
        Some(needed) if root.executable(&needed) == Executable::Missing => Err(Error::NotFound {
            what: needed.display().to_string(),
            hint: Some(format!(
                "{} needs it to run; the image lacks its loader or interpreter",
                path.display()
            )),
        }),
        Some(needed) => Ok(vec![path, needed]),
        None => Ok(vec![path]),
    }
}

/// The path exec would run: as given with a slash, else searched on PATH.
fn find(program: &str, root: &dyn ExecRoot) -> Result<PathBuf, Error> {
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
        match root.executable(&path) {
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
fn needs(path: &Path, root: &dyn ExecRoot) -> Option<PathBuf> {
    let head = root.head(path, HEAD)?;
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

/// The unmounted image, read through backhand (`--dry-run`).
impl ExecRoot for Image {
    fn executable(&self, path: &Path) -> Executable {
        match self.resolve(&path.to_string_lossy()) {
            Err(_) => Executable::Missing,
            Ok(found) if found.kind == FileKind::File && found.mode & 0o111 != 0 => Executable::Ok,
            Ok(_) => Executable::NotExecutable,
        }
    }

    fn head(&self, path: &Path, max: usize) -> Option<Vec<u8>> {
        self.read_head(&path.to_string_lossy(), max).ok()
    }
}
