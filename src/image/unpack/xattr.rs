//! The SquashFS extended attribute table, which backhand does not read (its v4 reader keeps only
//! the inodes' xattr indexes). Layout from squashfs-tools `squashfs_fs.h` and the kernel's
//! fs/squashfs/xattr.c and xattr_id.c:
//!
//! - the superblock's `xattr_table` points at `{table_start: u64, ids: u32, unused: u32}`,
//!   followed by one u64 location per metadata block of the id array;
//! - the id array holds `{xattr: u64 ref, count: u32, size: u32}` per index, where a ref is
//!   `(block offset from table_start) << 16 | offset in the decompressed block`;
//! - at a ref, `count` entries `{type: u16, name_size: u16, name, vsize: u32, value}`; a type
//!   with 0x100 set stores instead of the value an 8-byte ref to `{vsize: u32, value}`.
//!
//! Metadata blocks are `{header: u16, bytes}`: bit 15 set means stored uncompressed, the rest
//! is the stored length; each decompresses to at most 8 KiB. They are read through the
//! image's `MetaReader` (metablock.rs), within its bound.

use std::collections::HashMap;
use std::ffi::CString;

use super::super::metablock::{MetaReader, METADATA_BLOCK};

const NOT_SET: u64 = u64::MAX;
const ID_ENTRY_SIZE: u64 = 16;
const VALUE_OOL: u16 = 0x100;
/// The kernel's XATTR_SIZE_MAX: no single value may be larger.
const MAX_VALUE: usize = 65536;

/// One extended attribute, its name with the namespace prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Xattr {
    pub name: CString,
    pub value: Vec<u8>,
}

struct IdEntry {
    xattr_ref: u64,
    count: u32,
}

/// The decompressed xattr table of an image (empty when the image has none).
#[derive(Default)]
pub struct XattrTable {
    ids: Vec<IdEntry>,
    /// Decompressed key/value metadata, and block offset (from table_start) -> position in it.
    bytes: Vec<u8>,
    blocks: HashMap<u64, usize>,
}

impl XattrTable {
    /// Reads the table at `xattr_table` through `meta` (whose bound on decompressed
    /// metadata blocks it shares with the rest of the image's reads).
    pub fn read(meta: &MetaReader, xattr_table: u64, image_len: u64) -> Result<XattrTable, String> {
        if xattr_table == NOT_SET {
            return Ok(XattrTable::default());
        }
        let mut head = [0u8; 16];
        meta.read_at(&mut head, xattr_table)
            .map_err(|e| e.to_string())?;
        let table_start = u64::from_le_bytes(head[0..8].try_into().map_err(|_| "xattr header")?);
        let id_count = u64::from(u32::from_le_bytes(
            head[8..12].try_into().map_err(|_| "xattr header")?,
        ));
        if id_count.saturating_mul(ID_ENTRY_SIZE) > image_len {
            return Err(format!(
                "xattr table claims {id_count} ids, more than the image holds"
            ));
        }
        let id_bytes = id_count * ID_ENTRY_SIZE;
        let block_count = id_bytes.div_ceil(METADATA_BLOCK as u64);
        let mut locations = vec![0u8; usize::try_from(block_count * 8).map_err(|_| "xattr ids")?];
        meta.read_at(&mut locations, xattr_table + 16)
            .map_err(|e| e.to_string())?;

        let mut id_data = Vec::new();
        let mut first_id_block = xattr_table;
        for chunk in locations.chunks_exact(8) {
            let pos = u64::from_le_bytes(chunk.try_into().map_err(|_| "xattr id location")?);
            first_id_block = first_id_block.min(pos);
            let block = meta.block(pos).map_err(|e| e.to_string())?;
            id_data.extend_from_slice(&block.bytes);
        }
        let ids = id_data
            .chunks_exact(16)
            .take(usize::try_from(id_count).map_err(|_| "xattr ids")?)
            .map(|e| IdEntry {
                xattr_ref: u64::from_le_bytes(e[0..8].try_into().unwrap_or_default()),
                count: u32::from_le_bytes(e[8..12].try_into().unwrap_or_default()),
            })
            .collect::<Vec<_>>();
        if (ids.len() as u64) < id_count {
            return Err("xattr id array truncated".into());
        }

        // The key/value blocks run from table_start up to the first id block.
        let mut bytes = Vec::new();
        let mut blocks = HashMap::new();
        let mut pos = table_start;
        while pos < first_id_block {
            // Up to 8 KiB out of each block, however few bytes it is stored in: the reader's
            // bound on decompressed metadata holds here too.
            let block = meta.block(pos).map_err(|e| e.to_string())?;
            blocks.insert(pos - table_start, bytes.len());
            bytes.extend_from_slice(&block.bytes);
            pos = block.next;
        }
        Ok(XattrTable { ids, bytes, blocks })
    }

