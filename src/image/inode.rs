//! One SquashFS inode, parsed from the metadata blocks that hold it into backhand's inode
//! types.
//!
//! backhand parses inodes only as part of its whole-table read, and through deku, which
//! reserves a file's whole block list (up to 2^29 entries for a hostile size) before reading
//! it. This reads one inode at a reference, with every count checked before it is used and
//! memory that grows only with the bytes the image really holds. Layout: squashfs-tools
//! `squashfs_fs.h` (struct squashfs_*_inode_header) and the kernel's fs/squashfs/inode.c.

use backhand::v4::inode::{
    BasicDeviceSpecialFile, BasicDirectory, BasicSymlink, ExtendedDeviceSpecialFile,
    ExtendedDirectory, ExtendedFile, ExtendedIPCNode, ExtendedSymlink, IPCNode, Inode, InodeHeader,
    InodeId, InodeInner,
};
use backhand::{BasicFile, DataSize};

use super::metablock::{Cursor, MetaError, MetaReader, MAX_METADATA_BLOCKS, METADATA_BLOCK};

/// squashfs_fs.h SQUASHFS_INVALID_FRAG: a file without a tail fragment.
pub const NO_FRAGMENT: u32 = u32::MAX;
/// PATH_MAX without its NUL: the longest symlink target the kernel creates.
const MAX_TARGET: u32 = 4095;
/// A data block's stored size: bit 24 marks it stored uncompressed, and no block is larger
/// than 1 MiB (squashfs_fs.h SQUASHFS_COMPRESSED_BIT_BLOCK, SQUASHFS_FILE_MAX_SIZE).
const BLOCK_UNCOMPRESSED: u32 = 1 << 24;
/// More block list entries than the metadata bound can hold cannot be real.
const MAX_BLOCK_LIST: u64 = (MAX_METADATA_BLOCKS * METADATA_BLOCK / 4) as u64;

/// Where an inode is: `(metadata block position from the inode table's start) << 16 |
/// offset in the block`, as in the superblock's root_inode and the kernel's
/// SQUASHFS_INODE_BLK / SQUASHFS_INODE_OFFSET.
pub type InodeRef = u64;

