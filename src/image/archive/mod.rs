//! tar archives (plain, gzip, xz, zstd, bzip2) and cpio "newc" archives
//! (plain or compressed, as initramfs files are), unpacked into a throwaway
//! tmpfs that is mounted nowhere (a detached mount, `sys::detached`): the
//! image's facts are read from the tree there (`DirSource`), and the same
//! mount becomes the container's lower layer. Closing it frees everything.
//!
//! The archive is hostile: names, links and sizes go through `writer`'s
//! rules, and the work is bounded (the tmpfs's size and inode count, the
//! number of entries, the length of a name); hitting a bound is one line.

mod check;
mod cpio;
mod writer;

use std::fs::File;
use std::io::{self, BufReader, Chain, Cursor, Read};
use std::os::fd::OwnedFd;
use std::path::Path;

use super::dir_source::DirSource;
use super::ImageError;
use crate::sys::detached::{self, Detached};
use crate::sys::fsops;
pub use check::check_only;
use writer::{Body, Entry, Refusal, Sink, Writer};

/// Entries accepted from one archive: a full Debian desktop root has about
/// 400,000; every one costs the tmpfs an inode in memory (about 1 KiB with
/// its dentry), which tmpfs's `size=` does not count, so this bounds that.
const MAX_ENTRIES: u64 = 2 << 20;

/// How the archive's bytes are compressed, from their magic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Xz,
    Zstd,
    Bzip2,
}

impl Compression {
    /// From the file's first bytes; None when no compression rootrun reads.
    pub fn of(head: &[u8]) -> Option<Compression> {
        let at = |magic: &[u8]| head.starts_with(magic);
        if at(&[0x1F, 0x8B]) {
            Some(Compression::Gzip)
        } else if at(&[0xFD, b'7', b'z', b'X', b'Z', 0x00]) {
            Some(Compression::Xz)
        } else if at(&[0x28, 0xB5, 0x2F, 0xFD]) {
            Some(Compression::Zstd)
        } else if at(b"BZh") {
            Some(Compression::Bzip2)
        } else {
            None
        }
    }

    pub fn prefix(self) -> &'static str {
        match self {
            Compression::None => "",
            Compression::Gzip => "gzip-compressed ",
            Compression::Xz => "xz-compressed ",
            Compression::Zstd => "zstd-compressed ",
            Compression::Bzip2 => "bzip2-compressed ",
        }
    }
}

/// The archive formats, as found after decompression.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Tar,
    Cpio,
}

impl Format {
    /// From the first (decompressed) bytes: POSIX/GNU tar's "ustar" at 257,
    /// cpio newc's "070701"/"070702".
    pub fn of(head: &[u8]) -> Option<Format> {
        if head.get(257..262) == Some(b"ustar") {
            Some(Format::Tar)
        } else if head.starts_with(b"070701") || head.starts_with(b"070702") {
            Some(Format::Cpio)
        } else {
            None
        }
    }
}

/// An archive unpacked into its own detached tmpfs.
pub struct ArchiveSource {
    pub format: Format,
    pub compression: Compression,
    pub tree: Detached,
    pub dir: DirSource,
    pub entries: u64,
    pub bytes: u64,
}

type Sniffed = Chain<Cursor<Vec<u8>>, Box<dyn Read>>;

/// Decompresses `file` and reads far enough to tell the archive format.
fn sniff(file: File, compression: Compression) -> io::Result<(Option<Format>, Sniffed)> {
    let buffered = BufReader::with_capacity(1 << 16, file);
    let mut stream: Box<dyn Read> = match compression {
        Compression::None => Box::new(buffered),
        Compression::Gzip => Box::new(flate2::bufread::MultiGzDecoder::new(buffered)),
        Compression::Xz => Box::new(liblzma::bufread::XzDecoder::new_multi_decoder(buffered)),
        Compression::Zstd => Box::new(zstd::stream::read::Decoder::with_buffer(buffered)?),
        Compression::Bzip2 => Box::new(bzip2::bufread::MultiBzDecoder::new(buffered)),
    };
    let mut head = Vec::with_capacity(512);
    (&mut stream).take(512).read_to_end(&mut head)?;
    Ok((Format::of(&head), Cursor::new(head).chain(stream)))
}

