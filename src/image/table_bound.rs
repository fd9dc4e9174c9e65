//! A bound on what backhand decompresses into memory before rootrun sees a
//! single entry.
//!
//! backhand's `Squashfs::from_reader` decompresses the whole inode and
//! directory tables (every metadata block from the inode table's start to
//! the first lookup table) and the fragment and export lookup tables (as
//! many blocks as the superblock's counts ask for), all into memory. A
//! metadata block is at most 8 KiB decompressed, but can be a few dozen
//! bytes on disk: 8 KiB of zeros is 31 bytes with gzip. So a 10 MB image of
//! such blocks made a debug build of `rootrun inspect` hold 2.4 GB and
//! spend 52 s before backhand gave up on the first inode (issue #15), and
//! the memory grows with the image: 100 MB would take some 24 GB, this
//! machine's all. Each block's 2-byte header gives its
//! stored size, so the blocks can be counted without decompressing any,
//! before backhand is called.

use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::path::Path;

use super::ImageError;

/// squashfs_fs.h: SQUASHFS_METADATA_SIZE, the most a metadata block holds.
pub const METADATA_BLOCK: u64 = 8192;
/// Blocks of the inode, directory, fragment and export tables at most:
/// 64 MiB decompressed. A Debian 12 base root of 6,800 files has 56 (about
/// 8 per 1,000 files), so this takes images of about a million files. Near
/// the bound, tables of nothing but the smallest inodes (20 bytes each)
/// still cost backhand some 400 MB of memory (840 MB at twice the bound,
/// measured): bounded, where the 2.4 GB above only grew with the image.
pub const MAX_METADATA_BLOCKS: u64 = 8 * 1024;
/// The `*_start` value of a table the image does not have.
const NOT_SET: u64 = u64::MAX;
/// Header bit of a metadata block stored uncompressed.
const UNCOMPRESSED: u16 = 0x8000;
/// squashfs_fs.h: sizeof(struct squashfs_fragment_entry), and an export
/// table entry (one inode reference per inode).
const FRAGMENT_ENTRY: u64 = 16;
const EXPORT_ENTRY: u64 = 8;

/// The superblock fields the bound needs (squashfs_fs.h, struct
/// squashfs_super_block, little-endian).
struct Tables {
    inodes: u64,
    fragments: u64,
    id_table: u64,
    xattr_table: u64,
    inode_table: u64,
    dir_table: u64,
    fragment_table: u64,
    export_table: u64,
}

impl Tables {
    fn parse(sb: &[u8; 96]) -> Tables {
        let u32_at = |at: usize| {
            u64::from(u32::from_le_bytes([
                sb[at],
                sb[at + 1],
                sb[at + 2],
                sb[at + 3],
            ]))
        };
        let u64_at = |at: usize| {
            let mut b = [0u8; 8];
            b.copy_from_slice(&sb[at..at + 8]);
            u64::from_le_bytes(b)
        };
        Tables {
            inodes: u32_at(4),
            fragments: u32_at(16),
            id_table: u64_at(48),
            xattr_table: u64_at(56),
            inode_table: u64_at(64),
            dir_table: u64_at(72),
            fragment_table: u64_at(80),
            export_table: u64_at(88),
        }
    }

    /// Where backhand stops reading the directory table at the latest: the
    /// first table after it (its lookup blocks come before their index, so
    /// this may count a few of theirs too: a bound, not an exact count).
    fn metadata_end(&self, file_size: u64) -> u64 {
        [
            self.id_table,
            self.xattr_table,
            self.fragment_table,
            self.export_table,
        ]
        .into_iter()
        .filter(|&start| start != NOT_SET && start > self.dir_table)
        .fold(file_size, u64::min)
    }
}

/// Refuses an image whose metadata tables would take more than
/// [`MAX_METADATA_BLOCKS`] blocks decompressed. `file` is positioned
/// anywhere and left at its start.
pub fn check(path: &Path, file: &mut File, file_size: u64) -> Result<(), ImageError> {
    let io = |source| ImageError::Io {
        path: path.to_path_buf(),
        op: "read",
        source,
    };
    let mut sb = [0u8; 96];
    file.rewind().map_err(io)?;
    if file.read_exact(&mut sb).is_err() {
        return Ok(()); // too short for a superblock: backhand says so
    }
    let tables = Tables::parse(&sb);
    let lookup = |count: u64, entry: u64| count.saturating_mul(entry).div_ceil(METADATA_BLOCK);
    let mut blocks = lookup(tables.fragments, FRAGMENT_ENTRY);
    if tables.export_table != NOT_SET {
        blocks = blocks.saturating_add(lookup(tables.inodes, EXPORT_ENTRY));
    }
    let end = tables.metadata_end(file_size);
    let mut reader = BufReader::with_capacity(64 * 1024, &mut *file);
    let mut at = tables.inode_table;
    if at < end {
        reader.seek(SeekFrom::Start(at)).map_err(io)?;
    }
    while at < end && blocks <= MAX_METADATA_BLOCKS {
        let mut header = [0u8; 2];
        if reader.read_exact(&mut header).is_err() {
            break; // truncated: backhand reports it
        }
        let len = u16::from_le_bytes(header) & !UNCOMPRESSED;
        if len == 0 || u64::from(len) > METADATA_BLOCK {
            break; // not a metadata block: backhand reports it
        }
        blocks += 1;
        reader.seek_relative(i64::from(len)).map_err(io)?;
        at += 2 + u64::from(len);
    }
    drop(reader);
    file.rewind().map_err(io)?;
    if blocks > MAX_METADATA_BLOCKS {
        return Err(ImageError::TablesTooLarge {
            path: path.to_path_buf(),
            max_mib: (MAX_METADATA_BLOCKS * METADATA_BLOCK) >> 20,
        });
    }
    Ok(())
}
