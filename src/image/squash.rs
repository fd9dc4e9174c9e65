//! A SquashFS image read through backhand, one path component at a time.
//!
//! backhand's `FilesystemReader::from_reader` builds the whole file tree up front, which a
//! directory DAG turns into an exponential walk (see DESIGN.md). So this keeps backhand's
//! lower-level `Squashfs` (superblock, inode table, directory table, id and fragment tables,
//! all metadata: no file data is read) and looks entries up only along the requested path.
//! For file data it reuses backhand's block reader, which decompresses one block per read.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

use backhand::compression::Compressor;
use backhand::v4::inode::{BasicDirectory, Inode, InodeId, InodeInner};
use backhand::{FilesystemReader, Id, Squashfs, SquashfsFileReader, SuperBlock};
use serde::Serialize;

use super::dirtable::parse_listing;
use super::walk::{is_valid_name, FileKind, NodeInfo, Tree};
use super::ImageError;

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

pub struct SquashSource {
    image: PathBuf,
    superblock: SuperBlock,
    file_size: u64,
    root: Inode,
    inodes: HashMap<u32, Inode>,
    /// Directory table: metadata block offset (from the table start) -> offset in `dir_bytes`.
    dir_index: HashMap<u64, u64>,
    dir_bytes: Vec<u8>,
    ids: Vec<Id>,
    /// backhand's reader with an empty tree, used only to read file data blocks.
    data: FilesystemReader<'static>,
    /// The image file again, for positioned reads that several threads can share (unpack).
    file: File,
}

