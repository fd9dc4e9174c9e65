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
//! kept by its position in the image, and an xz or gzip block is decoded
//! only as far as reads have needed (its decoder kept to go on later): a
//! lookup touches one inode or listing in each block, about half-way in on
//! average. The tail of such a block, and so its checksum, is not checked
//! until something reads there; every value read is bounds-checked where it
//! is used, as for any image. A block can be
//! a few dozen bytes on disk and 8 KiB in memory (8 KiB of zeros is 31
//! bytes of gzip: a 10 MB image of such blocks once made backhand hold
//! 2.4 GB), so one image's reader decompresses at most
//! [`MAX_METADATA_BLOCKS`] blocks in all, whatever reads them.

use std::collections::HashMap;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

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
/// xz and gzip blocks are decoded only as far as reads have needed, in
/// steps of this many bytes: the inode of a lookup is on average half-way
/// into its block, so a lookup decodes about half of each block it touches.
const DECODE_STEP: usize = 256;
/// liblzma's memory limit for a part-decoded block, whose decoder lives as
/// long as the image is open: mksquashfs's xz dictionary is at most the
/// block size (1 MiB) and xz's own default is 8 MiB; a header asking for
/// more is hostile. The dictionary is allocated but only written as far as
/// the block is decoded (8 KiB at most).
const META_XZ_MEMLIMIT: u64 = 16 << 20;
/// Blocks that may be left part-decoded at once, each holding its decoder
/// (for xz, a dictionary of up to the block size): past this many, a new
/// block is decoded whole on first use.
const MAX_PARTIAL: usize = 16;

/// A whole decompressed block and where the next one starts.
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

/// The decoder of a block decoded part-way (its stored bytes are kept beside it).
enum Decoder {
    Xz(liblzma::stream::Stream),
    Gzip(flate2::Decompress),
}

/// One metadata block, decompressed as far as reads have needed.
struct Slot {
    /// Where the block is stored (for messages).
    pos: u64,
    /// Where the next block starts: known from the header alone.
    next: u64,
    progress: Mutex<Progress>,
}

struct Progress {
    /// The bytes decoded so far: all of the block once `decoder` is `None`
    /// (and it has not failed).
    bytes: Vec<u8>,
    /// The decoder and the stored bytes it reads, while the block is part-decoded.
    decoder: Option<(Decoder, Vec<u8>)>,
    /// Why decoding failed, once it has: every later read fails the same.
    failed: Option<String>,
}

impl Decoder {
    /// Decodes what it has not read yet of `stored` into `out`: how many
    /// bytes it read and wrote, and whether the stream ended.
    fn step(&mut self, stored: &[u8], out: &mut [u8]) -> Result<(u64, usize, bool), String> {
        match self {
            Decoder::Xz(xz) => {
                let (read, wrote) = (xz.total_in(), xz.total_out());
                let rest = stored.get(read as usize..).unwrap_or_default();
                let status = xz
                    .process(rest, out, liblzma::stream::Action::Run)
                    .map_err(|e| e.to_string())?;
                Ok((
                    xz.total_in() - read,
                    (xz.total_out() - wrote) as usize,
                    status == liblzma::stream::Status::StreamEnd,
                ))
            }
            Decoder::Gzip(zlib) => {
                let (read, wrote) = (zlib.total_in(), zlib.total_out());
                let rest = stored.get(read as usize..).unwrap_or_default();
                let status = zlib
                    .decompress(rest, out, flate2::FlushDecompress::None)
                    .map_err(|e| e.to_string())?;
                Ok((
                    zlib.total_in() - read,
                    (zlib.total_out() - wrote) as usize,
                    status == flate2::Status::StreamEnd,
                ))
            }
        }
    }
}

impl Progress {
    fn whole(bytes: Vec<u8>) -> Progress {
        Progress {
            bytes,
            decoder: None,
            failed: None,
        }
    }

    fn complete(&self) -> bool {
        self.decoder.is_none()
    }
}

pub struct MetaReader {
    file: File,
    /// Where metadata may lie: the superblock's bytes_used, at most the file size.
    end: u64,
    compressor: Compressor,
    blocks: Mutex<HashMap<u64, Arc<Slot>>>,
    /// Blocks holding a decoder (at most [`MAX_PARTIAL`]).
    partial: AtomicUsize,
}

impl MetaReader {
    pub fn new(file: File, end: u64, compressor: Compressor) -> MetaReader {
        MetaReader {
            file,
            end,
            compressor,
            blocks: Mutex::new(HashMap::new()),
            partial: AtomicUsize::new(0),
        }
    }

