//! A SquashFS image, read one path component at a time.
//!
//! backhand's `Squashfs::from_reader` decompresses the whole inode, directory, id and fragment
//! tables up front and its `FilesystemReader` then builds the whole file tree, so their cost
//! grows with the number of files (a 100,000-file image took 13 times as long to inspect as a
//! tiny one) and a directory DAG turns the tree into an exponential walk (see DESIGN.md). This
//! reads the superblock with backhand and then only the metadata blocks a lookup needs
//! (metablock.rs): the blocks of the inodes and directory listings along the path, the id and
//! fragment table entries they name, and for a file's head its first data blocks. Every block
//! is decompressed with backhand's compressors, at most once, and within one bound per image.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufReader, Seek};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use backhand::compression::{Compressor, DefaultCompressor};
use backhand::kind::Kind;
use backhand::v4::inode::{Inode, InodeInner};
use backhand::{DataSize, Fragment, Squashfs, SuperBlock};
use serde::Serialize;

use super::data::{DataError, DataReader, Extent};
use super::dirtable::{parse_listing, RawEntry};
use super::inode::{self, InodeRef};
use super::metablock::{MetaError, MetaReader, MAX_METADATA_BLOCKS, METADATA_BLOCK};
use super::walk::{is_valid_name, FileKind, NodeInfo, Tree};
use super::ImageError;

/// squashfs_fs.h: ids and fragment entries per metadata block (4 and 16 bytes each).
const IDS_PER_BLOCK: u32 = (METADATA_BLOCK / 4) as u32;
const FRAGMENTS_PER_BLOCK: u32 = (METADATA_BLOCK / 16) as u32;
/// The most a directory listing may take: the metadata bound.
const MAX_LISTING: u64 = (MAX_METADATA_BLOCKS * METADATA_BLOCK) as u64;

/// Superblock facts shown by `rootrun inspect`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SquashfsFacts {
    /// `gzip`, `lzma`, `lzo`, `xz`, `lz4`, `zstd` or `none`.
    pub compression: String,
    pub block_size: u32,
    pub bytes_used: u64,
    pub inode_count: u32,
    /// Seconds since the epoch, as mksquashfs recorded it.
    pub mkfs_time: u32,
    /// Size of the image file on the host (at least `bytes_used`, padding included).
    pub file_size: u64,
}

/// An inode and where it was read from.
#[derive(Debug, Clone)]
pub struct Node {
    pub inode: Inode,
    pub at: InodeRef,
}

pub struct SquashSource {
    image: PathBuf,
    superblock: SuperBlock,
    file_size: u64,
    meta: MetaReader,
    /// Lookup table index slots read so far: slot position -> metadata block position.
    slots: Mutex<HashMap<u64, u64>>,
    root: Node,
    /// The image file, for positioned reads of file data that several threads can share.
    file: File,
}

impl SquashSource {
    pub fn open(image: &Path, file: File) -> Result<SquashSource, ImageError> {
        let io = |op, source| ImageError::Io {
            path: image.to_path_buf(),
            op,
            source,
        };
        let file_size = file.metadata().map_err(|e| io("stat", e))?.len();
        let kind = Kind::new_v4(&DefaultCompressor);
        // backhand parses the superblock from the reader's position, wherever the caller
        // left the file.
        (&file).rewind().map_err(|e| io("seek", e))?;
        let mut reader = BufReader::with_capacity(4096, &file);
        // backhand checks the magic, version, block size and its log.
        let (superblock, _) = Squashfs::superblock_and_compression_options(&mut reader, &kind)
            .map_err(|source| ImageError::Squashfs {
                image: image.to_path_buf(),
                context: "reading the SquashFS superblock".to_string(),
                source,
            })?;
        drop(reader);
        let meta_file = file.try_clone().map_err(|e| io("dup", e))?;
        let end = superblock.bytes_used.min(file_size);
        let meta = MetaReader::new(meta_file, end, superblock.compressor);
        let at = superblock.root_inode;
        let root = inode::read(&meta, superblock.inode_table, at, superblock.block_size)
            .map(|inode| Node { inode, at })
            .map_err(|e| meta_error(image, "/", e))?;
        Ok(SquashSource {
            image: image.to_path_buf(),
            superblock,
            file_size,
            meta,
            slots: Mutex::default(),
            root,
            file,
        })
    }