    /// The attributes of xattr index `index` (u32::MAX means none).
    pub fn get(&self, index: u32) -> Result<Vec<Xattr>, String> {
        if index == u32::MAX {
            return Ok(Vec::new());
        }
        let id = self
            .ids
            .get(usize::try_from(index).map_err(|_| "xattr index")?)
            .ok_or_else(|| format!("xattr index {index} not in the xattr id table"))?;
        let mut pos = self.locate(id.xattr_ref)?;
        let mut out = Vec::new();
        for _ in 0..id.count {
            let kind = u16::from_le_bytes(self.take::<2>(&mut pos)?);
            let name_len = usize::from(u16::from_le_bytes(self.take::<2>(&mut pos)?));
            let name = self.slice(&mut pos, name_len)?;
            let prefix: &[u8] = match kind & 0xff {
                0 => b"user.",
                1 => b"trusted.",
                2 => b"security.",
                other => return Err(format!("unknown xattr namespace {other}")),
            };
            let full = [prefix, name].concat();
            let name = CString::new(full).map_err(|_| "xattr name contains a NUL byte")?;
            let mut value_len = u32::from_le_bytes(self.take::<4>(&mut pos)?) as usize;
            let value = if kind & VALUE_OOL != 0 {
                if value_len != 8 {
                    return Err("out-of-line xattr value reference is not 8 bytes".into());
                }
                let mut at = self.locate(u64::from_le_bytes(self.take::<8>(&mut pos)?))?;
                value_len = u32::from_le_bytes(self.take::<4>(&mut at)?) as usize;
                self.checked_len(value_len)?;
                self.slice(&mut at, value_len)?.to_vec()
            } else {
                self.checked_len(value_len)?;
                self.slice(&mut pos, value_len)?.to_vec()
            };
            out.push(Xattr { name, value });
        }
        Ok(out)
    }

    fn checked_len(&self, len: usize) -> Result<(), String> {
        if len > MAX_VALUE {
            return Err(format!(
                "xattr value of {len} bytes (the kernel takes at most {MAX_VALUE})"
            ));
        }
        Ok(())
    }

    fn locate(&self, xattr_ref: u64) -> Result<usize, String> {
        let start = self
            .blocks
            .get(&(xattr_ref >> 16))
            .ok_or("xattr reference to a block outside the xattr table")?;
        Ok(start + (xattr_ref & 0xffff) as usize)
    }

    fn slice(&self, pos: &mut usize, len: usize) -> Result<&[u8], String> {
        let end = pos.checked_add(len).ok_or("xattr entry overflows")?;
        let bytes = self
            .bytes
            .get(*pos..end)
            .ok_or("xattr entry runs past the xattr table")?;
        *pos = end;
        Ok(bytes)
    }

    fn take<const N: usize>(&self, pos: &mut usize) -> Result<[u8; N], String> {
        self.slice(pos, N)?
            .try_into()
            .map_err(|_| "xattr entry truncated".to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::super::super::metablock::MAX_METADATA_BLOCKS;
    use super::*;
    use backhand::compression::Compressor;
    use std::fs::File;

    #[test]
    fn an_xattr_table_of_more_blocks_than_the_bound_is_refused() {
        // Key/value blocks of one stored byte each from offset 0, then the
        // xattr table header (table_start 0, one id) and its one id block.
        let blocks = MAX_METADATA_BLOCKS + 1;
        let mut image: Vec<u8> = [0x01, 0x80, 0x00].repeat(blocks);
        let header_at = image.len() as u64;
        image.extend_from_slice(&0u64.to_le_bytes());
        image.extend_from_slice(&1u32.to_le_bytes());
        image.extend_from_slice(&0u32.to_le_bytes());
        image.extend_from_slice(&(header_at + 24).to_le_bytes());
        image.extend_from_slice(&(0x8000u16 | 16).to_le_bytes());
        image.extend_from_slice(&[0u8; 16]);
        let path = std::env::temp_dir().join(format!("rootrun-xattr-bound-{}", std::process::id()));
        std::fs::write(&path, &image).expect("write");
        let file = File::open(&path).expect("open");
        let _ = std::fs::remove_file(&path);
        let len = image.len() as u64;
        let meta = MetaReader::new(file, len, Compressor::Gzip);
        let err = XattrTable::read(&meta, header_at, len)
            .err()
            .expect("refused");
        assert!(err.contains("more than 8192 metadata blocks"), "{err}");
    }
}
