//! An archive read to its end without writing anything: the decompressors,
//! the tar and cpio newc readers and the name rules, as `open` runs them,
//! handing entries to a [`Checker`] that keeps only their names. This is
//! what the `archive_check` fuzz target runs; rootrun itself always unpacks
//! through `Writer`, whose file system side its unit and end-to-end tests
//! cover.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Read, Seek};
use std::path::Path;

use super::writer::{split, Body, Entry, Refusal, Sink};
use super::{cpio, sniff, unpack_tar, Compression, Format, MAX_ENTRIES};

/// Decompressed bytes read at most: a bomb of a few KiB ends here, as a
/// truncated archive or one that stops early (when rootrun unpacks, the
/// tmpfs's size is the bound).
const MAX_BYTES: u64 = 64 << 20;

/// What a name is in the tree the writer would make, as far as its rules go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Dir,
    /// A file, symlink, device node, FIFO or socket.
    Other,
}

/// Takes entries under the writer's rules, keeping names and kinds only:
/// names are relative paths of plain components, no name goes through an
/// earlier non-directory (a symlink the archive made, or a file), a
/// directory and a non-directory never replace each other, the root entry
/// is a directory, and a hard link names an earlier non-directory (not
/// itself: the writer removes the old entry of its name first).
#[derive(Default)]
struct Checker {
    entries: u64,
    /// Every name taken so far (components joined by `/`; missing parents
    /// are made as directories, as the writer makes them).
    kinds: HashMap<Vec<u8>, Kind>,
}

/// The components of a checked name joined by `/`.
fn joined<'a>(parts: impl Iterator<Item = &'a std::ffi::CString>) -> Vec<u8> {
    let mut path = Vec::new();
    for part in parts {
        if !path.is_empty() {
            path.push(b'/');
        }
        path.extend_from_slice(part.to_bytes());
    }
    path
}

impl Checker {
    /// `name`'s path (None: the root), its parents checked, and made when
    /// missing, as directories.
    fn place(&mut self, name: &[u8], shown: &str) -> Result<Option<Vec<u8>>, Refusal> {
        let split = split(name)?;
        for depth in 1..=split.parents.len() {
            let parent = joined(split.parents[..depth].iter());
            match self.kinds.get(&parent) {
                Some(Kind::Dir) => {}
                Some(Kind::Other) => {
                    return Err(format!(
                        "{shown:?}: a name through an earlier non-directory"
                    ))
                }
                None => {
                    self.kinds.insert(parent, Kind::Dir);
                }
            }
        }
        Ok(split
            .leaf
            .is_some()
            .then(|| joined(split.parents.iter().chain(split.leaf.iter()))))
    }
}

impl Sink for Checker {
    fn add(&mut self, entry: &Entry, body: Body<'_>) -> Result<(), Refusal> {
        self.entries += 1;
        if self.entries > MAX_ENTRIES {
            return Err(format!("more than {MAX_ENTRIES} entries"));
        }
        let shown = String::from_utf8_lossy(&entry.name).into_owned();
        let Some(name) = self.place(&entry.name, &shown)? else {
            return match body {
                Body::Dir => Ok(()),
                _ => Err(format!("{shown:?}: the root entry is not a directory")),
            };
        };
        let kind = match body {
            Body::Dir => Kind::Dir,
            _ => Kind::Other,
        };
        match (self.kinds.get(&name), kind) {
            (Some(Kind::Other), Kind::Dir) => {
                return Err(format!(
                    "{shown:?}: a directory entry over an earlier non-directory"
                ))
            }
            (Some(Kind::Dir), Kind::Other) => {
                return Err(format!(
                    "{shown:?}: a non-directory entry over an earlier directory"
                ))
            }
            _ => {}
        }
        match body {
            Body::File(data) => {
                io::copy(data, &mut io::sink()).map_err(|e| format!("{shown}: {e}"))?;
            }
            Body::HardLink(target) => {
                // The writer removes the entry's old self first.
                self.kinds.remove(&name);
                let target =
                    split(&target).map_err(|why| format!("{shown:?} is a hard link to {why}"))?;
                let target = joined(target.parents.iter().chain(target.leaf.iter()));
                match self.kinds.get(&target) {
                    Some(Kind::Other) => {}
                    Some(Kind::Dir) => {
                        return Err(format!("{shown:?}: a hard link to a directory"))
                    }
                    None => return Err(format!("{shown:?}: a hard link to no earlier entry")),
                }
            }
            Body::Symlink(target) if target.contains(&0) => {
                return Err(format!("{shown:?}: a NUL byte in the link target"));
            }
            Body::Symlink(_) | Body::Dir | Body::Node { .. } => {}
        }
        self.kinds.insert(name, kind);
        Ok(())
    }
}

