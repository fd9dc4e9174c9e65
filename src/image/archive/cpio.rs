//! cpio "newc" archives (magic 070701, or 070702 with checksums), the
//! format of Linux initramfs images (the kernel's
//! Documentation/driver-api/early-userspace/buffer-format.rst): a 110-byte
//! ASCII header of 13 eight-digit hex fields, the NUL-terminated name padded
//! to 4 bytes, the data padded to 4 bytes; "TRAILER!!!" ends an archive, and
//! several archives may follow one another (with NUL padding between).
//!
//! Hard links: every name of a file with nlink > 1 carries the same inode
//! number, and only the last one carries the data (cpio's newc writer). The
//! names are held until the one with data comes (or the archive ends), then
//! the file is written once and the others linked to it.

use std::collections::HashMap;
use std::io::{self, Read};

use super::writer::{Body, Entry, Refusal, Sink, PATH_MAX};

const HEADER: usize = 110;
const TRAILER: &[u8] = b"TRAILER!!!";
/// A symlink's target is its data; Linux's limit for one.
const LINK_MAX: u64 = PATH_MAX as u64;

const S_IFMT: u32 = 0o170000;
const S_IFDIR: u32 = 0o040000;
const S_IFREG: u32 = 0o100000;
const S_IFLNK: u32 = 0o120000;

#[derive(Debug)]
struct Header {
    ino: u64,
    mode: u32,
    uid: u32,
    gid: u32,
    nlink: u32,
    mtime: u32,
    size: u64,
    dev: (u32, u32),
    rdev: (u32, u32),
    namesize: usize,
}

fn hex(field: &[u8]) -> Result<u32, Refusal> {
    std::str::from_utf8(field)
        .ok()
        .and_then(|text| u32::from_str_radix(text, 16).ok())
        .ok_or_else(|| {
            format!(
                "corrupt cpio header (field {:?} is not hexadecimal)",
                String::from_utf8_lossy(field)
            )
        })
}

fn parse(raw: &[u8; HEADER]) -> Result<Header, Refusal> {
    let magic = &raw[..6];
    if magic != b"070701" && magic != b"070702" {
        return Err(format!(
            "corrupt cpio archive (a header starts with {:?}, not the newc magic 070701)",
            String::from_utf8_lossy(magic)
        ));
    }
    let field = |i: usize| hex(&raw[6 + 8 * i..14 + 8 * i]);
    Ok(Header {
        ino: u64::from(field(0)?),
        mode: field(1)?,
        uid: field(2)?,
        gid: field(3)?,
        nlink: field(4)?,
        mtime: field(5)?,
        size: u64::from(field(6)?),
        dev: (field(7)?, field(8)?),
        rdev: (field(9)?, field(10)?),
        namesize: field(11)? as usize,
    })
}

/// Counts what was read, for the 4-byte alignment of names and data.
struct Counted<R> {
    inner: R,
    offset: u64,
}

impl<R: Read> Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.offset += n as u64;
        Ok(n)
    }
}

impl<R: Read> Counted<R> {
    fn skip_to_4(&mut self) -> Result<(), Refusal> {
        let pad = (4 - self.offset % 4) % 4;
        self.skip(pad)
    }

    fn skip(&mut self, n: u64) -> Result<(), Refusal> {
        let skipped = io::copy(&mut (&mut *self).take(n), &mut io::sink()).map_err(read_error)?;
        if skipped < n {
            return Err(truncated());
        }
        Ok(())
    }
}

fn read_error(e: io::Error) -> Refusal {
    format!("reading the archive: {e}")
}

fn truncated() -> Refusal {
    "truncated cpio archive".into()
}

/// The names of a multiply-linked file whose data has not come yet.
struct Pending {
    names: Vec<Entry>,
}

