//! Executes a `LaunchPlan`: acquire the guards in order (namespace, tmpfs,
//! loop device, SquashFS, overlay, console, monitor), run the container, and
//! release everything in reverse, whatever happened.

use std::fs;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::unistd::{setpgid, Pid};

use crate::arch::Emulation;
use crate::console::{self, ConsolePty};
use crate::entry;
use crate::error::Error;
use crate::image::unpack::{self, TerminalProgress, UnpackOptions};
use crate::lxc::Container;
use crate::plan::{ConsolePath, LaunchPlan, Lower, Mode, CONTAINER_PREFIX, LXC_RUN_DIR};
use crate::session::{exit_code, Session};
use crate::sys::mount::{self, Mount};
use crate::sys::process::{self, Outcome, SharedOutcome};
use crate::sys::rootfs;
use crate::sys::{cgroup, loopdev, SysError};

/// Signals rootrun handles through a signalfd instead of dying from them.
const HANDLED: [Signal; 6] = [
    Signal::SIGQUIT,
    Signal::SIGINT,
    Signal::SIGTERM,
    Signal::SIGHUP,
    Signal::SIGCHLD,
    Signal::SIGWINCH,
];

/// Runs the plan and returns rootrun's exit code.
pub fn run(plan: &LaunchPlan, banner: Option<&str>) -> Result<u8, Error> {
    // The caller has entered rootrun's private mount namespace (sys::namespace).
    cgroup::sweep_stale(CONTAINER_PREFIX);
    let mut stage = Stage::prepare(plan, banner.is_none())?;
    let first_read = entry::check(plan.entry_program(), &stage.root)?;
    stage.interpreter = bind_interpreter(plan, &stage.root)?;

    let console = match plan.mode {
        Mode::Boot { .. } => Some(ConsolePty::open(console::window_size(io::stdin().as_fd()))?),
        Mode::Command { .. } => None,
    };
    let console_path = match &console {
        Some(pty) => ConsolePath::Pty(&pty.slave_path),
        None => ConsolePath::Planned,
    };
    write_config(plan, console_path)?;

    let mut signals = SigSet::empty();
    for signal in HANDLED {
        signals.add(signal);
    }
    signals
        .thread_block()
        .map_err(|e| SysError::new("block signals in", "rootrun", e))?;
    let signal_fd = SignalFd::with_flags(&signals, SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC)
        .map_err(|e| SysError::new("signalfd", "rootrun", e))?;

    let outcome = SharedOutcome::new()?;
    if let Some(text) = banner {
        eprintln!("{text}");
    }
    let rootrun = nix::unistd::getpid();
    let prefetch = Prefetch::start(&stage.root, &first_read);
    let monitor = process::spawn(|| monitor_main(plan, rootrun, &signals, &outcome))?;

    let mut session = Session::new(plan, monitor, console.as_ref());
    let result = session.run(&signal_fd);
    // The monitor has exited. When start() returned, liblxc removed the
    // container's cgroups on its way out; a monitor that was killed (the
    // last step of a forced stop) left them, and they go here rather than
    // waiting for the next run's sweep. Only then: it costs a walk of every
    // hierarchy.
    if result.is_ok() && !matches!(outcome.outcome(), Outcome::Exited(_)) {
        cgroup::remove_leftovers(&plan.name);
    }
    // Before the tmpfs holding liblxc's log goes away with the stage.
    let code = result.and_then(|()| {
        exit_code(
            plan,
            outcome.outcome(),
            session.stop_cause(),
            &plan.layout.log,
        )
    });
    // Its open files would keep the mounts busy.
    drop(prefetch);
    drop(stage);
    // The signals stay blocked: rootrun exits right after reporting `code`,
    // and a Ctrl-C or SIGTERM that came during the teardown (the container is
    // gone already) must not kill it first with the default action.
    code
}

/// The mounts of one run, released in reverse order on drop.
struct Stage {
    /// The container root, as an `O_PATH` directory fd for lookups inside it.
    root: OwnedFd,
    // Field order is drop order: the interpreter's bind mount inside the
    // root, the overlay, the SquashFS, the tmpfs.
    interpreter: Option<Mount>,
    _overlay: Mount,
    _lower: Option<Mount>,
    _state: Mount,
    _locks: Mount,
}

/// liblxc keeps lock files under `/run/lxc/lock/<lxcpath>/`, on the host. A
/// private tmpfs there keeps them in rootrun's namespace with everything
/// else. `/run/lxc` (liblxc's own run directory) is created when missing and
/// never removed: removing a directory that another rootrun's namespace has a
/// mount on would detach that mount (Linux 3.18+), so concurrent runs would
/// lose their locks.
fn mount_lock_dir() -> Result<Mount, SysError> {
    let path = Path::new(LXC_RUN_DIR);
    // 0755, as liblxc itself creates it.
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o755)
        .create(path)
        .map_err(|e| SysError::io("create directory", path, e))?;
    mount::tmpfs(path)
}

