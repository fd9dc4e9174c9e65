//! SquashFS metadata blocks, read and decompressed one at a time, on demand.
//!
//! Inodes, directory listings and the id, fragment and xattr lookup tables
//! are all stored as runs of metadata blocks (squashfs_fs.h,
//! SQUASHFS_METADATA_SIZE; the kernel's fs/squashfs/cache.c): a 2-byte
//! header whose bit 15 says "stored uncompressed" and whose low bits are the
//! stored length, then that many bytes that hold at most 8 KiB of data. A
//! reference into such a run is (position of a block, offset in its
//! decompressed bytes), and a value may continue into the next block.
//!
//! Only the blocks a lookup needs are read, so the cost of looking up one
//! path does not grow with the number of files in the image. Each block is
//! decompressed once and kept by its position in the image. A block can be
//! a few dozen bytes on disk and 8 KiB in memory (8 KiB of zeros is 31
//! bytes of gzip: a 10 MB image of such blocks once made backhand hold
//! 2.4 GB), so one image's reader decompresses at most
//! [`MAX_METADATA_BLOCKS`] blocks in all, whatever reads them.

use std::collections::HashMap;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::sync::{Arc, Mutex};

use backhand::compression::Compressor;

use super::data::decompress;

/// squashfs_fs.h: SQUASHFS_METADATA_SIZE, the most a metadata block holds.
pub const METADATA_BLOCK: usize = 8192;
/// Metadata blocks one open image decompresses at most: 64 MiB. A Debian
/// 12 base root of 6,800 files has 56 blocks of inodes and directories
/// (about 8 per 1,000 files), so unpacking an image of about a million
/// files fits; a lookup of one path takes a handful.
pub const MAX_METADATA_BLOCKS: usize = 8 * 1024;
/// Header bit of a metadata block stored uncompressed.
const UNCOMPRESSED: u16 = 0x8000;

/// One decompressed block and where the next one starts.
pub struct Block {
    pub bytes: Vec<u8>,
    pub next: u64,
}

/// Why a metadata read failed.
#[derive(Debug)]
pub enum MetaError {
    /// The image is inconsistent (or cannot be read): what is wrong.
    Corrupt(String),
    /// More than [`MAX_METADATA_BLOCKS`] blocks were needed.
    TooManyBlocks,
}

impl std::fmt::Display for MetaError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            MetaError::Corrupt(what) => f.write_str(what),
            MetaError::TooManyBlocks => write!(
                f,
                "more than {MAX_METADATA_BLOCKS} metadata blocks ({} MiB) decompressed",
                (MAX_METADATA_BLOCKS * METADATA_BLOCK) >> 20
            ),
        }
    }
}

fn corrupt(what: String) -> MetaError {
    MetaError::Corrupt(what)
}

pub struct MetaReader {
    file: File,
    /// Where metadata may lie: the superblock's bytes_used, at most the file size.
    end: u64,
    compressor: Compressor,
    blocks: Mutex<HashMap<u64, Arc<Block>>>,
}

impl MetaReader {
    pub fn new(file: File, end: u64, compressor: Compressor) -> MetaReader {
        MetaReader {
            file,
            end,
            compressor,
            blocks: Mutex::new(HashMap::new()),
        }
    }

    /// How many blocks have been decompressed so far.
    #[cfg(test)]
    pub fn blocks_read(&self) -> usize {
        self.lock().len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Arc<Block>>> {
        self.blocks.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The block stored at image offset `pos`, decompressed.
    pub fn block(&self, pos: u64) -> Result<Arc<Block>, MetaError> {
        if let Some(hit) = self.lock().get(&pos) {
            return Ok(Arc::clone(hit));
        }
        if self.lock().len() >= MAX_METADATA_BLOCKS {
            return Err(MetaError::TooManyBlocks);
        }
        let mut header = [0u8; 2];
        self.read_at(&mut header, pos)?;
        let header = u16::from_le_bytes(header);
        let len = usize::from(header & !UNCOMPRESSED);
        if len == 0 || len > METADATA_BLOCK {
            return Err(corrupt(format!(
                "metadata block at offset {pos} claims {len} stored bytes (1 to {METADATA_BLOCK})"
            )));
        }
        let mut stored = vec![0u8; len];
        self.read_at(&mut stored, pos + 2)?;
        let bytes = if header & UNCOMPRESSED != 0 {
            stored
        } else {
            let mut out = Vec::new();
            decompress(self.compressor, &stored, &mut out, METADATA_BLOCK)
                .map_err(|e| corrupt(format!("metadata block at offset {pos}: {e}")))?;
            out
        };
        let block = Arc::new(Block {
            bytes,
            next: pos + 2 + len as u64,
        });
        let mut blocks = self.lock();
        if blocks.len() >= MAX_METADATA_BLOCKS {
            return Err(MetaError::TooManyBlocks);
        }
        blocks.insert(pos, Arc::clone(&block));
        Ok(block)
    }

    /// Reads `buf.len()` bytes at image offset `pos`, all within the image's used bytes.
    pub fn read_at(&self, buf: &mut [u8], pos: u64) -> Result<(), MetaError> {
        let inside = pos
            .checked_add(buf.len() as u64)
            .is_some_and(|end| end <= self.end);
        if !inside {
            return Err(corrupt(format!(
                "{} bytes at offset {pos} lie beyond the image's {} bytes",
                buf.len(),
                self.end
            )));
        }
        self.file
            .read_exact_at(buf, pos)
            .map_err(|e| corrupt(format!("reading {} bytes at offset {pos}: {e}", buf.len())))
    }

    /// A cursor at byte `offset` of the block stored at `pos`.
    pub fn cursor(&self, pos: u64, offset: usize) -> Cursor<'_> {
        Cursor {
            reader: self,
            pos,
            offset,
            block: None,
        }
    }

    /// `len` bytes from byte `offset` of the block at `pos` on, across blocks.
    pub fn read(&self, pos: u64, offset: usize, len: usize) -> Result<Vec<u8>, MetaError> {
        let mut cursor = self.cursor(pos, offset);
        let mut out = Vec::new();
        cursor.append(&mut out, len)?;
        Ok(out)
    }
}

/// Sequential reading through a run of metadata blocks.
pub struct Cursor<'a> {
    reader: &'a MetaReader,
    pos: u64,
    offset: usize,
    block: Option<Arc<Block>>,
}

