//! Building and sending binfmt_misc registrations, and removing entries.
//!
//! Line format (Documentation/admin-guide/binfmt-misc.rst):
//! `:name:type:offset:magic:mask:interpreter:flags`. The kernel parses one
//! write() call per registration (bm_register_write), so a line goes out in
//! a single write.

use super::binfmt::{Flags, Kind, BINPRM_BUF_SIZE};
use super::ArchError;
use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};

/// The kernel refuses longer registrations (MAX_REGISTER_LENGTH in
/// fs/binfmt_misc.c).
pub const REGISTER_MAX_LEN: usize = 1920;

/// A registration line taken apart, e.g. from /usr/lib/binfmt.d/*.conf.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registration {
    pub name: String,
    pub kind: Kind,
    pub interpreter: PathBuf,
    pub flags: Flags,
}

/// Build a registration line. Magic and mask are written fully as `\xNN`,
/// so their bytes can never be mistaken for the `:` delimiter.
pub fn register_line(
    name: &str,
    kind: &Kind,
    interpreter: &Path,
    flags: Flags,
) -> Result<String, ArchError> {
    let fail = |problem: String| ArchError::BadRegistration {
        name: name.to_string(),
        problem,
    };
    check_name(name).map_err(fail)?;
    let interp = interpreter
        .to_str()
        .ok_or_else(|| fail("interpreter path is not UTF-8".into()))?;
    if interp.is_empty() || interp.contains([':', '\n', '\0']) {
        return Err(fail(format!(
            "interpreter {interp:?} is empty or holds ':', NUL or newline"
        )));
    }
    let (t, offset, magic, mask) = match kind {
        Kind::Magic {
            offset,
            magic,
            mask,
        } => {
            if magic.is_empty() || offset.saturating_add(magic.len()) > BINPRM_BUF_SIZE {
                return Err(fail(format!(
                    "magic must be 1..{BINPRM_BUF_SIZE} bytes from offset"
                )));
            }
            if !mask.is_empty() && mask.len() != magic.len() {
                return Err(fail("mask and magic differ in length".into()));
            }
            ('M', offset.to_string(), escape(magic), escape(mask))
        }
        Kind::Extension(ext) => {
            if ext.is_empty() || ext.contains([':', '/', '\n', '\0']) {
                return Err(fail(format!("bad extension {ext:?}")));
            }
            ('E', String::new(), ext.clone(), String::new())
        }
    };
    let line = format!(
        ":{name}:{t}:{offset}:{magic}:{mask}:{interp}:{}",
        flags.letters()
    );
    if line.len() > REGISTER_MAX_LEN {
        return Err(fail(format!(
            "line is {} bytes, limit {REGISTER_MAX_LEN}",
            line.len()
        )));
    }
    Ok(line)
}

/// Entry names are single path components in the binfmt_misc directory;
/// the kernel refuses `/`, `.` and `..`.
fn check_name(name: &str) -> Result<(), String> {
    if name.is_empty()
        || name == "."
        || name == ".."
        || name == "register"
        || name == "status"
        || name.contains(['/', ':', '\n', '\0'])
    {
        return Err("entry name must be one path component without ':'".into());
    }
    Ok(())
}

fn escape(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("\\x{b:02x}")).collect()
}

/// Parse a registration line (as found in binfmt.d files). Accepts any
/// delimiter character, as the kernel does, and `\xNN` escapes in magic
/// and mask.
pub fn parse_register_line(line: &str) -> Result<Registration, String> {
    let line = line.trim_end_matches(['\n', '\r']);
    let mut chars = line.chars();
    let delim = chars.next().ok_or("empty line")?;
    let fields: Vec<&str> = chars.as_str().split(delim).collect();
    let [name, t, offset, magic, mask, interp, rest @ ..] = fields.as_slice() else {
        return Err(format!("{} fields, need 7", fields.len()));
    };
    let flags = Flags::from_letters(rest.first().copied().unwrap_or("").trim())?;
    let kind = match *t {
        "M" => Kind::Magic {
            offset: if offset.is_empty() {
                0
            } else {
                offset
                    .parse()
                    .map_err(|e| format!("offset {offset:?}: {e}"))?
            },
            magic: unescape(magic)?,
            mask: unescape(mask)?,
        },
        "E" => Kind::Extension(magic.to_string()),
        other => return Err(format!("type {other:?} is neither M nor E")),
    };
    Ok(Registration {
        name: name.to_string(),
        kind,
        interpreter: PathBuf::from(interp),
        flags,
    })
}

