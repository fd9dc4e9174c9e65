//! Executes a `LaunchPlan`: its steps, one by one and in order, each
//! resource pushed onto a guard stack that is released in reverse whatever
//! happens; the last step starts the container and runs the session.

mod debug;
mod guards;
mod monitor;
mod prefetch;
mod root;

use std::fs;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::time::Instant;

use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};

use crate::arch::{self, Binfmt, BINFMT_DIR};
use crate::config::Verbosity;
use crate::console::{self, ConsolePty};
use crate::error::Error;
use crate::image::entry;
use crate::image::unpack::{self, TerminalProgress, UnpackOptions};
use crate::plan::{drop_in_path, ConsolePath, LaunchPlan, Step, DROP_IN, SECCOMP_POLICY};
use crate::session::{death_hint, exit_code, Session};
use crate::sys::mount;
use crate::sys::process::{self, Outcome, SharedOutcome};
use crate::sys::{cgroup, loopdev, namespace, net, rootfs, userns, SysError};
use crate::{logging, notice};

use guards::GuardStack;
use prefetch::Prefetch;
use root::MountedRoot;

/// Signals rootrun handles through a signalfd instead of dying from them.
const HANDLED: [Signal; 6] = [
    Signal::SIGQUIT,
    Signal::SIGINT,
    Signal::SIGTERM,
    Signal::SIGHUP,
    Signal::SIGCHLD,
    Signal::SIGWINCH,
];

/// What the steps so far produced, for the steps after them.
#[derive(Default)]
struct Staged {
    /// Released last-first when the launch ends.
    guards: GuardStack,
    /// Set up by `AttachLoop`, handed to `MountSquashfs`.
    loop_device: Option<loopdev::LoopDevice>,
    /// The container root, as an `O_PATH` directory fd for lookups inside it.
    root: Option<OwnedFd>,
    /// What the first exec reads (`CheckProgram`), for the prefetch child.
    first_read: Vec<PathBuf>,
    console: Option<ConsolePty>,
    /// `--console-log`'s file.
    console_log: Option<fs::File>,
    /// The detached mount of an ext4, EROFS or archive image, for `AttachLower`.
    lower: Option<OwnedFd>,
    /// `--unprivileged`: the user namespace whose mapping the idmapped
    /// mounts take.
    idmap: Option<OwnedFd>,
}

/// A named container's side of a launch (`crate::state`).
pub struct Named<'a> {
    pub owned: &'a mut crate::state::Owned,
    /// `-d`: the console is served on the control socket, not on stdio.
    pub detached: bool,
    /// `-d`: written to once init runs, for the rootrun that waits.
    pub ready: Option<OwnedFd>,
}

/// Runs the plan and returns rootrun's exit code. The caller has checked
/// privileges and loaded liblxc.
pub fn run(
    plan: &LaunchPlan,
    lower: Option<OwnedFd>,
    banner: Option<&str>,
    verbosity: Verbosity,
    named: Option<Named<'_>>,
) -> Result<u8, Error> {
    // A background rootrun writing its notes to a terminal with `stty
    // tostop` would be stopped by SIGTTOU, and a stopped rootrun serves no
    // stop request: job control never stops it (console::block_job_control;
    // the monitor unblocks them for the container).
    let _job_control = console::block_job_control();
    let mut staged = Staged {
        lower,
        ..Staged::default()
    };
    // The loop device reads the image file while the container runs.
    let image_before = plan
        .lower
        .reads_image_file()
        .then(|| ImageStamp::of(&plan.image))
        .flatten();
    for step in &plan.steps {
        if let Step::Start { .. } = step {
            tracing::info!("step: {step}");
            let code = start(plan, &mut staged, banner, named);
            let tearing_down = Instant::now();
            drop(staged);
            tracing::info!(
                "teardown: mounts, loop device and state released ({})",
                logging::ms(tearing_down)
            );
            if let Some(before) = image_before {
                before.warn_if_changed(&plan.image);
            }
            return code;
        }
        let started = Instant::now();
        execute(step, plan, &mut staged, verbosity)?;
        tracing::info!("step: {step} ({})", logging::ms(started));
    }
    Err(Error::Usage("the launch plan has no start step".into()))
}