/// Reads the archive from `input` into `writer`.
pub fn unpack(input: impl Read, writer: &mut impl Sink) -> Result<(), Refusal> {
    let mut input = Counted {
        inner: input,
        offset: 0,
    };
    let mut pending: HashMap<(u64, u32, u32), Pending> = HashMap::new();
    // Multiply-linked files already written (data on an earlier name).
    let mut written: HashMap<(u64, u32, u32), Vec<u8>> = HashMap::new();
    loop {
        let mut raw = [0u8; HEADER];
        if !read_header(&mut input, &mut raw)? {
            break;
        }
        let header = parse(&raw)?;
        if header.namesize == 0 || header.namesize > PATH_MAX + 1 {
            return Err(format!(
                "a cpio entry name of {} bytes (at most {PATH_MAX} are accepted)",
                header.namesize
            ));
        }
        let mut name = vec![0u8; header.namesize];
        input.read_exact(&mut name).map_err(|_| truncated())?;
        if name.pop() != Some(0) {
            return Err("corrupt cpio archive (an entry name is not NUL-terminated)".into());
        }
        input.skip_to_4()?;
        if name == TRAILER {
            // Concatenated archives (an initramfs made of several) go on.
            flush(&mut pending, writer)?;
            written.clear();
            continue;
        }
        let entry = Entry {
            name,
            mode: header.mode,
            uid: header.uid,
            gid: header.gid,
            mtime: i64::from(header.mtime),
            xattrs: Vec::new(),
        };
        let kind = header.mode & S_IFMT;
        if kind == S_IFREG && header.nlink > 1 {
            let key = (header.ino, header.dev.0, header.dev.1);
            if let (Some(first), 0) = (written.get(&key), header.size) {
                writer.add(&entry, Body::HardLink(first.clone()))?;
                continue;
            }
            let group = pending.entry(key).or_insert(Pending { names: Vec::new() });
            if header.size == 0 {
                group.names.push(entry);
                continue;
            }
            let earlier = pending.remove(&key).map(|p| p.names).unwrap_or_default();
            write_file(&mut input, writer, &entry, header.size)?;
            for other in earlier {
                writer.add(&other, Body::HardLink(entry.name.clone()))?;
            }
            written.insert(key, entry.name);
            continue;
        }
        match kind {
            S_IFREG => write_file(&mut input, writer, &entry, header.size)?,
            S_IFDIR => {
                input.skip(header.size)?;
                writer.add(&entry, Body::Dir)?;
            }
            S_IFLNK => {
                if header.size > LINK_MAX {
                    return Err(format!(
                        "{:?}: a symbolic link target of {} bytes",
                        String::from_utf8_lossy(&entry.name),
                        header.size
                    ));
                }
                let mut target = vec![0u8; header.size as usize];
                input.read_exact(&mut target).map_err(|_| truncated())?;
                input.skip_to_4()?;
                writer.add(&entry, Body::Symlink(target))?;
            }
            _ => {
                input.skip(header.size)?;
                input.skip_to_4()?;
                let dev = libc::makedev(header.rdev.0, header.rdev.1);
                writer.add(
                    &entry,
                    Body::Node {
                        type_bits: kind,
                        dev,
                    },
                )?;
            }
        }
    }
    flush(&mut pending, writer)
}

fn write_file(
    input: &mut Counted<impl Read>,
    writer: &mut impl Sink,
    entry: &Entry,
    size: u64,
) -> Result<(), Refusal> {
    let mut data = (&mut *input).take(size);
    writer.add(entry, Body::File(&mut data))?;
    if data.limit() > 0 {
        return Err(truncated());
    }
    input.skip_to_4()
}

/// Multiply-linked files whose data never came: empty, linked together.
fn flush(
    pending: &mut HashMap<(u64, u32, u32), Pending>,
    writer: &mut impl Sink,
) -> Result<(), Refusal> {
    let mut groups: Vec<_> = pending.drain().map(|(_, p)| p.names).collect();
    groups.sort_by(|a, b| a.first().map(|e| &e.name).cmp(&b.first().map(|e| &e.name)));
    for names in groups {
        let mut names = names.into_iter();
        let Some(first) = names.next() else { continue };
        writer.add(&first, Body::File(&mut io::empty()))?;
        for other in names {
            writer.add(&other, Body::HardLink(first.name.clone()))?;
        }
    }
    Ok(())
}

/// Reads the next header, skipping the NUL padding between concatenated
/// archives; false at the end of the input.
fn read_header(input: &mut Counted<impl Read>, raw: &mut [u8; HEADER]) -> Result<bool, Refusal> {
    let mut first = [0u8; 1];
    loop {
        match input.read(&mut first) {
            Ok(0) => return Ok(false),
            Ok(_) if first[0] == 0 => continue,
            Ok(_) => break,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(read_error(e)),
        }
    }
    raw[0] = first[0];
    input.read_exact(&mut raw[1..]).map_err(|_| truncated())?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(mode: u32, size: u32, namesize: u32) -> [u8; HEADER] {
        let text = format!(
            "070701{:08x}{mode:08x}{:08x}{:08x}{:08x}{:08x}{size:08x}{:08x}{:08x}{:08x}{:08x}\
             {namesize:08x}{:08x}",
            1, 0, 0, 1, 0, 0, 0, 0, 0, 0
        );
        text.as_bytes().try_into().unwrap()
    }

    #[test]
    fn headers_parse_and_bad_ones_are_named() {
        let h = parse(&header(0o100644, 5, 6)).unwrap();
        assert_eq!((h.mode, h.size, h.namesize), (0o100644, 5, 6));
        let mut bad = header(0o100644, 5, 6);
        bad[..6].copy_from_slice(b"070707");
        assert!(parse(&bad).unwrap_err().contains("newc"));
        let mut bad = header(0o100644, 5, 6);
        bad[20] = b'z';
        assert!(parse(&bad).unwrap_err().contains("hexadecimal"));
    }
}
