//! File data: data blocks and fragments read with positioned reads (so several threads share
//! one image fd) and decompressed with backhand's `DefaultCompressor`. Every length comes from
//! the image and is checked against the block size and the image's size before it is used, so
//! a file claiming petabytes fails on its first inconsistent block rather than allocating.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use backhand::compression::{CompressionAction, Compressor, DefaultCompressor};
use backhand::{DataSize, Fragment};

use super::inode::NO_FRAGMENT;
/// Consecutive stored blocks are read with one pread of at most this many bytes.
const READ_BATCH: u64 = 1 << 20;
/// Decompressed fragment blocks kept, in bytes: files sharing a fragment are listed together,
/// but the workers fill the files of different directories, so a fragment shared by two
/// directories is wanted by two workers at about the same time.
const FRAGMENT_CACHE_BYTES: usize = 8 << 20;
/// At least this many are kept, whatever the block size.
const FRAGMENT_CACHE_MIN: usize = 8;

/// A fragment block being decompressed by the first worker that needs it, or done; the
/// others wait for it rather than decompress it again.
type Slot = Arc<OnceLock<Result<Arc<Vec<u8>>, String>>>;

/// Decompresses `bytes` into `out` (cleared first), refusing more than `max` bytes of output.
pub fn decompress(
    compressor: Compressor,
    bytes: &[u8],
    out: &mut Vec<u8>,
    max: usize,
) -> Result<(), String> {
    out.clear();
    // lz4 and lzo decompress into the spare capacity, so it must hold a whole block.
    out.reserve(max);
    DefaultCompressor
        .decompress(bytes, out, compressor)
        .map_err(|e| format!("{compressor:?} decompression failed: {e}"))?;
    if out.len() > max {
        return Err(format!(
            "a block decompressed to {} bytes, more than the {max} allowed",
            out.len()
        ));
    }
    Ok(())
}

/// liblzma's memory limit for one block: SquashFS's xz dictionary is at most the block size
/// (1 MiB), so a larger one is a hostile header.
const XZ_MEMLIMIT: u64 = 64 << 20;

/// Decompresses the first `want` bytes of `bytes` into `out` (cleared first). xz and gzip stop
/// decoding there, so the 4 KiB head of a 128 KiB block costs about a thirtieth of the block;
/// the other compressors decompress the block whole (at most `max` bytes) and cut it.
pub fn decompress_head(
    compressor: Compressor,
    bytes: &[u8],
    out: &mut Vec<u8>,
    want: usize,
    max: usize,
) -> Result<(), String> {
    let failed = |e: &dyn std::fmt::Display| format!("{compressor:?} decompression failed: {e}");
    out.clear();
    out.reserve(want);
    match compressor {
        Compressor::Xz => {
            let mut xz = liblzma::stream::Stream::new_stream_decoder(XZ_MEMLIMIT, 0)
                .map_err(|e| failed(&e))?;
            while out.len() < want {
                let (read, wrote) = (xz.total_in(), out.len());
                let rest = bytes.get(read as usize..).unwrap_or_default();
                let status = xz
                    .process_vec(rest, out, liblzma::stream::Action::Finish)
                    .map_err(|e| failed(&e))?;
                let stuck = xz.total_in() == read && out.len() == wrote;
                if status == liblzma::stream::Status::StreamEnd || stuck {
                    break;
                }
            }
        }
        Compressor::Gzip => {
            let mut zlib = flate2::Decompress::new(true);
            while out.len() < want {
                let (read, wrote) = (zlib.total_in(), out.len());
                let rest = bytes.get(read as usize..).unwrap_or_default();
                let status = zlib
                    .decompress_vec(rest, out, flate2::FlushDecompress::None)
                    .map_err(|e| failed(&e))?;
                let stuck = zlib.total_in() == read && out.len() == wrote;
                if status == flate2::Status::StreamEnd || stuck {
                    break;
                }
            }
        }
        _ => decompress(compressor, bytes, out, max)?,
    }
    out.truncate(want);
    Ok(())
}

/// Where a regular file's data lives in the image.
#[derive(Debug, Clone)]
pub struct Extent {
    pub blocks_start: u64,
    pub block_sizes: Vec<DataSize>,
    pub frag_index: u32,
    pub block_offset: u32,
    pub file_size: u64,
}

/// Finds a fragment table entry (read on demand: see `squash`).
pub type FragmentLookup<'a> = dyn Fn(u32) -> Result<Fragment, String> + Sync + 'a;

#[derive(Debug)]
pub enum DataError {
    /// The image is inconsistent or cannot be read.
    Image(String),
    /// Writing the extracted file failed (disk full, ...).
    Write(std::io::Error),
    /// Another thread failed; this one stopped early.
    Aborted,
}

pub struct DataReader<'a> {
    pub file: &'a File,
    /// Bytes of the image that hold data (the superblock's bytes_used, at most the file size).
    pub image_len: u64,
    pub block_size: u32,
    pub compressor: Compressor,
    /// The fragment table entry of an index.
    pub fragments: &'a FragmentLookup<'a>,
    cache: Mutex<Vec<(u32, Slot)>>,
}

