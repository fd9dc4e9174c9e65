//! Reading binfmt_misc entries and choosing the one the kernel will use.
//!
//! Format and semantics: Documentation/admin-guide/binfmt-misc.rst and
//! fs/binfmt_misc.c (entry_status() prints an entry, search_binfmt_handler()
//! picks one).
//!
//! Which entry wins, verified on this project's VM (kernel 6.18) with two
//! entries matching the same magic, each with a shell-script interpreter
//! that prints its name (see binfmt_live_tests.rs, which re-checks it):
//! - the kernel walks its list from the head and new entries are added at
//!   the head (`list_add` in bm_register_write), so the most recently
//!   registered matching entry wins;
//! - a disabled entry is skipped (`if (!test_bit(Enabled, ..)) continue;`),
//!   it does not end the search: disabling the newer entry let the older
//!   one run, disabling the older one let the newer run.
//!
//! The list order is not exported directly, but the directory lists it:
//! binfmt_misc's directory is read with libfs's dcache_readdir, which walks
//! the parent's children list, and a new dentry goes to the head of that
//! list (d_alloc). So readdir returns the newest registration first, and a
//! re-registered name moves to the front (checked here: registering zz1,
//! aa2, mm3 listed mm3, aa2, zz1; removing and re-registering aa2 listed aa2,
//! mm3, zz1). Neither the inode number (per-CPU get_next_ino() batches: a
//! later entry got 13906 after an earlier one's 14690) nor the ctime (one
//! jiffy, 4 ms, shared by back-to-back registrations) is a reliable witness.

use super::ArchError;
use serde::Serialize;
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

/// The kernel compares at most BINPRM_BUF_SIZE bytes of the file
/// (include/uapi/linux/binfmts.h); registrations beyond it are refused.
pub(crate) const BINPRM_BUF_SIZE: usize = 256;
/// An entry file is at most a page of text; more is garbage.
const MAX_ENTRY_TEXT: u64 = 64 * 1024;

/// One registered handler, as `/proc/sys/fs/binfmt_misc/<name>` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Entry {
    pub name: String,
    pub enabled: bool,
    pub kind: Kind,
    pub interpreter: PathBuf,
    pub flags: Flags,
    /// Larger = registered later = tried earlier by the kernel. Internal:
    /// not part of `inspect --json`.
    #[serde(skip)]
    pub order_key: OrderKey,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// `(head[offset..offset+magic.len()] & mask) == magic`. `mask` is
    /// empty when the entry has none (all ones).
    Magic {
        offset: usize,
        #[serde(serialize_with = "as_hex")]
        magic: Vec<u8>,
        #[serde(serialize_with = "as_hex")]
        mask: Vec<u8>,
    },
    /// The extension, without the dot.
    Extension(String),
}

/// Bytes as lower-case hex text, as binfmt_misc's entry files show them.
fn as_hex<S: serde::Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(&format_args!(
        "{}",
        bytes.iter().map(|b| format!("{b:02x}")).collect::<String>()
    ))
}

/// The registration flags (binfmt-misc.rst, "flags").
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Flags {
    /// `P`: argv[0] is passed unchanged (and the full path is added).
    pub preserve_argv0: bool,
    /// `O`: the interpreter gets an open fd to the binary.
    pub open_binary: bool,
    /// `C`: credentials come from the binary, not the interpreter (implies O).
    pub credentials: bool,
    /// `F`: the interpreter was opened at registration, so it works in any
    /// mount namespace or chroot without being visible there.
    pub fix_binary: bool,
}

impl Flags {
    /// The flag letters in the kernel's order, e.g. `POF`.
    pub fn letters(self) -> String {
        [
            (self.preserve_argv0, 'P'),
            (self.open_binary, 'O'),
            (self.credentials, 'C'),
            (self.fix_binary, 'F'),
        ]
        .iter()
        .filter(|(on, _)| *on)
        .map(|(_, c)| *c)
        .collect()
    }

