//! `rootrun unpack IMAGE DIR`: extract a SquashFS image into a host directory.
//!
//! The image is hostile (DESIGN.md). The tree is checked completely before DIR is touched
//! (scan.rs), then created below one directory fd without ever resolving a path under DIR
//! (extract.rs, with the fd-relative calls in `sys::fsops`). File data is decompressed by
//! scoped worker threads that are joined before `unpack` returns, so a caller can still set up
//! namespaces afterwards (DESIGN.md, threads).

mod dest;
mod error;
mod extract;
mod jobs;
mod progress;
mod scan;
mod xattr;

use std::os::fd::AsFd;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;

pub use dest::NOTE_NAME;
pub use error::{Cleanup, Failure, UnpackError};
/// The attribute writer, for unpacking archives (`image::archive`).
pub(crate) use jobs::{apply_meta, Kind as MetaKind, Meta};
pub use progress::{NoProgress, Progress, TerminalProgress};
pub use scan::{MAX_DEPTH, MAX_ENTRIES};
pub(crate) use xattr::Xattr;

use super::data::{Buffers, DataReader};
use super::squash::SquashSource;
use super::{Image, Source};
use extract::Extractor;
use jobs::{FileJob, Shared};
use xattr::XattrTable;

/// Files queued per worker at most; each keeps its directory's fd open.
const QUEUE: usize = 128;
/// How often the progress display is refreshed.
const TICK: Duration = Duration::from_millis(100);

#[derive(Debug, Clone, Default)]
pub struct UnpackOptions {
    /// Decompression threads besides the caller's; None: one per CPU. Some(0) does everything
    /// on the calling thread.
    pub threads: Option<usize>,
    /// Restore owners and create device nodes; None: when running as root (euid 0).
    pub privileged: Option<bool>,
    /// Set (to a signal number) by a signal handler to stop the extraction,
    /// which then fails with `Failure::Interrupted` and cleans up as on any
    /// other failure.
    pub interrupt: Option<&'static AtomicI32>,
}

/// What was extracted, and what could not be (as a normal user).
#[derive(Debug, Clone, Default)]
pub struct UnpackReport {
    pub dirs: u64,
    pub files: u64,
    pub symlinks: u64,
    pub hard_links: u64,
    /// FIFOs, sockets and device nodes.
    pub nodes: u64,
    pub bytes: u64,
    pub skipped: Vec<Skip>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum SkipKind {
    DeviceNode,
    Ownership,
    SetIdBits,
    PrivilegedXattr,
}

impl std::fmt::Display for SkipKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            SkipKind::DeviceNode => "device nodes not created",
            SkipKind::Ownership => "owners not restored",
            SkipKind::SetIdBits => "setuid/setgid bits dropped",
            SkipKind::PrivilegedXattr => "trusted./security. extended attributes not set",
        })
    }
}

/// Something left out because the caller is not root: how often, and the first path.
#[derive(Debug, Clone)]
pub struct Skip {
    pub kind: SkipKind,
    pub count: u64,
    pub example: String,
}

impl std::fmt::Display for Skip {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {} (e.g. {})", self.kind, self.count, self.example)
    }
}

/// Extracts the SquashFS `image` into `dest`, which must be an empty directory or not exist.
///
/// On failure, a `dest` this call created is removed; a pre-existing one keeps what was
/// extracted plus a [`NOTE_NAME`] file, and the error says which happened.
/// Refuses, before writing anything, an image whose files add up to more
/// than the destination's file system has free: a small, highly compressed
/// image can claim terabytes (sparse files count at their full size).
fn check_space(dest: &Path, bytes: u64) -> Result<(), Failure> {
    let probe = if dest.exists() {
        dest
    } else {
        dest.parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."))
    };
    let Ok(fs) = nix::sys::statvfs::statvfs(probe) else {
        return Ok(()); // dest::prepare reports a bad destination precisely
    };
    let free = fs.blocks_available().saturating_mul(fs.fragment_size());
    if bytes > free {
        return Err(Failure::NoSpace { need: bytes, free });
    }
    Ok(())
}