fn execute(
    step: &Step,
    plan: &LaunchPlan,
    staged: &mut Staged,
    verbosity: Verbosity,
) -> Result<(), Error> {
    match step {
        Step::SweepStaleCgroups { prefix } => {
            cgroup::sweep_stale(prefix);
        }
        Step::SweepStaleNat { state } => {
            let swept = net::sweep_nat(state);
            if let (Some(what), false) = (swept, verbosity == Verbosity::Quiet) {
                notice::note(&what);
            }
        }
        Step::CheckBridge { bridge } => net::check_bridge(bridge)?,
        Step::JoinNat {
            bridge,
            table,
            state,
            candidates,
        } => {
            let spec = net::NatSpec {
                bridge,
                table,
                state,
                candidates,
            };
            let (user, joined) = net::join_nat(&spec)?;
            staged.guards.push(user);
            if verbosity >= Verbosity::Verbose {
                notice::note(&joined.describe(candidates));
            }
        }
        Step::PrivateMountNamespace => namespace::enter_private_mount_namespace()?,
        Step::MountBinfmtMisc { target } => {
            staged.guards.push(mount::binfmt_misc(target)?);
        }
        Step::RegisterBinfmt {
            name,
            interpreter,
            line,
            stays,
        } => register(name, interpreter, line, *stays)?,
        Step::CheckHandler {
            entry,
            head,
            file_name,
        } => check_handler(entry, head, file_name)?,
        Step::Tmpfs {
            target,
            dir_mode,
            mode,
            size,
            ..
        } => {
            make_dir(target, *dir_mode)?;
            staged
                .guards
                .push(mount::tmpfs(target, *mode, size.as_deref())?);
        }
        Step::MakeDirs { paths, mode, owner } => {
            for path in paths {
                make_dir(path, *mode)?;
                if let Some((uid, gid)) = owner {
                    std::os::unix::fs::chown(path, Some(*uid), Some(*gid))
                        .map_err(|e| SysError::io("chown", path, e))?;
                }
            }
        }
        Step::AttachLoop { image } => {
            staged.loop_device = Some(loopdev::attach_read_only(image).map_err(no_loop_device)?);
        }
        Step::MountSquashfs { target } => {
            let device = staged
                .loop_device
                .take()
                .ok_or_else(|| Error::Usage("mount squashfs: no loop device attached".into()))?;
            let lower =
                mount::squashfs(device.path(), target).map_err(|e| not_squashfs(plan, e))?;
            // The mount holds the device now; autoclear detaches it with the mount.
            drop(device);
            staged.guards.push(lower);
        }
        Step::BindReadOnly { source, target } => {
            let fd: OwnedFd = fs::File::open(target)
                .map_err(|e| SysError::io("open", target, e))?
                .into();
            staged
                .guards
                .push(mount::bind_read_only(source, &fd, target)?);
        }
        Step::Unpack { image, target } => unpack_lower(image, target, verbosity)?,
        Step::AttachLower { target, .. } => {
            let tree = staged.lower.take().ok_or_else(|| {
                Error::Usage("attach the lower layer: the image was not mounted".into())
            })?;
            // Attached, the mount lives in rootrun's namespace; the fd can go.
            staged.guards.push(mount::attach(&tree, target)?);
        }
        Step::Idmap { target, map } => {
            let userns = userns::namespace_fd(map)?;
            let idmapped = mount::idmapped_onto_itself(target, &userns).map_err(no_idmap)?;
            staged.guards.push(idmapped);
            // For the --bind mounts after the overlay.
            staged.idmap = Some(userns);
        }
        Step::Overlay {
            lower,
            upper,
            work,
            target,
        } => {
            same_owner_and_mode(lower, upper)?;
            let overlay = mount::overlay(lower, upper, work, target)?;
            staged.guards.push(overlay);
            let root = fs::File::open(target).map_err(|e| SysError::io("open", target, e))?;
            staged.root = Some(root.into());
        }
        Step::CheckProgram { program } => {
            staged.first_read = entry::check(program, &MountedRoot(root(staged)?))?;
        }
        Step::BindInterpreter {
            host_file,
            interpreter,
        } => {
            let guard = bind_interpreter(root(staged)?, host_file, interpreter)?;
            staged.guards.push(guard);
        }
        Step::BindHost {
            source,
            target,
            read_only,
            idmap,
        } => {
            let idmap = staged.idmap.as_ref().filter(|_| *idmap);
            let guard = bind_host(root(staged)?, source, target, *read_only, idmap)?;
            staged.guards.push(guard);
        }
        Step::TraceProgram { program, copy_dir } => {
            let guard = debug::trace_program(root(staged)?, program, copy_dir)?;
            staged.guards.push(guard);
        }
        Step::WriteDropIns { units } => {
            // A drop-in the image's own files keep out (a symlink or a FIFO
            // at its name) costs that unit its start, not the whole boot.
            let root = root(staged)?;
            for unit in units {
                let path = drop_in_path(unit);
                if let Err(e) = rootfs::write_file_in_root(root, &path, DROP_IN.as_bytes()) {
                    notice::warning(&format!(
                        "cannot write the systemd drop-in {} inside the container ({e}): \
                         {unit} fails if it starts",
                        path.display()
                    ));
                }
            }
        }
        Step::WriteSeccompPolicy { path } => write(path, SECCOMP_POLICY)?,
        Step::AllocateConsole => {
            let size = console::window_size(io::stdin().as_fd());
            let pty = ConsolePty::open(size)?;
            if let Some(map) = &plan.idmap {
                pty.give_to(map.uid_first, map.gid_first)?;
            }
            staged.console = Some(pty);
        }
        Step::OpenConsoleLog { path } => {
            let file = fs::File::create(path).map_err(|e| SysError::io("create", path, e))?;
            staged.console_log = Some(file);
        }
        Step::WriteLxcConfig { path } => {
            let console = match &staged.console {
                Some(pty) => ConsolePath::Pty(&pty.slave_path),
                None => ConsolePath::Planned,
            };
            write(path, &plan.lxc_config_text(console))?;
        }
        Step::Start { .. } => {}
    }
    Ok(())
}