/// Undo `\xNN` escapes (and `\\`), as the kernel's string_unescape does
/// for magic and mask.
fn unescape(s: &str) -> Result<Vec<u8>, String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && b.get(i + 1) == Some(&b'x') {
            let h = b
                .get(i + 2..i + 4)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| format!("bad \\x escape in {s:?}"))?;
            out.push(h);
            i += 4;
        } else if b[i] == b'\\' && b.get(i + 1) == Some(&b'\\') {
            out.push(b'\\');
            i += 2;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    Ok(out)
}

/// Send one registration line to `dir/register` in a single write.
pub fn register(dir: &Path, line: &str) -> Result<(), ArchError> {
    write_once(
        &dir.join("register"),
        line.as_bytes(),
        "register binfmt_misc entry in",
    )
}

/// Remove entry `name` (writing `-1` to it). Only call this for entries
/// you registered.
pub fn remove(dir: &Path, name: &str) -> Result<(), ArchError> {
    check_name(name).map_err(|problem| ArchError::BadRegistration {
        name: name.to_string(),
        problem,
    })?;
    write_once(&dir.join(name), b"-1", "remove binfmt_misc entry")
}

/// Enable (`1`) or disable (`0`) entry `name`.
pub fn set_enabled(dir: &Path, name: &str, on: bool) -> Result<(), ArchError> {
    check_name(name).map_err(|problem| ArchError::BadRegistration {
        name: name.to_string(),
        problem,
    })?;
    write_once(
        &dir.join(name),
        if on { b"1" } else { b"0" },
        "enable/disable binfmt_misc entry",
    )
}

fn write_once(path: &Path, data: &[u8], op: &'static str) -> Result<(), ArchError> {
    let mut f = OpenOptions::new()
        .write(true)
        .open(path)
        .map_err(|e| ArchError::io(op, path, e))?;
    let n = f.write(data).map_err(|e| ArchError::io(op, path, e))?;
    if n != data.len() {
        let short = std::io::Error::new(
            std::io::ErrorKind::WriteZero,
            format!("short write: {n} of {} bytes", data.len()),
        );
        return Err(ArchError::io(op, path, short));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn magic(offset: usize, magic: &[u8], mask: &[u8]) -> Kind {
        Kind::Magic {
            offset,
            magic: magic.to_vec(),
            mask: mask.to_vec(),
        }
    }

    #[test]
    fn line_round_trips() {
        let k = magic(2, b"\x7fE:", b"\xff\xfe\xff");
        let f = Flags::from_letters("POF").unwrap_or_default();
        let l = register_line("rootrun-x", &k, Path::new("/usr/bin/q"), f);
        assert_eq!(
            l.as_deref().ok(),
            Some(":rootrun-x:M:2:\\x7f\\x45\\x3a:\\xff\\xfe\\xff:/usr/bin/q:POF")
        );
        let r = parse_register_line(&l.unwrap_or_default());
        assert_eq!(r.as_ref().map(|r| &r.kind), Ok(&k));
        assert_eq!(r.map(|r| r.flags.letters()), Ok("POF".to_string()));
    }

    #[test]
    fn extension_line() {
        let l = register_line(
            "x",
            &Kind::Extension("exe".into()),
            Path::new("/w"),
            Flags::default(),
        );
        assert_eq!(l.ok().as_deref(), Some(":x:E::exe::/w:"));
    }

    #[test]
    fn refuses_bad_registrations() {
        let k = magic(0, b"a", b"");
        let p = Path::new("/i");
        for name in ["", ".", "..", "a/b", "a:b", "register", "status"] {
            assert!(
                register_line(name, &k, p, Flags::default()).is_err(),
                "{name:?}"
            );
        }
        assert!(register_line("n", &k, Path::new("/a:b"), Flags::default()).is_err());
        assert!(register_line("n", &magic(250, b"1234567", b""), p, Flags::default()).is_err());
        assert!(register_line("n", &magic(0, b"12", b"1"), p, Flags::default()).is_err());
        assert!(register_line("n", &magic(0, b"", b""), p, Flags::default()).is_err());
        assert!(remove(Path::new("/nonexistent"), "../etc").is_err());
    }

    #[test]
    fn parses_other_delimiters_and_garbage() {
        let r = parse_register_line(",n,M,,ab\\x00,,/i,F\n");
        assert_eq!(r.as_ref().map(|r| r.name.as_str()), Ok("n"));
        assert_eq!(r.map(|r| r.kind), Ok(magic(0, b"ab\0", b"")));
        for g in [
            "",
            ":",
            ":a:M",
            ":n:Z::a::/i:",
            ":n:M:x:a::/i:",
            ":n:M::\\xZZ::/i:",
            ":n:M::a::/i:Q",
        ] {
            assert!(parse_register_line(g).is_err(), "{g:?}");
        }
    }
}