/// The checks of the whole image that need nothing but the image: the tree
/// (scan.rs) and the xattr table. They run before the destination is looked at.
fn checks(sq: &SquashSource) -> Result<(scan::Plan, XattrTable), Failure> {
    let plan = scan::scan(sq)?;
    let sb = sq.superblock();
    let image_len = sb.bytes_used.min(sq.file_size());
    let xattrs =
        XattrTable::read(sq.meta(), sb.xattr_table, image_len).map_err(|what| Failure::Data {
            path: "(xattr table)".to_string(),
            what,
        })?;
    Ok((plan, xattrs))
}

/// Runs what `unpack` checks before it writes anything (open, tree, xattr
/// table) on `image`, and returns the entry and byte counts the plan found.
/// For the fuzz targets (fuzz/), which must not write.
#[doc(hidden)]
pub fn check_only(image: &Path) -> Result<(u64, u64), Failure> {
    let opened = Image::open(image)?;
    let Source::Squashfs(sq) = &opened.source else {
        return Err(Failure::NotSquashfs);
    };
    let (plan, _) = checks(sq)?;
    Ok((plan.entries, plan.bytes))
}

pub fn unpack(
    image: &Path,
    dest: &Path,
    opts: &UnpackOptions,
    progress: &mut dyn Progress,
) -> Result<UnpackReport, UnpackError> {
    let fail = |failure: Failure, cleanup| UnpackError {
        image: image.to_path_buf(),
        dest: dest.to_path_buf(),
        failure: Box::new(failure),
        cleanup,
    };
    let opened = Image::open(image).map_err(|e| fail(e.into(), Cleanup::Untouched))?;
    let Source::Squashfs(sq) = &opened.source else {
        return Err(fail(Failure::NotSquashfs, Cleanup::Untouched));
    };
    let (plan, xattrs) = checks(sq).map_err(|f| fail(f, Cleanup::Untouched))?;
    let sb = sq.superblock();
    check_space(dest, plan.bytes).map_err(|f| fail(f, Cleanup::Untouched))?;
    // A signal during the checks: nothing was created yet.
    if let Some(signal) = interrupted(opts.interrupt) {
        return Err(fail(Failure::Interrupted(signal), Cleanup::Untouched));
    }
    let target = dest::prepare(dest).map_err(|f| fail(f, Cleanup::Untouched))?;

    let privileged = opts
        .privileged
        .unwrap_or_else(|| nix::unistd::geteuid().is_root());
    let threads = opts.threads.unwrap_or_else(|| {
        std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
    });
    progress.start(plan.entries, plan.bytes);
    let mut extractor = Extractor::new(sq, &xattrs, privileged);
    let root = target
        .fd
        .as_fd()
        .try_clone_to_owned()
        .map_err(|e| Failure::Dest {
            op: "dup",
            errno: nix::errno::Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)),
        });
    let result = root.and_then(|root| {
        let fragments = |index| sq.fragment(index);
        let shared = Shared {
            reader: DataReader::new(
                sq.file(),
                sb.bytes_used.min(sq.file_size()),
                sb.block_size,
                sb.compressor,
                &fragments,
            ),
            written: AtomicU64::new(0),
            abort: AtomicBool::new(false),
            failure: Mutex::new(None),
        };
        let done = AtomicBool::new(false);
        let ran = std::thread::scope(|scope| {
            if let Some(flag) = opts.interrupt {
                scope.spawn(|| watch_interrupt(flag, &shared, &done));
            }
            let ran = extract_with_workers(&mut extractor, &plan, root, &shared, threads, progress);
            done.store(true, Ordering::Relaxed);
            ran
        });
        let worker_failure = shared
            .failure
            .into_inner()
            .unwrap_or_else(|p| p.into_inner());
        match (ran, worker_failure) {
            (Err(failure), _) | (Ok(()), Some(failure)) => Err(failure),
            (Ok(()), None) => Ok(shared.written.into_inner()),
        }
    });
    progress.finish();
    match result {
        Ok(bytes) => {
            let counts = &extractor.counts;
            Ok(UnpackReport {
                dirs: counts.dirs,
                files: counts.files,
                symlinks: counts.symlinks,
                hard_links: counts.hard_links,
                nodes: counts.nodes,
                bytes,
                skipped: extractor.skipped(),
            })
        }
        Err(failure) => {
            let cleanup = dest::clean_up(target, dest, extractor.done, &failure);
            Err(fail(failure, cleanup))
        }
    }
}