/// Takes a run of a file's bytes and their offset in the file.
type Sink<'s> = dyn FnMut(u64, &[u8]) -> Result<(), DataError> + 's;

/// How far [`DataReader::each_block`] got, and whether it skipped sparse blocks.
struct Filled {
    end: u64,
    holes: bool,
}

/// Per-thread scratch buffers, reused across files.
#[derive(Default)]
pub struct Buffers {
    stored: Vec<u8>,
    plain: Vec<u8>,
}

impl<'a> DataReader<'a> {
    pub fn new(
        file: &'a File,
        image_len: u64,
        block_size: u32,
        compressor: Compressor,
        fragments: &'a FragmentLookup<'a>,
    ) -> Self {
        DataReader {
            file,
            image_len,
            block_size,
            compressor,
            fragments,
            cache: Mutex::new(Vec::new()),
        }
    }

    /// Writes the file described by `extent` into `out`, adding each block's length to
    /// `written` as it goes and stopping early when `abort` is set.
    pub fn write_file(
        &self,
        extent: &Extent,
        out: &File,
        bufs: &mut Buffers,
        written: &AtomicU64,
        abort: &AtomicBool,
    ) -> Result<(), DataError> {
        let mut sink =
            |offset: u64, bytes: &[u8]| out.write_all_at(bytes, offset).map_err(DataError::Write);
        let filled = self.each_block(extent, None, bufs, written, abort, &mut sink)?;
        if filled.holes || filled.end < extent.file_size {
            out.set_len(extent.file_size).map_err(DataError::Write)?;
        }
        Ok(())
    }

    /// The first `max` bytes of the file (fewer when it is shorter): only the blocks, or the
    /// fragment, that cover them are read.
    pub fn read_head(&self, extent: &Extent, max: usize) -> Result<Vec<u8>, DataError> {
        let limit = extent.file_size.min(max as u64);
        // Grown as blocks arrive, not reserved as the inode claims.
        let mut head = Vec::new();
        let mut sink = |offset: u64, bytes: &[u8]| {
            let n = (bytes.len() as u64).min(limit.saturating_sub(offset)) as usize;
            let start = offset as usize;
            // Holes before this block stay zero.
            head.resize(head.len().max(start + n), 0);
            head[start..start + n].copy_from_slice(&bytes[..n]);
            Ok(())
        };
        let (written, abort) = (AtomicU64::new(0), AtomicBool::new(false));
        let mut bufs = Buffers::default();
        let filled =
            self.each_block(extent, Some(limit), &mut bufs, &written, &abort, &mut sink)?;
        // A sparse end reads as zeros.
        head.resize(filled.end.min(limit) as usize, 0);
        Ok(head)
    }

    /// Hands `sink` each stored block (decompressed), then the fragment tail, in file order:
    /// all of the file, or for a head only what covers its first `head` bytes.
    fn each_block(
        &self,
        extent: &Extent,
        head: Option<u64>,
        bufs: &mut Buffers,
        written: &AtomicU64,
        abort: &AtomicBool,
        sink: &mut Sink<'_>,
    ) -> Result<Filled, DataError> {
        let bs = u64::from(self.block_size);
        let limit = head.unwrap_or(extent.file_size);
        let has_fragment = extent.frag_index != NO_FRAGMENT;
        let full_blocks = if has_fragment {
            extent.file_size / bs
        } else {
            extent.file_size.div_ceil(bs)
        };
        if extent.block_sizes.len() as u64 != full_blocks {
            return Err(DataError::Image(format!(
                "{} data blocks listed for a {}-byte file",
                extent.block_sizes.len(),
                extent.file_size
            )));
        }
        let mut pos = extent.blocks_start;
        let mut offset = 0u64;
        let mut holes = false;
        let mut index = 0;
        while index < extent.block_sizes.len() && offset < limit {
            if abort.load(Ordering::Relaxed) {
                return Err(DataError::Aborted);
            }
            // One read covers a run of consecutive stored blocks (no more than `limit` needs).
            let run_start = index;
            let mut run_len = 0u64;
            let mut run_end = offset;
            while index < extent.block_sizes.len() && run_end < limit {
                let size = u64::from(extent.block_sizes[index].size());
                if size > bs {
                    return Err(DataError::Image(format!(
                        "data block of {size} stored bytes, larger than the block size {bs}"
                    )));
                }
                if index > run_start && run_len + size > READ_BATCH {
                    break;
                }
                run_len += size;
                run_end += bs;
                index += 1;
            }
            self.read_stored(pos, run_len, &mut bufs.stored)?;
            pos += run_len;
            let mut at = 0usize;
            for size in &extent.block_sizes[run_start..index] {
                let len = bs.min(extent.file_size - offset);
                let stored_len = size.size() as usize;
                if stored_len == 0 {
                    // A sparse block: leave a hole.
                    holes = true;
                } else {
                    let stored = &bufs.stored[at..at + stored_len];
                    at += stored_len;
                    // Only what `limit` covers of the block (all of it but for a head).
                    let want = len.min(limit - offset.min(limit));
                    let plain: &[u8] = if size.uncompressed() {
                        stored
                    } else if want < len {
                        let (c, max) = (self.compressor, bs as usize);
                        decompress_head(c, stored, &mut bufs.plain, want as usize, max)
                            .map_err(DataError::Image)?;
                        tracing::trace!("data block at {offset} of a file: decoded {want} bytes");
                        &bufs.plain
                    } else {
                        decompress(self.compressor, stored, &mut bufs.plain, bs as usize)
                            .map_err(DataError::Image)?;
                        &bufs.plain
                    };
                    let expected = if want < len && !size.uncompressed() {
                        want
                    } else {
                        len
                    };
                    if plain.len() as u64 != expected {
                        return Err(DataError::Image(format!(
                            "data block at file offset {offset} holds {} bytes, {expected} expected",
                            plain.len()
                        )));
                    }
                    sink(offset, plain)?;
                }
                offset += len;
                written.fetch_add(len, Ordering::Relaxed);
            }
        }
        if has_fragment && offset < extent.file_size && offset < limit {
            let tail = extent.file_size - offset;
            // A head needs the fragment only up to its own end; a whole file gets the whole
            // fragment, which the files listed next usually share.
            let take = tail.min(limit - offset);
            let start = u64::from(extent.block_offset);
            let upto = head.map(|_| start + take);
            let block = self.fragment(extent.frag_index, &mut bufs.stored, upto)?;
            let bytes = usize::try_from(start)
                .ok()
                .zip(usize::try_from(start + take).ok())
                .and_then(|(s, e)| block.get(s..e))
                .ok_or_else(|| {
                    DataError::Image(format!(
                        "file tail of {tail} bytes at {start} lies outside its {}-byte fragment",
                        block.len()
                    ))
                })?;
            sink(offset, bytes)?;
            offset += take;
            written.fetch_add(take, Ordering::Relaxed);
        }
        Ok(Filled { end: offset, holes })
    }