    /// How many blocks have been decompressed (in part or whole) so far.
    #[cfg(test)]
    pub fn blocks_read(&self) -> usize {
        self.lock().len()
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<u64, Arc<Slot>>> {
        self.blocks.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The block stored at image offset `pos`, decompressed whole.
    pub fn block(&self, pos: u64) -> Result<Block, MetaError> {
        let slot = self.slot(pos)?;
        let progress = self.fill(&slot, usize::MAX)?;
        Ok(Block {
            bytes: progress.bytes.clone(),
            next: slot.next,
        })
    }

    /// The block stored at `pos`, from the cache or read from the image
    /// (and, for compressors decoded in steps, not decoded yet).
    fn slot(&self, pos: u64) -> Result<Arc<Slot>, MetaError> {
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
        let progress = if header & UNCOMPRESSED != 0 {
            tracing::trace!("metadata block at {pos}: stored, {len} bytes (its end)");
            Progress::whole(stored)
        } else {
            self.start(pos, stored)?
        };
        let slot = Arc::new(Slot {
            pos,
            next: pos + 2 + len as u64,
            progress: Mutex::new(progress),
        });
        let mut blocks = self.lock();
        if let Some(raced) = blocks.get(&pos) {
            // Another thread read it meanwhile: keep one.
            let raced = Arc::clone(raced);
            drop(blocks);
            self.release(&slot);
            return Ok(raced);
        }
        if blocks.len() >= MAX_METADATA_BLOCKS {
            drop(blocks);
            self.release(&slot);
            return Err(MetaError::TooManyBlocks);
        }
        blocks.insert(pos, Arc::clone(&slot));
        Ok(slot)
    }

    /// A compressed block's decoder, or the block decoded whole when its
    /// compressor cannot stop part-way or too many blocks are part-decoded.
    fn start(&self, pos: u64, stored: Vec<u8>) -> Result<Progress, MetaError> {
        let failed =
            |e: &dyn std::fmt::Display| corrupt(format!("metadata block at offset {pos}: {e}"));
        let decoder = match self.compressor {
            Compressor::Xz => liblzma::stream::Stream::new_stream_decoder(META_XZ_MEMLIMIT, 0)
                .map(Decoder::Xz)
                .map_err(|e| failed(&e))?,
            Compressor::Gzip => Decoder::Gzip(flate2::Decompress::new(true)),
            _ => return self.whole(pos, &stored),
        };
        if self.partial.fetch_add(1, Ordering::Relaxed) >= MAX_PARTIAL {
            self.partial.fetch_sub(1, Ordering::Relaxed);
            return self.whole(pos, &stored);
        }
        Ok(Progress {
            bytes: Vec::with_capacity(METADATA_BLOCK + 1),
            decoder: Some((decoder, stored)),
            failed: None,
        })
    }

    fn whole(&self, pos: u64, stored: &[u8]) -> Result<Progress, MetaError> {
        let mut bytes = Vec::new();
        decompress(self.compressor, stored, &mut bytes, METADATA_BLOCK)
            .map_err(|e| corrupt(format!("metadata block at offset {pos}: {e}")))?;
        tracing::trace!(
            "metadata block at {pos}: decoded to byte {} (its end)",
            bytes.len()
        );
        Ok(Progress::whole(bytes))
    }

    /// Drops the decoder of a slot that is not kept.
    fn release(&self, slot: &Slot) {
        let mut progress = slot.progress.lock().unwrap_or_else(|p| p.into_inner());
        if progress.decoder.take().is_some() {
            self.partial.fetch_sub(1, Ordering::Relaxed);
        }
    }

    /// `slot`'s progress once at least its first `upto` bytes are decoded,
    /// or all of it if it is shorter. Decoding stops at 8 KiB: a block that
    /// holds more is corrupt.
    fn fill<'s>(&self, slot: &'s Slot, upto: usize) -> Result<MutexGuard<'s, Progress>, MetaError> {
        let mut progress = slot.progress.lock().unwrap_or_else(|p| p.into_inner());
        // A block that failed once fails every read, as a block decoded
        // whole does, whatever part of it a read wants.
        if let Some(why) = &progress.failed {
            return Err(corrupt(why.clone()));
        }
        if progress.bytes.len() >= upto || progress.complete() {
            return Ok(progress);
        }
        // One byte past the most a block holds, to see a block that holds more.
        let target = upto
            .div_ceil(DECODE_STEP)
            .saturating_mul(DECODE_STEP)
            .min(METADATA_BLOCK + 1);
        let Progress { bytes, decoder, .. } = &mut *progress;
        let Some((dec, stored)) = decoder.as_mut() else {
            return Ok(progress);
        };
        let decoded = loop {
            let have = bytes.len();
            bytes.resize(target, 0);
            let step = dec.step(stored, &mut bytes[have..]);
            let wrote = step.as_ref().map_or(0, |&(_, wrote, _)| wrote);
            bytes.truncate(have + wrote);
            let (read, ended) = match step {
                Ok((read, _, ended)) => (read, ended),
                Err(e) => break Err(e),
            };
            if bytes.len() > METADATA_BLOCK {
                break Err(format!("decompresses to more than {METADATA_BLOCK} bytes"));
            }
            if ended || bytes.len() >= target {
                break Ok(ended);
            }
            if read == 0 && bytes.len() == have {
                break Err("the compressed stream ends early".to_string());
            }
        };
        // Done with the decoder once the block ended or failed.
        if !matches!(decoded, Ok(false)) {
            *decoder = None;
            self.partial.fetch_sub(1, Ordering::Relaxed);
        }
        let ended = match decoded {
            Ok(ended) => ended,
            Err(e) => {
                let why = format!("metadata block at offset {}: {e}", slot.pos);
                progress.failed = Some(why.clone());
                return Err(corrupt(why));
            }
        };
        tracing::trace!(
            "metadata block at {}: decoded to byte {}{}",
            slot.pos,
            bytes.len(),
            if ended { " (its end)" } else { "" }
        );
        Ok(progress)
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
            slot: None,
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
    slot: Option<Arc<Slot>>,
}

impl Cursor<'_> {
    /// Appends the next `len` bytes to `out`. Memory grows only with what the image really
    /// holds: a hostile length runs into the end of the image or the block bound first.
    pub fn append(&mut self, out: &mut Vec<u8>, mut len: usize) -> Result<(), MetaError> {
        while len > 0 {
            let slot = match &self.slot {
                Some(slot) => Arc::clone(slot),
                None => {
                    let slot = self.reader.slot(self.pos)?;
                    self.slot = Some(Arc::clone(&slot));
                    slot
                }
            };
            let progress = self.reader.fill(&slot, self.offset.saturating_add(len))?;
            let Some(rest) = progress.bytes.get(self.offset..) else {
                return Err(corrupt(format!(
                    "offset {} beyond the {} bytes of the metadata block at {}",
                    self.offset,
                    progress.bytes.len(),
                    self.pos
                )));
            };
            let n = rest.len().min(len);
            out.extend_from_slice(&rest[..n]);
            len -= n;
            self.offset += n;
            // Short of `len`, `fill` decoded the block to its end.
            if len > 0 {
                self.pos = slot.next;
                self.offset = 0;
                self.slot = None;
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
        reader_with(bytes, Compressor::Gzip)
    }

    fn reader_with(bytes: &[u8], compressor: Compressor) -> MetaReader {
        let dir = std::env::temp_dir().join(format!("rootrun-metablock-{}", std::process::id()));
        let _ = std::fs::create_dir_all(&dir);
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let path = dir.join(format!("{n}.img"));
        let mut file = File::create(&path).expect("create");
        file.write_all(bytes).expect("write");
        let file = File::open(&path).expect("open");
        let _ = std::fs::remove_file(&path);
        MetaReader::new(file, bytes.len() as u64, compressor)
    }

    /// `payload` as a compressed metadata block.
    fn compressed(payload: &[u8], compressor: Compressor) -> Vec<u8> {
        let stored = match compressor {
            Compressor::Xz => liblzma::encode_all(payload, 6).expect("xz"),
            _ => {
                let mut zlib =
                    flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
                zlib.write_all(payload).expect("zlib");
                zlib.finish().expect("zlib")
            }
        };
        let mut v = u16::try_from(stored.len())
            .expect("short")
            .to_le_bytes()
            .to_vec();
        v.extend(stored);
        v
    }

    /// 8 KiB of bytes that do not compress to nothing.
    fn payload(seed: u32, len: usize) -> Vec<u8> {
        let mut x = seed.wrapping_mul(2_654_435_761) | 1;
        (0..len)
            .map(|i| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                // Half text-like, half noise.
                if i % 2 == 0 {
                    b'a' + (x % 26) as u8
                } else {
                    x as u8
                }
            })
            .collect()
    }

    impl MetaReader {
        /// How many bytes of the block at `pos` are decoded so far.
        fn decoded(&self, pos: u64) -> usize {
            let slot = self.lock().get(&pos).map(Arc::clone).expect("block read");
            let progress = slot.progress.lock().expect("lock");
            progress.bytes.len()
        }
    }

    #[test]
    fn compressed_blocks_are_decoded_only_as_far_as_read() {
        for compressor in [Compressor::Xz, Compressor::Gzip] {
            let (a, b) = (payload(1, METADATA_BLOCK), payload(2, 3000));
            let mut image = compressed(&a, compressor);
            let second = image.len() as u64;
            image.extend(compressed(&b, compressor));
            let reader = reader_with(&image, compressor);
            let read = |pos, offset, len| reader.read(pos, offset, len).map_err(|e| e.to_string());
            assert_eq!(read(0, 10, 20), Ok(a[10..30].to_vec()), "{compressor:?}");
            let first = reader.decoded(0);
            assert!(
                first < METADATA_BLOCK / 2,
                "{compressor:?}: {first} bytes decoded"
            );
            // Further into the same block: its decoder goes on from where it stopped.
            assert_eq!(read(0, 5000, 100), Ok(a[5000..5100].to_vec()));
            assert!(reader.decoded(0) < METADATA_BLOCK);
            // Across the end of the block into the next one.
            let mut both = a[8000..].to_vec();
            both.extend_from_slice(&b[..100]);
            assert_eq!(read(0, 8000, 292), Ok(both), "{compressor:?}");
            assert_eq!(reader.decoded(0), METADATA_BLOCK);
            assert_eq!(reader.block(second).map(|b| b.bytes).ok(), Some(b.clone()));
            assert_eq!(
                reader.partial.load(Ordering::Relaxed),
                0,
                "decoders dropped at the end"
            );
            // Earlier bytes come from what is kept.
            assert_eq!(read(0, 0, 4), Ok(a[..4].to_vec()));
            assert_eq!(reader.blocks_read(), 2);
        }
    }

    #[test]
    fn a_part_decoded_block_still_fails_where_it_is_bad() {
        for compressor in [Compressor::Xz, Compressor::Gzip] {
            // More than 8 KiB in one block: the first bytes read, the overflow does not.
            let long = payload(3, METADATA_BLOCK + 500);
            let reader = reader_with(&compressed(&long, compressor), compressor);
            assert_eq!(reader.read(0, 0, 8).ok(), Some(long[..8].to_vec()));
            let err = reader
                .read(0, METADATA_BLOCK - 4, 8)
                .map_err(|e| e.to_string());
            assert!(
                matches!(&err, Err(e) if e.contains("more than 8192")),
                "{compressor:?}: {err:?}"
            );
            // And for good: no later read, of any part of it, succeeds; its decoder is gone.
            assert!(reader.read(0, METADATA_BLOCK - 2, 3).is_err());
            assert!(reader.read(0, 0, 8).is_err());
            assert_eq!(reader.partial.load(Ordering::Relaxed), 0);
            // A stream cut short: its end is not there to read.
            let mut cut = compressed(&payload(4, METADATA_BLOCK), compressor);
            let half = (cut.len() - 2) / 2;
            cut.truncate(2 + half);
            cut[..2].copy_from_slice(&u16::try_from(half).expect("short").to_le_bytes());
            let reader = reader_with(&cut, compressor);
            assert!(reader.read(0, 0, METADATA_BLOCK).is_err(), "{compressor:?}");
        }
    }

    #[test]
    fn part_decoded_blocks_are_bounded() {
        let blocks: Vec<Vec<u8>> = (0..MAX_PARTIAL as u32 + 8)
            .map(|i| payload(i, METADATA_BLOCK))
            .collect();
        let mut image = Vec::new();
        let mut starts = Vec::new();
        for block in &blocks {
            starts.push(image.len() as u64);
            image.extend(compressed(block, Compressor::Xz));
        }
        let reader = reader_with(&image, Compressor::Xz);
        for (block, &pos) in blocks.iter().zip(&starts) {
            assert_eq!(reader.read(pos, 1, 2).ok(), Some(block[1..3].to_vec()));
        }
        assert_eq!(reader.partial.load(Ordering::Relaxed), MAX_PARTIAL);
        // Past the bound, blocks are decoded whole at once.
        assert_eq!(reader.decoded(starts[MAX_PARTIAL]), METADATA_BLOCK);
        assert!(reader.decoded(starts[0]) < METADATA_BLOCK);
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