/// Reads the archive at `path` as rootrun unpacks one, writing nothing:
/// its format, compression and number of entries, or why it is refused.
pub fn check_only(path: &Path) -> Result<(Format, Compression, u64), String> {
    let mut file = File::open(path).map_err(|e| e.to_string())?;
    let mut magic = Vec::with_capacity(6);
    (&mut file)
        .take(6)
        .read_to_end(&mut magic)
        .map_err(|e| e.to_string())?;
    file.rewind().map_err(|e| e.to_string())?;
    let compression = Compression::of(&magic).unwrap_or(Compression::None);
    let (format, stream) = sniff(file, compression).map_err(|e| e.to_string())?;
    let format = format.ok_or("neither a tar nor a cpio newc archive")?;
    let stream = stream.take(MAX_BYTES);
    let mut checker = Checker::default();
    match format {
        Format::Tar => unpack_tar(stream, &mut checker)?,
        Format::Cpio => cpio::unpack(stream, &mut checker)?,
    }
    Ok((format, compression, checker.entries))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    /// A cpio newc archive of `(name, mode, data)` entries, then the trailer.
    fn cpio_of(entries: &[(&str, u32, &[u8])]) -> Vec<u8> {
        let mut out = Vec::new();
        let pad = |out: &mut Vec<u8>| {
            while out.len() % 4 != 0 {
                out.push(0);
            }
        };
        let trailer = [("TRAILER!!!", 0, &b""[..])];
        for (ino, (name, mode, data)) in entries.iter().chain(&trailer).enumerate() {
            let header = format!(
                "070701{:08x}{mode:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}",
                ino + 1,
                0,
                0,
                1,
                0,
                data.len(),
                0,
                0,
                0,
                0,
                name.len() + 1,
                0
            );
            out.extend_from_slice(header.as_bytes());
            out.extend_from_slice(name.as_bytes());
            out.push(0);
            pad(&mut out);
            out.extend_from_slice(data);
            pad(&mut out);
        }
        out
    }

    /// A tar header of `kind` and `size`, root's, mode 0755.
    fn header_of(kind: tar::EntryType, size: u64) -> tar::Header {
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(kind);
        header.set_size(size);
        header.set_mode(0o755);
        header.set_uid(0);
        header.set_gid(0);
        header.set_mtime(0);
        header
    }

    fn check(bytes: &[u8]) -> Result<(Format, Compression, u64), String> {
        let dir =
            std::env::temp_dir().join(format!("rootrun-archive-check-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("mkdir");
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let path = dir.join(
            N.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
                .to_string(),
        );
        std::fs::write(&path, bytes).expect("write");
        let result = check_only(&path);
        let _ = std::fs::remove_file(&path);
        result
    }

    #[test]
    fn a_cpio_archive_is_read_to_its_end_plain_and_compressed() {
        let archive = cpio_of(&[
            ("bin", 0o40755, b""),
            ("bin/sh", 0o100755, b"#!/bin/sh\n"),
            ("bin/link", 0o120777, b"sh"),
        ]);
        assert_eq!(check(&archive), Ok((Format::Cpio, Compression::None, 3)));
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&archive).expect("gzip");
        let gz = gz.finish().expect("gzip");
        assert_eq!(check(&gz), Ok((Format::Cpio, Compression::Gzip, 3)));
    }

    #[test]
    fn hostile_names_and_links_are_refused_as_the_writer_refuses_them() {
        for (entries, why) in [
            (vec![("../etc/passwd", 0o100644, &b"x"[..])], "\"..\""),
            (vec![("/etc/passwd", 0o100644, &b"x"[..])], "absolute"),
            (vec![("a\u{0}b", 0o100644, &b"x"[..])], "NUL"),
        ] {
            let err = check(&cpio_of(&entries)).map_err(|e| e.to_string());
            assert!(matches!(&err, Err(e) if e.contains(why)), "{why}: {err:?}");
        }
        // A hard link (tar) to a name that came before is taken; to one that did not, refused.
        let mut tar = tar::Builder::new(Vec::new());
        let mut header = header_of(tar::EntryType::Regular, 1);
        tar.append_data(&mut header, "a", &b"x"[..]).expect("tar");
        let mut link = header_of(tar::EntryType::Link, 0);
        tar.append_link(&mut link, "b", "a").expect("tar");
        tar.append_link(&mut link, "c", "missing").expect("tar");
        let bytes = tar.into_inner().expect("tar");
        let err = check(&bytes);
        assert!(
            matches!(&err, Err(e) if e.contains("\"c\": a hard link")),
            "{err:?}"
        );
    }

    #[test]
    fn the_writers_tree_rules_hold_without_a_tree() {
        for (entries, why) in [
            (
                vec![("s", 0o120777, &b"/etc"[..]), ("s/passwd", 0o100644, b"x")],
                "through an earlier non-directory",
            ),
            (
                vec![("d", 0o40755, &b""[..]), ("d", 0o100644, b"x")],
                "non-directory entry over an earlier directory",
            ),
            (
                vec![("f", 0o100644, &b"x"[..]), ("f", 0o40755, b"")],
                "directory entry over an earlier non-directory",
            ),
            (
                vec![(".", 0o100644, &b"x"[..])],
                "root entry is not a directory",
            ),
        ] {
            let err = check(&cpio_of(&entries));
            assert!(matches!(&err, Err(e) if e.contains(why)), "{why}: {err:?}");
        }
        // Parents made as directories, an entry replacing a file, the root as a directory.
        let fine = cpio_of(&[
            (".", 0o40755, b""),
            ("a/b/c", 0o100644, b"x"),
            ("a/b/c", 0o100644, b"y"),
            ("a/b", 0o40700, b""),
        ]);
        assert_eq!(check(&fine), Ok((Format::Cpio, Compression::None, 4)));
        // Hard links: to a directory, and to itself (the file "l" it replaces), are refused.
        for (target, why) in [
            ("d", "a hard link to a directory"),
            ("l", "no earlier entry"),
        ] {
            let mut tar = tar::Builder::new(Vec::new());
            let mut dir = header_of(tar::EntryType::Directory, 0);
            tar.append_data(&mut dir, "d", &b""[..]).expect("tar");
            let mut file = header_of(tar::EntryType::Regular, 1);
            tar.append_data(&mut file, "l", &b"x"[..]).expect("tar");
            let mut link = header_of(tar::EntryType::Link, 0);
            tar.append_link(&mut link, "l", target).expect("tar");
            let err = check(&tar.into_inner().expect("tar"));
            assert!(matches!(&err, Err(e) if e.contains(why)), "{why}: {err:?}");
        }
    }

    #[test]
    fn a_decompression_bomb_stops_at_the_bound() {
        // 100 MiB of file data in a cpio entry, a few hundred KiB of gzip.
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        let header = format!(
            "070701{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}big\0\0\0",
            1, 0o100644, 0, 0, 1, 0, 100 << 20, 0, 0, 0, 0, 4, 0
        );
        gz.write_all(header.as_bytes()).expect("gzip");
        let zeros = vec![0u8; 1 << 20];
        for _ in 0..100 {
            gz.write_all(&zeros).expect("gzip");
        }
        let gz = gz.finish().expect("gzip");
        let err = check(&gz);
        assert!(matches!(&err, Err(e) if e.contains("truncated")), "{err:?}");
    }
}