    pub(super) fn image_path(&self) -> &Path {
        &self.image
    }

    pub(super) fn superblock(&self) -> &SuperBlock {
        &self.superblock
    }

    pub(super) fn file(&self) -> &File {
        &self.file
    }

    pub(super) fn file_size(&self) -> u64 {
        self.file_size
    }

    /// The image's metadata block reader, for the tables unpack reads whole (xattrs).
    pub(super) fn meta(&self) -> &MetaReader {
        &self.meta
    }

    pub(super) fn root(&self) -> &Node {
        &self.root
    }

    /// How many metadata blocks this image's reads have decompressed (for tests).
    #[cfg(test)]
    pub(super) fn metadata_blocks_read(&self) -> usize {
        self.meta.blocks_read()
    }

    fn meta_err(&self, path: &str, err: MetaError) -> ImageError {
        meta_error(&self.image, path, err)
    }

    /// The inode at reference `at` (shown as `path` in errors).
    pub(super) fn node_at(&self, at: InodeRef, path: &str) -> Result<Node, ImageError> {
        let sb = &self.superblock;
        let inode = inode::read(&self.meta, sb.inode_table, at, sb.block_size)
            .map_err(|e| self.meta_err(path, e))?;
        Ok(Node { inode, at })
    }

    /// The inode a directory entry names, checked against the entry's inode number.
    pub(super) fn entry_node(&self, entry: &RawEntry<'_>, path: &str) -> Result<Node, ImageError> {
        let at = (u64::from(entry.inode_block) << 16) | u64::from(entry.inode_offset);
        let node = self.node_at(at, path)?;
        if node.inode.header.inode_number != entry.inode_number {
            return Err(self.corrupt(
                path,
                &format!(
                    "directory entry names inode {} but its reference holds inode {}",
                    entry.inode_number, node.inode.header.inode_number
                ),
            ));
        }
        Ok(node)
    }

    /// Entry `index` of the id table (uid and gid values).
    fn id(&self, index: u16) -> Result<u32, String> {
        let sb = &self.superblock;
        if index >= sb.id_count {
            return Err(format!(
                "uid/gid index {index} not in the id table of {}",
                sb.id_count
            ));
        }
        let value = self.lookup_entry::<4>(sb.id_table, u32::from(index), IDS_PER_BLOCK)?;
        Ok(u32::from_le_bytes(value))
    }

    /// Fragment table entry `index`.
    pub(super) fn fragment(&self, index: u32) -> Result<Fragment, String> {
        let sb = &self.superblock;
        if index >= sb.frag_count {
            return Err(format!(
                "fragment {index} not in the fragment table of {}",
                sb.frag_count
            ));
        }
        let e = self.lookup_entry::<16>(sb.frag_table, index, FRAGMENTS_PER_BLOCK)?;
        let start = u64::from_le_bytes([e[0], e[1], e[2], e[3], e[4], e[5], e[6], e[7]]);
        let raw = u32::from_le_bytes([e[8], e[9], e[10], e[11]]);
        let size = raw & !(1 << 24);
        if size > self.superblock.block_size {
            return Err(format!(
                "fragment {index} of {size} stored bytes, larger than the block size"
            ));
        }
        Ok(Fragment::new(
            start,
            DataSize::new(size, raw & (1 << 24) != 0),
            0,
        ))
    }

    /// Entry `index` of an id or fragment lookup table: the table's index (at `table`) holds
    /// one u64 position per metadata block of entries (squashfs_fs.h SQUASHFS_ID_BLOCK_*).
    fn lookup_entry<const N: usize>(
        &self,
        table: u64,
        index: u32,
        per_block: u32,
    ) -> Result<[u8; N], String> {
        let slot = table
            .checked_add(u64::from(index / per_block) * 8)
            .ok_or("lookup table index out of range")?;
        let mut slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
        let block = match slots.get(&slot) {
            Some(&block) => block,
            None => {
                let mut pos = [0u8; 8];
                self.meta
                    .read_at(&mut pos, slot)
                    .map_err(|e| e.to_string())?;
                *slots.entry(slot).or_insert(u64::from_le_bytes(pos))
            }
        };
        drop(slots);
        let mut cursor = self.meta.cursor(block, (index % per_block) as usize * N);
        cursor.bytes::<N>().map_err(|e| e.to_string())
    }

