//! An archive read to its end without writing anything: the decompressors,
//! the tar and cpio newc readers and the name rules, as `open` runs them,
//! handing entries to a [`Checker`] that keeps only their names. This is
//! what the `archive_check` fuzz target runs; rootrun itself always unpacks
//! through `Writer`, whose file system side its unit and end-to-end tests
//! cover.

use std::collections::HashSet;
use std::fs::File;
use std::io::{self, Read, Seek};
use std::path::Path;

use super::writer::{split, Body, Entry, Refusal, Sink};
use super::{cpio, sniff, unpack_tar, Compression, Format, MAX_ENTRIES};

/// Decompressed bytes read at most: a bomb of a few KiB ends here as a
/// truncated archive (when rootrun unpacks, the tmpfs's size is the bound).
const MAX_BYTES: u64 = 64 << 20;

/// Takes entries as the writer would, keeping their names only.
#[derive(Default)]
struct Checker {
    entries: u64,
    /// Every name taken so far, its components joined by `/`.
    names: HashSet<Vec<u8>>,
}

/// `name` under the writer's rules, as one canonical path.
fn canonical(name: &[u8]) -> Result<Vec<u8>, Refusal> {
    let split = split(name)?;
    let mut out = Vec::new();
    for part in split.parents.iter().chain(split.leaf.iter()) {
        if !out.is_empty() {
            out.push(b'/');
        }
        out.extend_from_slice(part.as_bytes());
    }
    Ok(out)
}

impl Sink for Checker {
    fn add(&mut self, entry: &Entry, body: Body<'_>) -> Result<(), Refusal> {
        self.entries += 1;
        if self.entries > MAX_ENTRIES {
            return Err(format!("more than {MAX_ENTRIES} entries"));
        }
        let shown = String::from_utf8_lossy(&entry.name).into_owned();
        let name = canonical(&entry.name)?;
        match body {
            Body::File(data) => {
                io::copy(data, &mut io::sink()).map_err(|e| format!("{shown}: {e}"))?;
            }
            Body::HardLink(target) => {
                let target = canonical(&target)?;
                if !self.names.contains(&target) {
                    return Err(format!("{shown:?}: a hard link to no earlier entry"));
                }
            }
            Body::Symlink(target) if target.contains(&0) => {
                return Err(format!("{shown:?}: a NUL byte in the link target"));
            }
            Body::Symlink(_) | Body::Dir | Body::Node { .. } => {}
        }
        self.names.insert(name);
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
        let header_of = |kind, size| {
            let mut header = tar::Header::new_gnu();
            header.set_entry_type(kind);
            header.set_size(size);
            header.set_mode(0o644);
            header.set_uid(0);
            header.set_gid(0);
            header.set_mtime(0);
            header
        };
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