    fn read_stored(&self, pos: u64, len: u64, buf: &mut Vec<u8>) -> Result<(), DataError> {
        let end = pos.checked_add(len).filter(|&end| end <= self.image_len);
        if end.is_none() {
            return Err(DataError::Image(format!(
                "{len} bytes of file data at offset {pos} lie beyond the image's {} bytes",
                self.image_len
            )));
        }
        let len = usize::try_from(len)
            .map_err(|_| DataError::Image(format!("{len} bytes cannot be buffered")))?;
        buf.resize(len, 0);
        self.file
            .read_exact_at(buf, pos)
            .map_err(|e| DataError::Image(format!("reading {len} bytes at offset {pos}: {e}")))
    }

    /// The decompressed fragment block `index`, from the cache when another file needed it;
    /// with `upto`, only its first `upto` bytes, decoded for this read alone.
    fn fragment(
        &self,
        index: u32,
        stored: &mut Vec<u8>,
        upto: Option<u64>,
    ) -> Result<Arc<Vec<u8>>, DataError> {
        let partial = upto.filter(|&upto| upto < u64::from(self.block_size));
        let Some(upto) = partial else {
            let slot = self.slot(index);
            let block = slot.get_or_init(|| self.read_fragment(index, stored, None));
            return block.clone().map_err(DataError::Image);
        };
        self.read_fragment(index, stored, Some(upto as usize))
            .map_err(DataError::Image)
    }

    fn read_fragment(
        &self,
        index: u32,
        stored: &mut Vec<u8>,
        upto: Option<usize>,
    ) -> Result<Arc<Vec<u8>>, String> {
        let entry = (self.fragments)(index)?;
        let size = u64::from(entry.size.size());
        if size > u64::from(self.block_size) {
            return Err(format!(
                "fragment {index} of {size} stored bytes, larger than the block size"
            ));
        }
        self.read_stored(entry.start, size, stored)
            .map_err(|e| match e {
                DataError::Image(what) => what,
                other => format!("{other:?}"),
            })?;
        let max = self.block_size as usize;
        let mut out = Vec::new();
        match upto {
            _ if entry.size.uncompressed() => out.clone_from(stored),
            Some(upto) => decompress_head(self.compressor, stored, &mut out, upto, max)?,
            None => decompress(self.compressor, stored, &mut out, max)?,
        }
        tracing::trace!("fragment {index}: decoded {} bytes", out.len());
        Ok(Arc::new(out))
    }

    /// The cache slot of fragment `index`, made (and the least recently used one dropped)
    /// when there is none.
    fn slot(&self, index: u32) -> Slot {
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(at) = cache.iter().position(|(i, _)| *i == index) {
            // Most recently used last, so eviction drops the oldest.
            let hit = cache.remove(at);
            let slot = Arc::clone(&hit.1);
            cache.push(hit);
            return slot;
        }
        let keep = (FRAGMENT_CACHE_BYTES / self.block_size.max(1) as usize).max(FRAGMENT_CACHE_MIN);
        if cache.len() >= keep {
            cache.remove(0);
        }
        let slot = Slot::default();
        cache.push((index, Arc::clone(&slot)));
        slot
    }
}