    pub fn facts(&self) -> SquashfsFacts {
        let sb = &self.superblock;
        let compression = match sb.compressor {
            Compressor::Uncompressed => "none",
            Compressor::Gzip => "gzip",
            Compressor::Lzma => "lzma",
            Compressor::Lzo => "lzo",
            Compressor::Xz => "xz",
            Compressor::Lz4 => "lz4",
            Compressor::Zstd => "zstd",
        };
        SquashfsFacts {
            compression: compression.to_string(),
            block_size: sb.block_size,
            bytes_used: sb.bytes_used,
            inode_count: sb.inode_count,
            mkfs_time: sb.mod_time,
            file_size: self.file_size,
        }
    }

    /// Reads at most `max` bytes from the start of regular file `node`: only the data blocks
    /// (or the fragment) covering them are read and decompressed.
    pub fn read_head(&self, node: &Node, path: &str, max: usize) -> Result<Vec<u8>, ImageError> {
        let extent = extent(&node.inode.inner)
            .ok_or_else(|| self.corrupt(path, "not a regular file inode"))?;
        let lookup = |index| self.fragment(index);
        let sb = &self.superblock;
        let reader = DataReader::new(
            &self.file,
            sb.bytes_used.min(self.file_size),
            sb.block_size,
            sb.compressor,
            &lookup,
        );
        reader.read_head(&extent, max).map_err(|e| match e {
            DataError::Image(what) => self.corrupt(path, &format!("reading file data: {what}")),
            DataError::Write(e) => self.corrupt(path, &format!("reading file data: {e}")),
            DataError::Aborted => self.corrupt(path, "reading file data: stopped"),
        })
    }

    pub(super) fn corrupt(&self, path: &str, what: &str) -> ImageError {
        ImageError::Corrupt {
            image: self.image.clone(),
            path: path.to_string(),
            what: what.to_string(),
        }
    }

    pub(super) fn info(&self, inode: &Inode, path: &str) -> Result<NodeInfo, ImageError> {
        let id = |index: u16| self.id(index).map_err(|what| self.corrupt(path, &what));
        let (kind, size) = kind_and_size(&inode.inner);
        Ok(NodeInfo {
            kind,
            mode: u32::from(inode.header.permissions) & 0o7777,
            uid: id(inode.header.uid)?,
            gid: id(inode.header.gid)?,
            size,
        })
    }

    /// The bytes of a directory's listing, read from the directory table.
    pub(super) fn listing(&self, dir: &Inode, dir_path: &str) -> Result<Vec<u8>, ImageError> {
        let (block, offset, size) = match &dir.inner {
            InodeInner::BasicDirectory(d) => (
                u64::from(d.block_index),
                usize::from(d.block_offset),
                u64::from(d.file_size),
            ),
            InodeInner::ExtendedDirectory(d) => (
                u64::from(d.block_index),
                usize::from(d.block_offset),
                u64::from(d.file_size),
            ),
            _ => return Err(self.corrupt(dir_path, "not a directory inode")),
        };
        // The recorded size counts 3 bytes for the implicit `.` and `..` entries.
        let Some(len) = size.checked_sub(3) else {
            return Ok(Vec::new());
        };
        if len > MAX_LISTING {
            return Err(self.corrupt(dir_path, &format!("directory listing of {len} bytes")));
        }
        let pos = self
            .superblock
            .dir_table
            .checked_add(block)
            .ok_or_else(|| self.corrupt(dir_path, "directory block out of range"))?;
        self.meta
            .read(pos, offset, len as usize)
            .map_err(|e| self.meta_err(dir_path, e))
    }
}

fn meta_error(image: &Path, path: &str, err: MetaError) -> ImageError {
    match err {
        MetaError::Corrupt(what) => ImageError::Corrupt {
            image: image.to_path_buf(),
            path: path.to_string(),
            what,
        },
        MetaError::TooManyBlocks => ImageError::TablesTooLarge {
            path: image.to_path_buf(),
            max_mib: ((MAX_METADATA_BLOCKS * METADATA_BLOCK) >> 20) as u64,
        },
    }
}