fn root(staged: &Staged) -> Result<&OwnedFd, Error> {
    staged
        .root
        .as_ref()
        .ok_or_else(|| Error::Usage("the launch plan uses the root before the overlay".into()))
}

/// The last step: start the container in a monitor child and stay with it
/// until it is gone; then the guards go, in reverse.
fn start(
    plan: &LaunchPlan,
    staged: &mut Staged,
    banner: Option<&str>,
    named: Option<Named<'_>>,
) -> Result<u8, Error> {
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
    let watch = crate::session::boot_check(plan, staged.console_log.take())?;
    if let Some(text) = banner {
        notice::note(text);
    }
    let rootrun = nix::unistd::getpid();
    let quiet = named.as_ref().is_some_and(|named| named.detached);
    if quiet {
        // A detached container may run for days: its rootrun must not keep
        // the caller's working directory busy (every path it needed is
        // open or mounted by now; the rest are absolute).
        let _ = std::env::set_current_dir("/");
    }
    let prefetch = Prefetch::start(root(staged)?, &staged.first_read, quiet);
    let gdb = debug::GdbBridge::start(plan, quiet)?;
    debug::announce_gdb(plan, root(staged)?, staged.first_read.first());
    let starting = Instant::now();
    let monitor =
        process::spawn(|| monitor::monitor_main(plan, rootrun, &signals, &outcome, quiet))?;
    tracing::info!(
        "liblxc start: monitor process {monitor} starts {} ({})",
        plan.name,
        logging::ms(starting)
    );

    let console = staged.console.as_ref();
    let control = named.map(|named| {
        let detached = console.filter(|_| named.detached);
        crate::session::Control::new(named.owned, detached, named.ready)
    });
    let mut session = Session::new(plan, monitor, console, Some(watch), control);
    tracing::info!(
        "console: {}",
        match console {
            Some(pty) => format!("the container's console is {}", pty.slave_path.display()),
            None => "the command's stdio".to_owned(),
        }
    );
    let result = session.run(&signal_fd);
    tracing::info!(
        "container ended: {:?} after {:.3} s",
        outcome.outcome(),
        starting.elapsed().as_secs_f64()
    );
    if tracing::enabled!(tracing::Level::DEBUG) {
        debug_liblxc_log(&plan.layout.log);
    }
    // The monitor has exited. When start() returned, liblxc removed the
    // container's cgroups on its way out; a monitor that was killed (the
    // last step of a forced stop) left them, and they go here rather than
    // waiting for the next run's sweep. Only then: it costs a walk of every
    // hierarchy.
    if result.is_ok() && !matches!(outcome.outcome(), Outcome::Exited(_)) {
        cgroup::remove_leftovers(&plan.name);
    }
    // Before the tmpfs holding liblxc's log goes away with the guards.
    let code = result.and_then(|()| {
        exit_code(
            plan,
            outcome.outcome(),
            session.stop_cause(),
            &plan.layout.log,
        )
    });
    session.finish_control(match &code {
        Ok(code) => *code,
        Err(_) => crate::error::EXIT_ROOTRUN,
    });
    // Its open files would keep the mounts busy.
    drop(prefetch);
    drop(gdb);
    debug::report_traces(plan);
    if let Some(hint) = death_hint(plan, outcome.outcome()) {
        notice::warning(&hint);
    }
    // The signals stay blocked: rootrun exits right after reporting `code`,
    // and a Ctrl-C or SIGTERM that came during the teardown (the container is
    // gone already) must not kill it first with the default action.
    code
}

