//! The running side of `--gdb` and `--strace` (`plan::debug`): the bridge
//! from the host's loopback to the gdbstub's socket, the command line
//! printed for gdb, and the list of trace files at the end.

use std::fs;
use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, Shutdown, TcpListener, TcpStream};
use std::os::fd::OwnedFd;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use nix::unistd::Pid;

use crate::debug::GdbTarget;
use crate::error::Error;
use crate::notice;
use crate::plan::{gdb_architecture, strace_wrapper, DebugPlan, LaunchPlan, Mode, STRACE_PREFIX};
use crate::sys::{process, rootfs, SysError};

/// How long a gdb connection waits for the gdbstub's socket to appear
/// (the emulator creates it before the guest's first instruction).
const STUB_WAIT: Duration = Duration::from_secs(30);

/// A child that accepts gdb on 127.0.0.1:PORT (or a Unix socket on the
/// host) and relays each connection to QEMU's gdbstub, whose Unix socket is
/// in the emulator directory: QEMU_GDB with a port would listen in the
/// container's network namespace, which the host cannot reach (`--net
/// none`). Killed and reaped on drop; a socket file of its own goes too.
pub struct GdbBridge {
    child: Option<Pid>,
    socket: Option<PathBuf>,
}

/// Where gdb connects.
enum Listener {
    Tcp(TcpListener),
    Unix(UnixListener),
}

impl GdbBridge {
    pub fn start(plan: &LaunchPlan, quiet: bool) -> Result<Self, Error> {
        let mut bridge = GdbBridge {
            child: None,
            socket: None,
        };
        let Some(target) = &plan.debug.gdb else {
            return Ok(bridge);
        };
        // Bound here, so a port in use is an error before the start.
        let listen_error = |e: io::Error| Error::Usage(format!("--gdb: listen on {target}: {e}"));
        let listener = match target {
            GdbTarget::Port(port) => Listener::Tcp(
                TcpListener::bind((Ipv4Addr::LOCALHOST, *port)).map_err(listen_error)?,
            ),
            GdbTarget::Socket(path) => {
                let listener = UnixListener::bind(path).map_err(listen_error)?;
                bridge.socket = Some(path.clone());
                Listener::Unix(listener)
            }
        };
        let stub = DebugPlan::gdb_socket(&plan.layout);
        let rootrun = nix::unistd::getpid();
        bridge.child = Some(process::spawn(move || {
            if quiet {
                process::stdio_to_null();
            }
            if process::die_with_parent(rootrun).is_ok() {
                serve(&listener, &stub);
            }
        })?);
        Ok(bridge)
    }
}

impl Drop for GdbBridge {
    fn drop(&mut self) {
        if let Some(pid) = self.child {
            let _ = nix::sys::signal::kill(pid, Signal::SIGKILL);
            let _ = nix::sys::wait::waitpid(pid, None);
        }
        if let Some(path) = &self.socket {
            let _ = fs::remove_file(path);
        }
    }
}

fn serve(listener: &Listener, stub: &Path) {
    loop {
        let accepted: Option<Box<dyn Duplex>> = match listener {
            Listener::Tcp(l) => l.accept().ok().map(|(s, _)| Box::new(s) as Box<dyn Duplex>),
            Listener::Unix(l) => l.accept().ok().map(|(s, _)| Box::new(s) as Box<dyn Duplex>),
        };
        if let (Some(client), Some(stub)) = (accepted, connect_stub(stub)) {
            relay(client, stub);
        }
    }
}

/// Either side of the relay: a stream that can be split in two.
trait Duplex: Read + Write + Send {
    fn split(&self) -> io::Result<Box<dyn Duplex>>;
    fn close(&self, how: Shutdown);
}

impl Duplex for TcpStream {
    fn split(&self) -> io::Result<Box<dyn Duplex>> {
        Ok(Box::new(self.try_clone()?))
    }

    fn close(&self, how: Shutdown) {
        let _ = self.shutdown(how);
    }
}

impl Duplex for UnixStream {
    fn split(&self) -> io::Result<Box<dyn Duplex>> {
        Ok(Box::new(self.try_clone()?))
    }

    fn close(&self, how: Shutdown) {
        let _ = self.shutdown(how);
    }
}

fn connect_stub(socket: &Path) -> Option<UnixStream> {
    let since = Instant::now();
    loop {
        match UnixStream::connect(socket) {
            Ok(stream) => return Some(stream),
            Err(_) if since.elapsed() < STUB_WAIT => std::thread::sleep(Duration::from_millis(50)),
            Err(_) => return None,
        }
    }
}

/// Copies both ways until either side closes (threads are fine here: this
/// child forks nothing).
fn relay(mut client: Box<dyn Duplex>, stub: UnixStream) {
    let (Ok(mut client_in), Ok(mut stub_out)) = (client.split(), stub.try_clone()) else {
        return;
    };
    let upstream = std::thread::spawn(move || {
        let _ = io::copy(&mut client_in, &mut stub_out);
        let _ = stub_out.shutdown(Shutdown::Write);
    });
    let mut stub_in = stub;
    let _ = io::copy(&mut stub_in, &mut client);
    client.close(Shutdown::Both);
    let _ = upstream.join();
}