impl Stage {
    fn prepare(plan: &LaunchPlan, quiet: bool) -> Result<Self, Error> {
        let layout = &plan.layout;
        let locks = mount_lock_dir()?;
        mkdir(&layout.base)?;
        let state = mount::tmpfs(&layout.base)?;
        for dir in [
            &layout.lower,
            &layout.upper,
            &layout.work,
            &layout.rootfs,
            &layout.lxcpath,
        ] {
            mkdir(dir)?;
        }
        let lower = mount_lower(plan, quiet)?;
        let overlay = mount::overlay(&layout.lower, &layout.upper, &layout.work, &layout.rootfs)?;
        let root = fs::File::open(&layout.rootfs)
            .map_err(|e| SysError::io("open", &layout.rootfs, e))?
            .into();
        Ok(Stage {
            root,
            interpreter: None,
            _overlay: overlay,
            _lower: lower,
            _state: state,
            _locks: locks,
        })
    }
}

/// A handler without the F flag: the kernel opens the interpreter by its
/// registered path inside the container, so put the host file there.
fn bind_interpreter(plan: &LaunchPlan, root: &OwnedFd) -> Result<Option<Mount>, Error> {
    let Emulation::BindMount {
        interpreter,
        host_file,
        ..
    } = &plan.emulation
    else {
        return Ok(None);
    };
    let target = rootfs::create_file_in_root(root, interpreter).map_err(|e| {
        SysError::new(
            "create the interpreter mount point inside the image at",
            interpreter,
            e,
        )
    })?;
    let target_path = rootfs::fd_path(&target);
    Ok(Some(mount::bind_read_only(
        host_file,
        &target,
        &target_path,
    )?))
}

/// The read-only lower layer, by its source.
fn mount_lower(plan: &LaunchPlan, quiet: bool) -> Result<Option<Mount>, Error> {
    let target = &plan.layout.lower;
    match plan.lower {
        Lower::Squashfs => {
            let device = loopdev::attach_read_only(&plan.image)?;
            let lower =
                mount::squashfs(device.path(), target).map_err(|e| not_squashfs(plan, e))?;
            // The mount holds the device now; autoclear detaches it with the mount.
            drop(device);
            Ok(Some(lower))
        }
        Lower::Directory => {
            let fd: OwnedFd = fs::File::open(target)
                .map_err(|e| SysError::io("open", target, e))?
                .into();
            Ok(Some(mount::bind_read_only(&plan.image, &fd, target)?))
        }
        Lower::Unpacked => {
            unpack_lower(plan, quiet)?;
            Ok(None)
        }
    }
}

fn not_squashfs(plan: &LaunchPlan, err: SysError) -> Error {
    if err.errno == nix::errno::Errno::EINVAL {
        Error::Image {
            path: plan.image.clone(),
            problem: "not a SquashFS image (the kernel refused to mount it)".into(),
        }
    } else {
        err.into()
    }
}

fn mkdir(path: &Path) -> Result<(), SysError> {
    match fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(path)
    {
        Ok(()) => Ok(()),
        Err(e) => Err(SysError::io("create directory", path, e)),
    }
}

fn write_config(plan: &LaunchPlan, console: ConsolePath<'_>) -> Result<(), SysError> {
    let dir = plan.layout.lxcpath.join(&plan.name);
    mkdir(&dir)?;
    let seccomp = &plan.layout.seccomp;
    fs::write(seccomp, crate::plan::SECCOMP_POLICY)
        .map_err(|e| SysError::io("write", seccomp, e))?;
    let path = dir.join("config");
    fs::write(&path, plan.lxc_config_text(console)).map_err(|e| SysError::io("write", &path, e))
}

/// A child that reads the files the container's first exec needs, beside
/// the liblxc monitor: the SquashFS was just mounted, so its pages are cold,
/// and decompressing them (about 10 ms for BusyBox from a gzip image, on the
/// kernel's single decompressor) then overlaps liblxc's container setup
/// instead of following it. Best effort: a failed fork only costs time.
/// Killed and reaped on drop, normally long done by then.
struct Prefetch(Option<Pid>);