/// `-vv`: liblxc's log of the run (at DEBUG, see `config`) as debug lines,
/// before it goes with the tmpfs; at most `MAX_LOG_LINES` of its last lines.
fn debug_liblxc_log(path: &Path) {
    const MAX_LOG_LINES: usize = 2000;
    let Ok(text) = fs::read(path) else {
        return;
    };
    let text = String::from_utf8_lossy(&text);
    let lines: Vec<&str> = text.lines().collect();
    for line in &lines[lines.len().saturating_sub(MAX_LOG_LINES)..] {
        tracing::debug!("liblxc: {line}");
    }
}

/// What identifies the image file's contents well enough to notice that
/// someone rewrote or truncated it while the container ran from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct ImageStamp {
    ino: u64,
    size: u64,
    mtime: (i64, i64),
}

impl ImageStamp {
    fn of(path: &Path) -> Option<Self> {
        use std::os::unix::fs::MetadataExt;
        let meta = fs::metadata(path).ok()?;
        Some(ImageStamp {
            ino: meta.ino(),
            size: meta.size(),
            mtime: (meta.mtime(), meta.mtime_nsec()),
        })
    }

    /// The guest's I/O errors came from the image file: say so.
    fn warn_if_changed(&self, path: &Path) {
        let now = ImageStamp::of(path);
        let what = match now {
            None => "was removed".to_owned(),
            Some(now) if now.size < self.size => {
                format!("was truncated ({} -> {} bytes)", self.size, now.size)
            }
            Some(now) if now != *self => "was changed".to_owned(),
            Some(_) => return,
        };
        notice::warning(&format!(
            "the image file {} {what} while the container ran from it: I/O errors or \
             crashes inside come from that",
            path.display()
        ));
    }
}

/// `--register-binfmt`: writes the planned line. An entry of that name
/// (ours from an earlier run, but disabled or broken) is replaced.
fn register(name: &str, interpreter: &Path, line: &str, stays: bool) -> Result<(), Error> {
    let dir = Path::new(BINFMT_DIR);
    if dir.join(name).exists() {
        arch::remove(dir, name)?;
    }
    arch::register(dir, line)?;
    // Entries live as long as binfmt_misc is mounted somewhere: with only
    // rootrun's private mount, the entry goes away with rootrun.
    let lifetime = if stays {
        format!("it stays registered (remove it: echo -1 > {BINFMT_DIR}/{name})")
    } else {
        "for this run (binfmt_misc is not mounted on the host)".to_owned()
    };
    notice::note(&format!(
        "registered binfmt_misc handler {name} (flag F) for {}; {lifetime}",
        interpreter.display()
    ));
    Ok(())
}

/// The plan chose its handler from binfmt_misc as it was then; the kernel
/// decides at exec time. Another registration in between would make the
/// plan (and its interpreter bind mount) wrong: say so instead.
fn check_handler(planned: &str, head: &[u8], file_name: &str) -> Result<(), Error> {
    let now = match arch::read_binfmt(Path::new(BINFMT_DIR))? {
        Binfmt::Mounted { entries, .. } => {
            arch::select(&entries, head, file_name).map(|e| e.name.clone())
        }
        Binfmt::NotMounted => None,
    };
    if now.as_deref() == Some(planned) {
        return Ok(());
    }
    Err(Error::Usage(format!(
        "binfmt_misc changed while rootrun started: the kernel now picks {} instead of \
         {planned}; run rootrun again",
        now.as_deref().unwrap_or("no handler")
    )))
}