/// The inode at `at`, in the inode table starting at image offset `table`.
pub fn read(
    meta: &MetaReader,
    table: u64,
    at: InodeRef,
    block_size: u32,
) -> Result<Inode, MetaError> {
    let block = table
        .checked_add(at >> 16)
        .ok_or_else(|| MetaError::Corrupt(format!("inode reference {at:#x} out of range")))?;
    let mut c = meta.cursor(block, (at & 0xffff) as usize);
    let kind = c.u16()?;
    let header = InodeHeader {
        permissions: c.u16()?,
        uid: c.u16()?,
        gid: c.u16()?,
        mtime: c.u32()?,
        inode_number: c.u32()?,
    };
    let (id, inner) = match kind {
        1 => (
            InodeId::BasicDirectory,
            InodeInner::BasicDirectory(BasicDirectory {
                block_index: c.u32()?,
                link_count: c.u32()?,
                file_size: c.u16()?,
                block_offset: c.u16()?,
                parent_inode: c.u32()?,
            }),
        ),
        2 => {
            let blocks_start = c.u32()?;
            let frag_index = c.u32()?;
            let block_offset = c.u32()?;
            let file_size = c.u32()?;
            let block_sizes = block_list(&mut c, u64::from(file_size), frag_index, block_size)?;
            (
                InodeId::BasicFile,
                InodeInner::BasicFile(BasicFile {
                    blocks_start,
                    frag_index,
                    block_offset,
                    file_size,
                    block_sizes,
                }),
            )
        }
        3 | 10 => {
            let link_count = c.u32()?;
            let (target_size, target_path) = target(&mut c)?;
            if kind == 3 {
                let inner = BasicSymlink {
                    link_count,
                    target_size,
                    target_path,
                };
                (InodeId::BasicSymlink, InodeInner::BasicSymlink(inner))
            } else {
                let inner = ExtendedSymlink {
                    link_count,
                    target_size,
                    target_path,
                    xattr_index: c.u32()?,
                };
                (InodeId::ExtendedSymlink, InodeInner::ExtendedSymlink(inner))
            }
        }
        4 | 5 => {
            let dev = BasicDeviceSpecialFile {
                link_count: c.u32()?,
                device_number: c.u32()?,
            };
            if kind == 4 {
                (InodeId::BasicBlockDevice, InodeInner::BasicBlockDevice(dev))
            } else {
                let inner = InodeInner::BasicCharacterDevice(dev);
                (InodeId::BasicCharacterDevice, inner)
            }
        }
        6 | 7 => {
            let ipc = IPCNode {
                link_count: c.u32()?,
            };
            if kind == 6 {
                (InodeId::BasicNamedPipe, InodeInner::BasicNamedPipe(ipc))
            } else {
                (InodeId::BasicSocket, InodeInner::BasicSocket(ipc))
            }
        }
        8 => (
            InodeId::ExtendedDirectory,
            // The directory index after it only speeds up lookups in large directories; a
            // lookup here reads the whole listing, so it is not parsed.
            InodeInner::ExtendedDirectory(ExtendedDirectory {
                link_count: c.u32()?,
                file_size: c.u32()?,
                block_index: c.u32()?,
                parent_inode: c.u32()?,
                index_count: c.u16()?,
                block_offset: c.u16()?,
                xattr_index: c.u32()?,
                dir_index: Vec::new(),
            }),
        ),
        9 => {
            let blocks_start = c.u64()?;
            let file_size = c.u64()?;
            let sparse = c.u64()?;
            let link_count = c.u32()?;
            let frag_index = c.u32()?;
            let block_offset = c.u32()?;
            let xattr_index = c.u32()?;
            let block_sizes = block_list(&mut c, file_size, frag_index, block_size)?;
            (
                InodeId::ExtendedFile,
                InodeInner::ExtendedFile(ExtendedFile {
                    blocks_start,
                    file_size,
                    sparse,
                    link_count,
                    frag_index,
                    block_offset,
                    xattr_index,
                    block_sizes,
                }),
            )
        }
        11 | 12 => {
            let dev = ExtendedDeviceSpecialFile {
                link_count: c.u32()?,
                device_number: c.u32()?,
                xattr_index: c.u32()?,
            };
            if kind == 11 {
                let inner = InodeInner::ExtendedBlockDevice(dev);
                (InodeId::ExtendedBlockDevice, inner)
            } else {
                let inner = InodeInner::ExtendedCharacterDevice(dev);
                (InodeId::ExtendedCharacterDevice, inner)
            }
        }
        13 | 14 => {
            let ipc = ExtendedIPCNode {
                link_count: c.u32()?,
                xattr_index: c.u32()?,
            };
            if kind == 13 {
                (
                    InodeId::ExtendedNamedPipe,
                    InodeInner::ExtendedNamedPipe(ipc),
                )
            } else {
                (InodeId::ExtendedSocket, InodeInner::ExtendedSocket(ipc))
            }
        }
        other => {
            return Err(MetaError::Corrupt(format!(
                "inode at {at:#x} has unknown type {other}"
            )))
        }
    };
    Ok(Inode::new(id, header, inner))
}

fn target(c: &mut Cursor<'_>) -> Result<(u32, Vec<u8>), MetaError> {
    let size = c.u32()?;
    if size > MAX_TARGET {
        return Err(MetaError::Corrupt(format!(
            "symlink target of {size} bytes, more than PATH_MAX"
        )));
    }
    let mut path = Vec::with_capacity(size as usize);
    c.append(&mut path, size as usize)?;
    Ok((size, path))
}

/// A file's data block sizes: one per full block, plus one for the last partial block when
/// the file has no tail fragment (the kernel's fs/squashfs/file.c, read_blocklist).
fn block_list(
    c: &mut Cursor<'_>,
    file_size: u64,
    frag_index: u32,
    block_size: u32,
) -> Result<Vec<DataSize>, MetaError> {
    let bs = u64::from(block_size.max(1));
    let count = if frag_index == NO_FRAGMENT {
        file_size.div_ceil(bs)
    } else {
        file_size / bs
    };
    if count > MAX_BLOCK_LIST {
        return Err(MetaError::Corrupt(format!(
            "a {file_size}-byte file would list {count} data blocks"
        )));
    }
    // Read as the image holds it, not reserved as claimed: a hostile count runs out of
    // image (or into the metadata bound) first.
    let mut raw = Vec::new();
    c.append(&mut raw, (count * 4) as usize)?;
    let mut sizes = Vec::with_capacity(raw.len() / 4);
    for entry in raw.chunks_exact(4) {
        let raw = u32::from_le_bytes([entry[0], entry[1], entry[2], entry[3]]);
        let size = raw & !BLOCK_UNCOMPRESSED;
        if u64::from(size) > bs {
            return Err(MetaError::Corrupt(format!(
                "data block of {size} stored bytes, larger than the block size {bs}"
            )));
        }
        sizes.push(DataSize::new(size, raw & BLOCK_UNCOMPRESSED != 0));
    }
    Ok(sizes)
}