impl Cursor<'_> {
    /// Appends the next `len` bytes to `out`. Memory grows only with what the image really
    /// holds: a hostile length runs into the end of the image or the block bound first.
    pub fn append(&mut self, out: &mut Vec<u8>, mut len: usize) -> Result<(), MetaError> {
        while len > 0 {
            let block = match &self.block {
                Some(block) => Arc::clone(block),
                None => {
                    let block = self.reader.block(self.pos)?;
                    self.block = Some(Arc::clone(&block));
                    block
                }
            };
            let Some(rest) = block.bytes.get(self.offset..) else {
                return Err(corrupt(format!(
                    "offset {} beyond the {} bytes of the metadata block at {}",
                    self.offset,
                    block.bytes.len(),
                    self.pos
                )));
            };
            let n = rest.len().min(len);
            out.extend_from_slice(&rest[..n]);
            len -= n;
            self.offset += n;
            if self.offset == block.bytes.len() && len > 0 {
                self.pos = block.next;
                self.offset = 0;
                self.block = None;
            }
        }
        Ok(())
    }

    pub fn bytes<const N: usize>(&mut self) -> Result<[u8; N], MetaError> {
        let mut out = Vec::with_capacity(N);
        self.append(&mut out, N)?;
        out.try_into()
            .map_err(|_| corrupt("short metadata read".to_string()))
    }

    pub fn u16(&mut self) -> Result<u16, MetaError> {
        self.bytes().map(u16::from_le_bytes)
    }

    pub fn u32(&mut self) -> Result<u32, MetaError> {
        self.bytes().map(u32::from_le_bytes)
    }

    pub fn u64(&mut self) -> Result<u64, MetaError> {
        self.bytes().map(u64::from_le_bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn reader_of(bytes: &[u8]) -> MetaReader {
        let dir = std::env::temp_dir().join(format!("rootrun-metablock-{}", std::process::id()));
        let _ = std::fs::create_dir_all(&dir);
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let path = dir.join(format!("{n}.img"));
        let mut file = File::create(&path).expect("create");
        file.write_all(bytes).expect("write");
        let file = File::open(&path).expect("open");
        let _ = std::fs::remove_file(&path);
        MetaReader::new(file, bytes.len() as u64, Compressor::Gzip)
    }

    fn uncompressed(payload: &[u8]) -> Vec<u8> {
        let header = u16::try_from(payload.len()).unwrap_or(0) | UNCOMPRESSED;
        let mut v = header.to_le_bytes().to_vec();
        v.extend_from_slice(payload);
        v
    }

    #[test]
    fn reads_across_blocks_and_caches() {
        let mut image = uncompressed(b"abcd");
        image.extend(uncompressed(b"efgh"));
        let reader = reader_of(&image);
        let bytes = reader.read(0, 2, 4).map_err(|e| e.to_string());
        assert_eq!(bytes.as_deref(), Ok(&b"cdef"[..]));
        assert_eq!(reader.blocks_read(), 2);
        let mut cursor = reader.cursor(6, 0);
        assert_eq!(cursor.u16().ok(), Some(u16::from_le_bytes(*b"ef")));
        assert_eq!(reader.blocks_read(), 2, "second read from the cache");
    }

    #[test]
    fn bad_offsets_and_lengths_are_errors() {
        let image = uncompressed(b"abcd");
        let reader = reader_of(&image);
        // Past the last block, into the end of the image.
        assert!(matches!(reader.read(0, 0, 5), Err(MetaError::Corrupt(_))));
        // An offset past the block's bytes.
        assert!(matches!(reader.read(0, 9, 1), Err(MetaError::Corrupt(_))));
        // A position past the image, and one whose length would overflow.
        assert!(reader.read(1 << 40, 0, 1).is_err());
        assert!(reader.read(u64::MAX - 1, 0, 1).is_err());
        // A zero length and one over 8 KiB are not metadata blocks.
        assert!(reader_of(&[0, 0, 1]).read(0, 0, 1).is_err());
        let mut long = 0x2001u16.to_le_bytes().to_vec();
        long.resize(0x2003, 0);
        assert!(reader_of(&long).read(0, 0, 1).is_err());
        // Garbage marked compressed fails to decompress.
        assert!(reader_of(&[3, 0, 1, 2, 3]).read(0, 0, 1).is_err());
    }

    #[test]
    fn a_run_of_tiny_blocks_stops_at_the_bound() {
        let mut image = Vec::new();
        for _ in 0..=MAX_METADATA_BLOCKS {
            image.extend(uncompressed(b"z"));
        }
        let reader = reader_of(&image);
        let err = reader.read(0, 0, MAX_METADATA_BLOCKS + 1);
        assert!(matches!(err, Err(MetaError::TooManyBlocks)));
        assert_eq!(reader.blocks_read(), MAX_METADATA_BLOCKS);
    }
}