    pub(crate) fn from_letters(s: &str) -> Result<Flags, String> {
        let mut f = Flags::default();
        for c in s.chars() {
            match c {
                'P' => f.preserve_argv0 = true,
                'O' => f.open_binary = true,
                'C' => f.credentials = true,
                'F' => f.fix_binary = true,
                other => return Err(format!("unknown flag {other:?}")),
            }
        }
        Ok(f)
    }
}

/// Registration order: a larger rank was registered later (the kernel
/// tries it first). It is the entry's position counted from the end of the
/// binfmt_misc directory listing, which is newest first (module comment).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct OrderKey {
    pub rank: u64,
}

/// Parse the text of one entry file. The problem string names the line.
pub fn parse_entry(name: &str, text: &str, order_key: OrderKey) -> Result<Entry, String> {
    let mut lines = text.lines();
    let enabled = match lines.next() {
        Some("enabled") => true,
        Some("disabled") => false,
        other => return Err(format!("first line {other:?} is not enabled/disabled")),
    };
    let mut interpreter = None;
    let mut flags = None;
    let mut offset = None;
    let mut magic = None;
    let mut mask = None;
    let mut extension = None;
    for line in lines {
        // `interpreter` keeps the rest of the line verbatim: paths may hold
        // spaces. Unknown lines are ignored so a newer kernel's additions
        // do not make every entry unreadable.
        if let Some(p) = line.strip_prefix("interpreter ") {
            set_once(&mut interpreter, PathBuf::from(p), "interpreter")?;
        } else if let Some(f) = line.strip_prefix("flags:") {
            set_once(&mut flags, Flags::from_letters(f.trim())?, "flags")?;
        } else if let Some(o) = line.strip_prefix("offset ") {
            let o = o
                .trim()
                .parse::<usize>()
                .map_err(|e| format!("offset {o:?}: {e}"))?;
            set_once(&mut offset, o, "offset")?;
        } else if let Some(m) = line.strip_prefix("magic ") {
            set_once(&mut magic, hex(m.trim())?, "magic")?;
        } else if let Some(m) = line.strip_prefix("mask ") {
            set_once(&mut mask, hex(m.trim())?, "mask")?;
        } else if let Some(e) = line.strip_prefix("extension ") {
            let e = e.strip_prefix('.').unwrap_or(e);
            set_once(&mut extension, e.to_string(), "extension")?;
        }
    }
    let interpreter = interpreter.ok_or("no interpreter line")?;
    let kind = match (magic, extension) {
        (Some(magic), None) => {
            let mask = mask.unwrap_or_default();
            if !mask.is_empty() && mask.len() != magic.len() {
                return Err(format!(
                    "mask has {} bytes, magic {}",
                    mask.len(),
                    magic.len()
                ));
            }
            if magic.is_empty() {
                return Err("empty magic".into());
            }
            let offset = offset.unwrap_or(0);
            Kind::Magic {
                offset,
                magic,
                mask,
            }
        }
        (None, Some(ext)) => Kind::Extension(ext),
        (Some(_), Some(_)) => return Err("both magic and extension".into()),
        (None, None) => return Err("neither magic nor extension".into()),
    };
    Ok(Entry {
        name: name.to_string(),
        enabled,
        kind,
        interpreter,
        flags: flags.unwrap_or_default(),
        order_key,
    })
}

fn set_once<T>(slot: &mut Option<T>, v: T, what: &str) -> Result<(), String> {
    if slot.replace(v).is_some() {
        return Err(format!("{what} line appears twice"));
    }
    Ok(())
}

fn hex(s: &str) -> Result<Vec<u8>, String> {
    let b = s.as_bytes();
    if b.len() % 2 != 0 {
        return Err(format!("odd-length hex {s:?}"));
    }
    b.chunks_exact(2)
        .map(|p| {
            let d = |c: u8| (c as char).to_digit(16);
            match (d(p[0]), d(p[1])) {
                (Some(h), Some(l)) => Ok((h * 16 + l) as u8),
                _ => Err(format!("bad hex {s:?}")),
            }
        })
        .collect()
}