/// The gdb-multiarch command line that attaches to the halted first
/// process: the container's root as the host sees it while rootrun runs
/// (`/proc/ROOTRUN/root` enters rootrun's mount namespace, proc(5)), and
/// the program file resolved inside that root (an absolute symlink such as
/// /sbin/init -> /bin/busybox would lead gdb to the host's file).
pub fn gdb_command(plan: &LaunchPlan, root: &OwnedFd, program: Option<&PathBuf>) -> String {
    let target = plan
        .debug
        .gdb
        .as_ref()
        .map(ToString::to_string)
        .unwrap_or_default();
    let host_root = format!("/proc/{}/root", std::process::id());
    let sysroot = format!("{host_root}{}", plan.layout.rootfs.display());
    let file = program
        .and_then(|path| rootfs::open_in_root(root, path, libc::O_RDONLY).ok())
        .map(|fd| format!("{host_root}{}", rootfs::fd_path(&fd).display()));
    let mut line = "gdb-multiarch -q".to_owned();
    if let Some(arch) = plan.arch.and_then(|arch| gdb_architecture(arch.qemu())) {
        line += &format!(" -ex 'set architecture {arch}'");
    }
    line += &format!(" -ex 'set sysroot {sysroot}' -ex 'target remote {target}'");
    if let Some(file) = file {
        line += &format!(" '{file}'");
    }
    line
}

/// `--strace=PATH`: the program copied where the container sees it in
/// /dev (the copy the wrapper runs), the wrapper written beside it and
/// bound read-only over PATH, every component resolved inside the root.
pub fn trace_program(
    root: &OwnedFd,
    program: &str,
    copy_dir: &Path,
) -> Result<crate::sys::mount::Mount, Error> {
    let refuse = |why: String| Error::Usage(format!("--strace={program}: {why}"));
    let open = |path: &str| {
        rootfs::open_in_root(root, Path::new(path), libc::O_RDONLY | libc::O_CLOEXEC)
            .map(fs::File::from)
    };
    let mut original = open(program).map_err(|e| refuse(format!("in the image: {e}")))?;
    let meta = original
        .metadata()
        .map_err(|e| refuse(format!("in the image: {e}")))?;
    if !meta.is_file() {
        return Err(refuse("not a regular file in the image".into()));
    }
    // The wrapper is a /bin/sh script: tracing that shell would make the
    // script its own interpreter.
    let shell = open("/bin/sh").ok().and_then(|sh| sh.metadata().ok());
    if shell.is_some_and(|sh| (sh.dev(), sh.ino()) == (meta.dev(), meta.ino())) {
        return Err(refuse(
            "it is the image's /bin/sh, which runs the wrapper that traces it; trace a copy \
             of it under another name"
                .into(),
        ));
    }
    if !shell_exists(root) {
        return Err(refuse("the image has no /bin/sh to run the wrapper".into()));
    }
    let name = Path::new(program)
        .file_name()
        .ok_or_else(|| refuse("no file name".into()))?;
    fs::DirBuilder::new()
        .mode(0o755)
        .recursive(true)
        .create(copy_dir)
        .map_err(|e| SysError::io("create directory", copy_dir, e))?;
    let copy_path = copy_dir.join(name);
    let mut copy = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o755)
        .open(&copy_path)
        .map_err(|e| SysError::io("create", &copy_path, e))?;
    io::copy(&mut original, &mut copy).map_err(|e| SysError::io("copy to", &copy_path, e))?;
    let wrapper = copy_dir.with_file_name("strace-wrapper");
    fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o755)
        .open(&wrapper)
        .and_then(|mut file| file.write_all(strace_wrapper(program).as_bytes()))
        .map_err(|e| SysError::io("write", &wrapper, e))?;
    super::bind_host(root, &wrapper, Path::new(program), true, None)
}

fn shell_exists(root: &OwnedFd) -> bool {
    rootfs::open_in_root(root, Path::new("/bin/sh"), libc::O_PATH).is_ok()
}

/// The first process's name, for the notes.
fn first_process(plan: &LaunchPlan) -> String {
    match &plan.mode {
        Mode::Boot { init } => format!("init ({init})"),
        Mode::Command { argv } => argv.first().cloned().unwrap_or_default(),
    }
}

/// Says where the first process waits for gdb, and how to attach.
pub fn announce_gdb(plan: &LaunchPlan, root: &OwnedFd, program: Option<&PathBuf>) {
    let Some(target) = &plan.debug.gdb else {
        return;
    };
    notice::note(&format!(
        "{} starts halted under QEMU's gdbstub on {target} (that process only, not \
         its children); attach with:",
        first_process(plan)
    ));
    notice::note(&gdb_command(plan, root, program));
}

/// `--strace`: which processes were traced, and where their traces are.
pub fn report_traces(plan: &LaunchPlan) {
    let traced = match &plan.debug.strace_program {
        Some(program) => program.clone(),
        None if plan.debug.strace => first_process(plan),
        None => return,
    };
    let dir = &plan.layout.emulator;
    let mut traces: Vec<(u32, PathBuf)> = fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let name = entry.file_name();
            let pid = name.to_str()?.strip_prefix(STRACE_PREFIX)?.parse().ok()?;
            Some((pid, entry.path()))
        })
        .collect();
    traces.sort();
    if traces.is_empty() {
        notice::warning(&format!(
            "--strace: the emulator wrote no trace into {}",
            dir.display()
        ));
    }
    for (pid, path) in traces {
        // The guest may have written anything there: count lines of a
        // regular file only, never following a link.
        let lines = fs::symlink_metadata(&path)
            .ok()
            .filter(fs::Metadata::is_file)
            .and_then(|_| fs::read(&path).ok())
            .map_or(0, |bytes| bytes.iter().filter(|b| **b == b'\n').count());
        notice::note(&format!(
            "syscall trace of {traced} (PID {pid} in the container): {} ({lines} lines)",
            path.display()
        ));
    }
}