/// Unpacks the archive at `path` (`compression` from its magic) into a new
/// detached tmpfs of at most `tmpfs_size` (tmpfs's `size=`; None: its
/// default, half the memory).
pub fn open(
    path: &Path,
    file: File,
    compression: Compression,
    tmpfs_size: Option<&str>,
) -> Result<ArchiveSource, ImageError> {
    let refused = |what: String| ImageError::Format {
        path: path.to_path_buf(),
        what,
    };
    let (format, stream) = sniff(file, compression).map_err(|e| {
        refused(format!(
            "{}data that cannot be read: {e}",
            compression.prefix()
        ))
    })?;
    let Some(format) = format else {
        return Err(refused(format!(
            "{}data that is neither a tar archive (POSIX or GNU) nor a cpio newc archive \
             (cpio -H newc); rootrun boots SquashFS, ext4 and EROFS images, tar and cpio \
             archives, and directories",
            compression.prefix()
        )));
    };
    let what = match format {
        Format::Tar => "tar archive",
        Format::Cpio => "cpio archive",
    };
    let tree = detached::tmpfs(tmpfs_size, MAX_ENTRIES + 16).map_err(|failure| {
        refused(format!(
            "a {what} is unpacked into a tmpfs, which could not be mounted ({}; needs root)",
            failure.error
        ))
    })?;
    let root = open_root(&tree).map_err(|e| refused(format!("open the tmpfs: {e}")))?;
    let mut writer = Writer::new(root, MAX_ENTRIES);
    let unpacked = match format {
        Format::Tar => unpack_tar(stream, &mut writer),
        Format::Cpio => cpio::unpack(stream, &mut writer),
    };
    unpacked.map_err(|why| refused(format!("{}{what}: {why}", compression.prefix())))?;
    writer.finish();
    tracing::debug!(
        "{}{what} unpacked into a detached tmpfs: {} entries, {} bytes of file data",
        compression.prefix(),
        writer.entries,
        writer.bytes
    );
    let dir = DirSource::shown_as(&tree.proc_path(), path);
    Ok(ArchiveSource {
        format,
        compression,
        entries: writer.entries,
        bytes: writer.bytes,
        tree,
        dir,
    })
}

/// A directory fd of the mount's root ("." relative to the mount's own fd).
fn open_root(tree: &Detached) -> Result<OwnedFd, nix::errno::Errno> {
    fsops::open_dir_at(std::os::fd::AsFd::as_fd(tree.fd()), c".")
}

fn unpack_tar(stream: impl Read, writer: &mut impl Sink) -> Result<(), Refusal> {
    let mut archive = tar::Archive::new(stream);
    let entries = archive.entries().map_err(|e| format!("reading it: {e}"))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| format!("reading it: {e}"))?;
        let header = entry.header();
        let name = entry.path_bytes().into_owned();
        let shown = String::from_utf8_lossy(&name).into_owned();
        let bad = |what: &str| format!("{shown:?}: {what} in its header");
        let meta = Entry {
            mode: header.mode().map_err(|_| bad("a bad mode"))?,
            uid: u32::try_from(header.uid().map_err(|_| bad("a bad owner"))?)
                .map_err(|_| bad("a bad owner"))?,
            gid: u32::try_from(header.gid().map_err(|_| bad("a bad group"))?)
                .map_err(|_| bad("a bad group"))?,
            mtime: i64::try_from(header.mtime().unwrap_or(0)).unwrap_or(0),
            xattrs: tar_xattrs(&mut entry),
            name,
        };
        let kind = entry.header().entry_type();
        let link = || entry.link_name_bytes().map(|l| l.into_owned());
        let device = || {
            let h = entry.header();
            let major = h.device_major().ok().flatten().unwrap_or(0);
            let minor = h.device_minor().ok().flatten().unwrap_or(0);
            libc::makedev(major, minor)
        };
        use tar::EntryType as T;
        let body = match kind {
            T::Directory => Body::Dir,
            T::Symlink => Body::Symlink(link().ok_or_else(|| bad("no link target"))?),
            T::Link => Body::HardLink(link().ok_or_else(|| bad("no link target"))?),
            T::Char => Body::Node {
                type_bits: libc::S_IFCHR,
                dev: device(),
            },
            T::Block => Body::Node {
                type_bits: libc::S_IFBLK,
                dev: device(),
            },
            T::Fifo => Body::Node {
                type_bits: libc::S_IFIFO,
                dev: 0,
            },
            T::Regular | T::Continuous | T::GNUSparse => {
                writer.add(&meta, Body::File(&mut entry))?;
                continue;
            }
            // PAX and GNU long-name records are folded into the entries by
            // the tar crate; anything else is not part of a root tree.
            _ => continue,
        };
        writer.add(&meta, body)?;
    }
    Ok(())
}

/// Extended attributes from PAX `SCHILY.xattr.NAME` records (GNU tar
/// --xattrs, bsdtar).
fn tar_xattrs<R: Read>(entry: &mut tar::Entry<'_, R>) -> Vec<super::unpack::Xattr> {
    let Ok(Some(records)) = entry.pax_extensions() else {
        return Vec::new();
    };
    records
        .flatten()
        .filter_map(|record| {
            let name = record.key_bytes().strip_prefix(b"SCHILY.xattr.")?;
            Some(super::unpack::Xattr {
                name: std::ffi::CString::new(name).ok()?,
                value: record.value_bytes().to_vec(),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compressions_and_formats_are_told_by_their_magic() {
        assert_eq!(Compression::of(&[0x1F, 0x8B, 8]), Some(Compression::Gzip));
        assert_eq!(Compression::of(b"BZh91AY"), Some(Compression::Bzip2));
        assert_eq!(Compression::of(b"hsqs"), None);
        let mut tar = vec![0u8; 512];
        tar[257..262].copy_from_slice(b"ustar");
        assert_eq!(Format::of(&tar), Some(Format::Tar));
        assert_eq!(Format::of(b"070701000"), Some(Format::Cpio));
        assert_eq!(Format::of(b"070707000"), None);
    }
}