/// Read every entry in a binfmt_misc directory (normally
/// /proc/sys/fs/binfmt_misc), newest registration first.
pub fn read_entries(dir: &Path) -> Result<Vec<Entry>, ArchError> {
    let rd = fs::read_dir(dir).map_err(|e| ArchError::io("read directory", dir, e))?;
    // In the kernel's order: newest first.
    let listed = rd
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| ArchError::io("read directory", dir, e))?;
    let count = listed.len() as u64;
    let mut out = Vec::new();
    for (index, de) in listed.into_iter().enumerate() {
        let order_key = OrderKey {
            rank: count - index as u64,
        };
        let path = de.path();
        let name = de.file_name();
        let Some(name) = name.to_str() else {
            return Err(bad(&path, "entry name is not UTF-8".into()));
        };
        if name == "register" || name == "status" {
            continue;
        }
        match read_one(&path, name, order_key) {
            Ok(e) => out.push(e),
            // Removed between readdir and open: it no longer exists for
            // the kernel either.
            Err(ArchError::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
    }
    out.sort_by_key(|e| std::cmp::Reverse(e.order_key));
    Ok(out)
}

fn read_one(path: &Path, name: &str, order_key: OrderKey) -> Result<Entry, ArchError> {
    let file = fs::File::open(path).map_err(|e| ArchError::io("open", path, e))?;
    let mut text = String::new();
    file.take(MAX_ENTRY_TEXT)
        .read_to_string(&mut text)
        .map_err(|e| ArchError::io("read", path, e))?;
    parse_entry(name, &text, order_key).map_err(|p| bad(path, p))
}

fn bad(path: &Path, problem: String) -> ArchError {
    ArchError::BadEntry {
        path: path.to_path_buf(),
        problem,
    }
}

/// Whether binfmt_misc as a whole is enabled (the `status` file).
pub fn global_enabled(dir: &Path) -> Result<bool, ArchError> {
    let path = dir.join("status");
    let text = fs::read_to_string(&path).map_err(|e| ArchError::io("read", &path, e))?;
    match text.trim_end() {
        "enabled" => Ok(true),
        "disabled" => Ok(false),
        other => Err(bad(&path, format!("unexpected status {other:?}"))),
    }
}

/// The entry the kernel will pick for a file, or None.
///
/// `head` is the start of the file: pass min(file length, 256) bytes or
/// more. Like the kernel (which zero-fills its 256-byte buffer before
/// reading), bytes past the end of `head` compare as zero. `file_name` is
/// the path as passed to execve: the kernel takes the text after its last
/// `.`, even if that dot is in a directory name. Entries are tried newest
/// first by `order_key`, whatever order the slice is in; disabled entries
/// are skipped. The global `status` switch is not looked at here.
pub fn select<'a>(entries: &'a [Entry], head: &[u8], file_name: &str) -> Option<&'a Entry> {
    entries
        .iter()
        .filter(|e| e.enabled && matches(e, head, file_name))
        .max_by_key(|e| e.order_key)
}

fn matches(e: &Entry, head: &[u8], file_name: &str) -> bool {
    match &e.kind {
        Kind::Extension(ext) => file_name
            .rfind('.')
            .is_some_and(|i| &file_name[i + 1..] == ext.as_str()),
        Kind::Magic {
            offset,
            magic,
            mask,
        } => {
            if offset.saturating_add(magic.len()) > BINPRM_BUF_SIZE {
                return false;
            }
            magic.iter().enumerate().all(|(j, &m)| {
                let byte = head.get(offset + j).copied().unwrap_or(0);
                let k = mask.get(j).copied().unwrap_or(0xff);
                (byte ^ m) & k == 0
            })
        }
    }
}

#[cfg(test)]
#[path = "binfmt_tests.rs"]
mod tests;