impl Prefetch {
    fn start(root: &OwnedFd, files: &[PathBuf]) -> Self {
        let rootrun = nix::unistd::getpid();
        Prefetch(
            process::spawn(|| {
                // Its open files would keep the namespace's mounts and the
                // loop device alive after a SIGKILLed rootrun.
                if process::die_with_parent(rootrun).is_ok() {
                    warm_page_cache(root, files);
                }
            })
            .ok(),
        )
    }
}

impl Drop for Prefetch {
    fn drop(&mut self) {
        if let Some(pid) = self.0 {
            let _ = nix::sys::signal::kill(pid, Signal::SIGKILL);
            let _ = nix::sys::wait::waitpid(pid, None);
        }
    }
}

/// Reads at most this much of each file: exec touches only part of a large
/// program, and the child must not outlive the container's start by much.
const PREFETCH_MAX: u64 = 64 << 20;

/// Reads the regular files among `files`, at most `PREFETCH_MAX` bytes of
/// each; returns how many bytes it read. The image is untrusted: a FIFO (or
/// a device) in a program's place is opened without blocking and skipped.
fn warm_page_cache(root: &OwnedFd, files: &[PathBuf]) -> u64 {
    let mut buf = vec![0u8; 128 * 1024];
    let mut total = 0;
    for path in files {
        let Ok(fd) = rootfs::open_in_root(root, path, libc::O_RDONLY | libc::O_NONBLOCK) else {
            continue;
        };
        let file = fs::File::from(fd);
        if !file.metadata().is_ok_and(|m| m.is_file()) {
            continue;
        }
        let mut file = std::io::Read::take(file, PREFETCH_MAX);
        while let Ok(n @ 1..) = std::io::Read::read(&mut file, &mut buf) {
            total += n as u64;
        }
    }
    total
}

/// The liblxc monitor: runs in a forked child so that rootrun itself stays
/// free to proxy the console and react to signals while `start()` blocks.
fn monitor_main(plan: &LaunchPlan, rootrun: Pid, signals: &SigSet, outcome: &SharedOutcome) {
    // Its own process group: a Ctrl-C on rootrun's terminal is for rootrun,
    // which decides how to stop the container.
    let _ = setpgid(Pid::from_raw(0), Pid::from_raw(0));
    // If rootrun is SIGKILLed, the monitor dies too, and liblxc's own
    // PR_SET_PDEATHSIG on init takes the container with it: the namespace,
    // its mounts and the autoclear loop device then vanish.
    if process::die_with_parent(rootrun).is_err() {
        return outcome.report(Outcome::StartFailed);
    }
    let _ = signals.thread_unblock();
    process::default_signal_dispositions();
    let started = Container::new(&plan.name, &plan.layout.lxcpath).and_then(|container| {
        container.want_daemonize(false)?;
        container.want_close_all_fds(true)?;
        match &plan.mode {
            Mode::Boot { .. } => container.start(false, &[])?,
            Mode::Command { argv } => container.start(true, argv)?,
        }
        Ok(container.exit_status())
    });
    outcome.report(match started {
        Ok(status) => Outcome::Exited(status),
        Err(_) => Outcome::StartFailed,
    });
}

/// `--unpack`: extract the image with backhand into the lower directory on
/// rootrun's tmpfs. Its worker threads are scoped and gone when it returns,
/// before the monitor is forked.
fn unpack_lower(plan: &LaunchPlan, quiet: bool) -> Result<(), Error> {
    let mut progress = TerminalProgress::new(quiet);
    unpack::unpack(
        &plan.image,
        &plan.layout.lower,
        &UnpackOptions::default(),
        &mut progress,
    )
    .map_err(|e| Error::Unpack(Box::new(e)))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefetch_reads_regular_files_up_to_the_cap_and_skips_fifos() {
        let dir = std::env::temp_dir().join(format!("rootrun-prefetch-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(dir.join("bin")).unwrap();
        fs::write(dir.join("bin/small"), vec![7u8; 5000]).unwrap();
        // Sparse: costs no disk, reads as zeros.
        let big = fs::File::create(dir.join("bin/big")).unwrap();
        big.set_len(PREFETCH_MAX + (1 << 20)).unwrap();
        nix::unistd::mkfifo(&dir.join("bin/fifo"), nix::sys::stat::Mode::S_IRWXU).unwrap();
        let root: OwnedFd = fs::File::open(&dir).unwrap().into();
        let files = [
            PathBuf::from("/bin/small"),
            PathBuf::from("/bin/missing"),
            // Would block forever in open(2) without a writer.
            PathBuf::from("/bin/fifo"),
            PathBuf::from("/bin/big"),
        ];
        let read = warm_page_cache(&root, &files);
        fs::remove_dir_all(&dir).unwrap();
        assert_eq!(read, 5000 + PREFETCH_MAX);
    }
}