impl SquashSource {
    pub fn open(image: &Path, file: File) -> Result<SquashSource, ImageError> {
        let file_size = file
            .metadata()
            .map_err(|source| ImageError::Io {
                path: image.to_path_buf(),
                op: "stat",
                source,
            })?
            .len();
        let backhand_err = |context: &str, source| ImageError::Squashfs {
            image: image.to_path_buf(),
            context: context.to_string(),
            source,
        };
        let raw = file.try_clone().map_err(|source| ImageError::Io {
            path: image.to_path_buf(),
            op: "dup",
            source,
        })?;
        let squashfs = Squashfs::from_reader_with_offset(BufReader::new(file), 0)
            .map_err(|e| backhand_err("reading SquashFS superblock and tables", e))?;
        let Squashfs {
            kind,
            superblock,
            compression_options,
            inodes,
            root_inode,
            dir_blocks,
            fragments,
            export,
            id,
            file,
        } = squashfs;

        // into_filesystem_reader walks every directory from the root; handing it an empty root
        // directory gets a data reader (block cache, fragments, decompressor) without the walk.
        let empty_root = Inode::new(
            InodeId::BasicDirectory,
            root_inode.header,
            InodeInner::BasicDirectory(BasicDirectory {
                block_index: 0,
                link_count: 2,
                file_size: 0,
                block_offset: 0,
                parent_inode: 0,
            }),
        );
        let data = Squashfs {
            kind,
            superblock,
            compression_options,
            inodes: Default::default(),
            root_inode: empty_root,
            dir_blocks: Default::default(),
            fragments,
            export,
            id: id.clone(),
            file,
        }
        .into_filesystem_reader()
        .map_err(|e| backhand_err("setting up the data reader", e))?;

        Ok(SquashSource {
            image: image.to_path_buf(),
            superblock,
            file_size,
            root: root_inode,
            inodes: inodes.into_iter().collect(),
            dir_index: dir_blocks.0.into_iter().collect(),
            dir_bytes: dir_blocks.1,
            ids: id,
            data,
            file: raw,
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

    pub(super) fn root_inode(&self) -> &Inode {
        &self.root
    }

    pub(super) fn inode(&self, number: u32) -> Option<&Inode> {
        self.inodes.get(&number)
    }

    pub(super) fn fragments(&self) -> &[backhand::Fragment] {
        self.data.fragments.as_deref().unwrap_or(&[])
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

    /// Reads at most `max` bytes from the start of regular file `node`: backhand's reader
    /// decompresses one data block (or the fragment) per read, so only the blocks covering the
    /// first `max` bytes are touched.
    pub fn read_head(&self, node: &Inode, path: &str, max: usize) -> Result<Vec<u8>, ImageError> {
        let file = match &node.inner {
            InodeInner::BasicFile(f) => SquashfsFileReader::Basic(f.clone()),
            InodeInner::ExtendedFile(f) => SquashfsFileReader::Extended(f.clone()),
            _ => return Err(self.corrupt(path, "not a regular file inode")),
        };
        let handle = self.data.file(&file);
        let reader = handle
            .reader_checked()
            .map_err(|source| ImageError::Squashfs {
                image: self.image.clone(),
                context: format!("{path}: opening file data"),
                source,
            })?;
        let mut out = Vec::with_capacity(max.min(1 << 20));
        reader
            .take(u64::try_from(max).unwrap_or(u64::MAX))
            .read_to_end(&mut out)
            .map_err(|e| self.corrupt(path, &format!("reading file data: {e}")))?;
        Ok(out)
    }

    pub(super) fn corrupt(&self, path: &str, what: &str) -> ImageError {
        ImageError::Corrupt {
            image: self.image.clone(),
            path: path.to_string(),
            what: what.to_string(),
        }
    }

    pub(super) fn info(&self, inode: &Inode, path: &str) -> Result<NodeInfo, ImageError> {
        let id = |index: u16| {
            self.ids
                .get(usize::from(index))
                .map(|id| id.num)
                .ok_or_else(|| {
                    self.corrupt(path, &format!("uid/gid index {index} not in the id table"))
                })
        };
        let (kind, size) = kind_and_size(&inode.inner);
        Ok(NodeInfo {
            kind,
            mode: u32::from(inode.header.permissions) & 0o7777,
            uid: id(inode.header.uid)?,
            gid: id(inode.header.gid)?,
            size,
        })
    }

    /// The bytes of a directory's listing in the (already decompressed) directory table.
    pub(super) fn listing(&self, dir: &Inode, dir_path: &str) -> Result<&[u8], ImageError> {
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
            return Ok(&[]);
        };
        let start = self
            .dir_index
            .get(&block)
            .ok_or_else(|| self.corrupt(dir_path, "directory block not in the directory table"))?;
        let range = usize::try_from(*start)
            .ok()
            .and_then(|s| s.checked_add(offset))
            .and_then(|s| Some(s..s.checked_add(usize::try_from(len).ok()?)?));
        range
            .and_then(|r| self.dir_bytes.get(r))
            .ok_or_else(|| self.corrupt(dir_path, "directory listing beyond the directory table"))
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
    type Node = Inode;

    fn root(&self) -> Result<(Inode, NodeInfo), ImageError> {
        let info = self.info(&self.root, "/")?;
        if info.kind != FileKind::Dir {
            return Err(self.corrupt("/", "root inode is not a directory"));
        }
        Ok((self.root.clone(), info))
    }

    fn child(
        &self,
        dir: &Inode,
        dir_path: &str,
        name: &[u8],
    ) -> Result<Option<(Inode, NodeInfo)>, ImageError> {
        let entries = parse_listing(self.listing(dir, dir_path)?)
            .map_err(|what| self.corrupt(dir_path, &what))?;
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
        let inode = self.inodes.get(&entry.inode_number).ok_or_else(|| {
            self.corrupt(
                &path,
                &format!("inode {} not in the inode table", entry.inode_number),
            )
        })?;
        let info = self.info(inode, &path)?;
        if entry_type(info.kind) != entry.kind {
            return Err(self.corrupt(&path, "directory entry type differs from its inode's type"));
        }
        Ok(Some((inode.clone(), info)))
    }

    fn link_target(&self, link: &Inode, link_path: &str) -> Result<Vec<u8>, ImageError> {
        match &link.inner {
            InodeInner::BasicSymlink(s) => Ok(s.target_path.clone()),
            InodeInner::ExtendedSymlink(s) => Ok(s.target_path.clone()),
            _ => Err(self.corrupt(link_path, "not a symlink inode")),
        }
    }
}