/// A handler without the F flag: the kernel opens the interpreter by its
/// registered path inside the container, so put the host file there.
fn bind_interpreter(
    root: &OwnedFd,
    host_file: &Path,
    interpreter: &Path,
) -> Result<mount::Mount, Error> {
    let target = rootfs::create_file_in_root(root, interpreter).map_err(|e| {
        SysError::new(
            "create the interpreter mount point inside the image at",
            interpreter,
            e,
        )
    })?;
    let target_path = rootfs::fd_path(&target);
    Ok(mount::bind_read_only(host_file, &target, &target_path)?)
}

/// `--bind`: the mount point (a directory for a directory, a file for
/// anything else) is made inside the root, every component resolved
/// inside it, so an image symlink cannot send the mount onto the host.
fn bind_host(
    root: &OwnedFd,
    source: &Path,
    target: &Path,
    read_only: bool,
    idmap: Option<&OwnedFd>,
) -> Result<mount::Mount, Error> {
    let meta = fs::metadata(source).map_err(|e| SysError::io("--bind: look at", source, e))?;
    let made = if meta.is_dir() {
        rootfs::create_dir_in_root(root, target)
    } else {
        rootfs::create_file_in_root(root, target)
    };
    let point = made.map_err(|e| {
        SysError::new(
            "--bind: create the mount point inside the image at",
            target,
            e,
        )
    })?;
    let point_path = rootfs::fd_path(&point);
    mount::bind(source, &point, &point_path, read_only, idmap).map_err(|e| match idmap {
        Some(_) if e.op.starts_with("idmap") => no_idmap(e),
        _ => e.into(),
    })
}

/// The overlay's root directory is the upper layer's (overlayfs never
/// copies the root up): it gets the image root's owner and mode, or a
/// container whose `/` is rootrun's 0700 would let no user but root in.
fn same_owner_and_mode(lower: &Path, upper: &Path) -> Result<(), SysError> {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let image_root = fs::metadata(lower).map_err(|e| SysError::io("look at", lower, e))?;
    std::os::unix::fs::chown(upper, Some(image_root.uid()), Some(image_root.gid()))
        .map_err(|e| SysError::io("chown", upper, e))?;
    fs::set_permissions(
        upper,
        fs::Permissions::from_mode(image_root.mode() & 0o7777),
    )
    .map_err(|e| SysError::io("chmod", upper, e))
}

/// The file system under the lower layer or a --bind (or the kernel)
/// cannot idmap.
fn no_idmap(err: SysError) -> Error {
    Error::Usage(format!(
        "{err}: --unprivileged needs idmapped mounts (mount_setattr with \
         MOUNT_ATTR_IDMAP), which this file system or kernel refuses (SquashFS, tmpfs, \
         ext4, XFS and Btrfs take them on recent kernels); use --privileged"
    ))
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

/// A failure on the loop side (its control device, a device node, no free
/// one) says that no loop device could be had, and names `--unpack`; a
/// failure to open the image stays what it is. ENOTTY from
/// LOOP_CTL_GET_FREE alone ("Not a typewriter") would send one looking in
/// the wrong place.
fn no_loop_device(err: SysError) -> Error {
    if err.op.starts_with("open image") || err.op.starts_with("stat image") {
        err.into()
    } else {
        Error::NoLoopDevice(err)
    }
}

/// Creates `path` (and its parents) when missing. A directory that exists
/// is never removed afterwards: removing one that another rootrun's
/// namespace has a mount on would detach that mount (Linux 3.18+).
fn make_dir(path: &Path, mode: u32) -> Result<(), SysError> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(mode)
        .create(path)
        .map_err(|e| SysError::io("create directory", path, e))
}

fn write(path: &Path, text: &str) -> Result<(), SysError> {
    fs::write(path, text).map_err(|e| SysError::io("write", path, e))
}

/// `--unpack`: extract the image with backhand into the lower directory on
/// rootrun's tmpfs. Its worker threads are scoped and gone when it returns,
/// before the monitor is forked.
fn unpack_lower(image: &Path, target: &Path, verbosity: Verbosity) -> Result<(), Error> {
    let mut progress = TerminalProgress::new(verbosity == Verbosity::Quiet);
    unpack::unpack(image, target, &UnpackOptions::default(), &mut progress)
        .map_err(|e| Error::Unpack(Box::new(e)))?;
    Ok(())
}