/// Turns a signal number in `flag` into a failure that stops the extraction;
/// ends with it.
fn watch_interrupt(flag: &AtomicI32, shared: &Shared<'_>, done: &AtomicBool) {
    while !done.load(Ordering::Relaxed) && !shared.aborted() {
        if let Some(signal) = interrupted(Some(flag)) {
            return shared.fail(Failure::Interrupted(signal));
        }
        std::thread::sleep(WATCH);
    }
}

/// The signal stored in `flag`, once one is.
fn interrupted(flag: Option<&AtomicI32>) -> Option<Signal> {
    Signal::try_from(flag?.load(Ordering::Relaxed)).ok()
}

/// How often the watcher looks at the interrupt flag.
const WATCH: Duration = Duration::from_millis(20);

/// Runs the extraction on this thread with `threads` scoped data workers (none: inline).
fn extract_with_workers(
    extractor: &mut Extractor<'_>,
    plan: &scan::Plan,
    root: std::os::fd::OwnedFd,
    shared: &Shared<'_>,
    threads: usize,
    progress: &mut dyn Progress,
) -> Result<(), Failure> {
    let mut last = Instant::now();
    let mut tick = |done: u64| {
        if last.elapsed() >= TICK {
            last = Instant::now();
            progress.update(done, shared.written.load(Ordering::Relaxed));
        }
    };
    if threads == 0 {
        let mut bufs = Buffers::default();
        let mut submit = |job: FileJob| {
            shared.finish_file(job, &mut bufs);
            Ok(())
        };
        return extractor.run(plan, root, shared, &mut submit, &mut tick);
    }
    let mut senders = Vec::with_capacity(threads);
    let mut receivers = Vec::with_capacity(threads);
    for _ in 0..threads {
        let (sender, receiver) = sync_channel::<FileJob>(QUEUE);
        senders.push(sender);
        receivers.push(receiver);
    }
    std::thread::scope(|scope| {
        let mut workers = Vec::with_capacity(threads);
        for (n, receiver) in receivers.into_iter().enumerate() {
            let spawned = std::thread::Builder::new()
                .name(format!("unpack-{n}"))
                .spawn_scoped(scope, move || worker(receiver, shared));
            match spawned {
                Ok(handle) => workers.push(handle),
                Err(e) => {
                    shared.abort.store(true, Ordering::Relaxed);
                    return Err(Failure::Thread(e));
                }
            }
        }
        let ran = {
            let mut submit = |job: FileJob| {
                // All files of one directory go to one worker (see jobs.rs).
                let sender = &senders[job.dir.seq % senders.len()];
                // A send fails only when that worker is gone, which happens only after abort.
                sender.send(job).map_err(|_| Failure::Data {
                    path: String::new(),
                    what: "decompression workers stopped".into(),
                })
            };
            extractor.run(plan, root, shared, &mut submit, &mut tick)
        };
        drop(senders);
        let done = extractor.done;
        while !workers.iter().all(|w| w.is_finished()) {
            std::thread::sleep(Duration::from_millis(20));
            tick(done);
        }
        for worker in workers {
            // A worker panic is a bug; surface it as one rather than a silent success.
            if worker.join().is_err() {
                return Err(Failure::Data {
                    path: String::new(),
                    what: "a decompression worker panicked".into(),
                });
            }
        }
        ran
    })
}

fn worker(receiver: Receiver<FileJob>, shared: &Shared<'_>) {
    let mut bufs = Buffers::default();
    // Jobs queued after a failure still arrive: finish_file then only releases their directory.
    while let Ok(job) = receiver.recv() {
        shared.finish_file(job, &mut bufs);
    }
}