/// Where a regular file's data is, from its inode.
pub(super) fn extent(inner: &InodeInner) -> Option<Extent> {
    match inner {
        InodeInner::BasicFile(f) => Some(Extent {
            blocks_start: u64::from(f.blocks_start),
            block_sizes: f.block_sizes.clone(),
            frag_index: f.frag_index,
            block_offset: f.block_offset,
            file_size: u64::from(f.file_size),
        }),
        InodeInner::ExtendedFile(f) => Some(Extent {
            blocks_start: f.blocks_start,
            block_sizes: f.block_sizes.clone(),
            frag_index: f.frag_index,
            block_offset: f.block_offset,
            file_size: f.file_size,
        }),
        _ => None,
    }
}

fn kind_and_size(inner: &InodeInner) -> (FileKind, u64) {
    match inner {
        InodeInner::BasicDirectory(d) => (FileKind::Dir, u64::from(d.file_size)),
        InodeInner::ExtendedDirectory(d) => (FileKind::Dir, u64::from(d.file_size)),
        InodeInner::BasicFile(f) => (FileKind::File, u64::from(f.file_size)),
        InodeInner::ExtendedFile(f) => (FileKind::File, f.file_size),
        InodeInner::BasicSymlink(s) => (FileKind::Symlink, s.target_path.len() as u64),
        InodeInner::ExtendedSymlink(s) => (FileKind::Symlink, s.target_path.len() as u64),
        InodeInner::BasicBlockDevice(_) | InodeInner::ExtendedBlockDevice(_) => {
            (FileKind::Block, 0)
        }
        InodeInner::BasicCharacterDevice(_) | InodeInner::ExtendedCharacterDevice(_) => {
            (FileKind::Char, 0)
        }
        InodeInner::BasicNamedPipe(_) | InodeInner::ExtendedNamedPipe(_) => (FileKind::Fifo, 0),
        InodeInner::BasicSocket(_) | InodeInner::ExtendedSocket(_) => (FileKind::Socket, 0),
    }
}

/// The basic inode type a directory entry records for each kind (squashfs_fs.h).
pub(super) fn entry_type(kind: FileKind) -> u16 {
    match kind {
        FileKind::Dir => 1,
        FileKind::File => 2,
        FileKind::Symlink => 3,
        FileKind::Block => 4,
        FileKind::Char => 5,
        FileKind::Fifo => 6,
        FileKind::Socket => 7,
    }
}

impl Tree for SquashSource {
    type Node = Node;

    fn root(&self) -> Result<(Node, NodeInfo), ImageError> {
        let info = self.info(&self.root.inode, "/")?;
        if info.kind != FileKind::Dir {
            return Err(self.corrupt("/", "root inode is not a directory"));
        }
        Ok((self.root.clone(), info))
    }

    fn child(
        &self,
        dir: &Node,
        dir_path: &str,
        name: &[u8],
    ) -> Result<Option<(Node, NodeInfo)>, ImageError> {
        let listing = self.listing(&dir.inode, dir_path)?;
        let entries = parse_listing(&listing).map_err(|what| self.corrupt(dir_path, &what))?;
        let mut found = None;
        // The whole listing is checked, not just up to the match: a hostile name or a duplicate
        // means the image is not what the kernel would show, and that is worth refusing.
        for entry in entries {
            if !is_valid_name(entry.name) {
                return Err(ImageError::BadEntryName {
                    image: self.image.clone(),
                    dir: dir_path.to_string(),
                    name: String::from_utf8_lossy(entry.name).into_owned(),
                });
            }
            if entry.name != name {
                continue;
            }
            if found.is_some() {
                return Err(ImageError::DuplicateName {
                    image: self.image.clone(),
                    dir: dir_path.to_string(),
                    name: String::from_utf8_lossy(name).into_owned(),
                });
            }
            found = Some(entry);
        }
        let Some(entry) = found else {
            return Ok(None);
        };
        let path = format!(
            "{}/{}",
            dir_path.trim_end_matches('/'),
            String::from_utf8_lossy(name)
        );
        let node = self.entry_node(&entry, &path)?;
        let info = self.info(&node.inode, &path)?;
        if entry_type(info.kind) != entry.kind {
            return Err(self.corrupt(&path, "directory entry type differs from its inode's type"));
        }
        Ok(Some((node, info)))
    }

    fn link_target(&self, link: &Node, link_path: &str) -> Result<Vec<u8>, ImageError> {
        match &link.inode.inner {
            InodeInner::BasicSymlink(s) => Ok(s.target_path.clone()),
            InodeInner::ExtendedSymlink(s) => Ok(s.target_path.clone()),
            _ => Err(self.corrupt(link_path, "not a symlink inode")),
        }
    }
}
