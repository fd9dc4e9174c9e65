//! Forking the liblxc monitor, and a result cell shared with it.
//!
//! liblxc's foreground `start()` blocks until the container stops and, with
//! `lxc.close_all_fds`-style cleanups, may close fds it did not open, so the
//! child reports back through an anonymous shared mapping instead of a pipe.

use std::ptr::NonNull;
use std::sync::atomic::{AtomicI32, AtomicU32, Ordering};

use nix::errno::Errno;
use nix::unistd::{fork, ForkResult, Pid};

use super::SysError;

#[repr(C)]
struct Cell {
    /// 0: nothing reported; 1: start() succeeded; 2: start() failed.
    state: AtomicU32,
    /// The container init's wait(2) status.
    status: AtomicI32,
}

/// What the monitor child reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The child died before reporting (killed).
    Unknown,
    StartFailed,
    /// The container ran; this is its init's wait status.
    Exited(i32),
}

/// A page shared between rootrun and its monitor child.
pub struct SharedOutcome {
    cell: NonNull<Cell>,
}

impl SharedOutcome {
    pub fn new() -> Result<Self, SysError> {
        // SAFETY: an anonymous shared mapping with no address hint; the result
        // is checked against MAP_FAILED below.
        let addr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                std::mem::size_of::<Cell>(),
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if addr == libc::MAP_FAILED {
            return Err(SysError::new(
                "mmap shared page",
                "<anonymous>",
                Errno::last(),
            ));
        }
        // A fresh anonymous mapping is zero-filled: state 0, status 0, which
        // is a valid `Cell` (atomics of zero).
        let cell = NonNull::new(addr.cast::<Cell>())
            .ok_or_else(|| SysError::new("mmap shared page", "<anonymous>", Errno::ENOMEM))?;
        Ok(SharedOutcome { cell })
    }

    fn cell(&self) -> &Cell {
        // SAFETY: the mapping lives until `drop` and is only accessed through
        // atomics, from this process and the forked child.
        unsafe { self.cell.as_ref() }
    }

    pub fn report(&self, outcome: Outcome) {
        let (state, status) = match outcome {
            Outcome::Unknown => (0, 0),
            Outcome::StartFailed => (2, 0),
            Outcome::Exited(status) => (1, status),
        };
        self.cell().status.store(status, Ordering::SeqCst);
        self.cell().state.store(state, Ordering::SeqCst);
    }

    pub fn outcome(&self) -> Outcome {
        match self.cell().state.load(Ordering::SeqCst) {
            1 => Outcome::Exited(self.cell().status.load(Ordering::SeqCst)),
            2 => Outcome::StartFailed,
            _ => Outcome::Unknown,
        }
    }
}

impl Drop for SharedOutcome {
    fn drop(&mut self) {
        // SAFETY: unmapping the mapping created in `new`, once.
        unsafe { libc::munmap(self.cell.as_ptr().cast(), std::mem::size_of::<Cell>()) };
    }
}

/// In a child: be SIGKILLed when `parent` (its PID taken before the fork)
/// dies; fails if it already has (the child was reparented before prctl).
pub fn die_with_parent(parent: Pid) -> Result<(), SysError> {
    nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL)
        .map_err(|e| SysError::new("prctl(PR_SET_PDEATHSIG)", "<child>", e))?;
    if nix::unistd::getppid() != parent {
        return Err(SysError::new("wait for", "<parent>", Errno::ESRCH));
    }
    Ok(())
}

/// Restores every signal's default action: an ignored signal stays ignored
/// across exec(2), and the container's init must start as from boot, not
/// with what rootrun's runtime (Rust ignores SIGPIPE) or its caller set.
/// The raw system call reaches 32 and 33 too, which glibc's sigaction
/// refuses (it keeps them for itself) but a caller may have left ignored.
pub fn default_signal_dispositions() {
    for signal in 1..=libc::SIGRTMAX() {
        if signal != libc::SIGKILL && signal != libc::SIGSTOP {
            set_default(signal);
        }
    }
}

/// The kernel's `struct sigaction` on x86_64 and aarch64 (arch/*/include/
/// uapi/asm/signal.h via asm-generic): handler, flags, restorer, mask.
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
#[repr(C)]
struct KernelSigaction {
    handler: usize,
    flags: u64,
    restorer: usize,
    mask: u64,
}

#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
fn set_default(signal: i32) {
    let action = KernelSigaction {
        handler: libc::SIG_DFL,
        flags: 0,
        restorer: 0,
        mask: 0,
    };
    // SAFETY: rt_sigaction reads `action` (sigsetsize 8, the kernel's) during
    // the call; SIG_DFL installs no handler; a NULL old action is allowed.
    unsafe {
        libc::syscall(
            libc::SYS_rt_sigaction,
            signal,
            &action as *const KernelSigaction,
            std::ptr::null_mut::<KernelSigaction>(),
            8usize,
        )
    };
}

#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
fn set_default(signal: i32) {
    // SAFETY: SIG_DFL is a valid disposition; invalid numbers fail with EINVAL.
    unsafe { libc::signal(signal, libc::SIG_DFL) };
}

/// kill(2) with a raw signal number: real-time signals such as
/// `SIGRTMIN+4` have no `nix::sys::signal::Signal` value.
pub fn send_signal(pid: i32, signal: i32) -> Result<(), Errno> {
    // SAFETY: kill(2) takes plain integers; an invalid PID or signal number
    // is reported as an error, not undefined behaviour.
    Errno::result(unsafe { libc::kill(pid, signal) }).map(drop)
}

/// Forks; the child runs `body` and `_exit`s without running the parent's
/// destructors (which own mounts and guards that the parent releases), even
/// if `body` panics.
pub fn spawn(body: impl FnOnce()) -> Result<Pid, SysError> {
    let threads = std::fs::read_dir("/proc/self/task")
        .map(Iterator::count)
        .unwrap_or(0);
    if threads != 1 {
        // After fork only the calling thread exists; locks other threads
        // held stay locked forever in the child.
        return Err(SysError::new(
            "fork liblxc monitor from a multi-threaded",
            "<rootrun>",
            Errno::EDEADLK,
        ));
    }
    // SAFETY: rootrun has exactly one thread (checked above), so the child
    // may run arbitrary code, including liblxc, before it exits.
    match unsafe { fork() } {
        Ok(ForkResult::Parent { child }) => Ok(child),
        Ok(ForkResult::Child) => {
            let code = match std::panic::catch_unwind(std::panic::AssertUnwindSafe(body)) {
                Ok(()) => 0,
                Err(_) => 125,
            };
            // SAFETY: _exit skips atexit handlers and Rust destructors, which
            // belong to the parent.
            unsafe { libc::_exit(code) }
        }
        Err(e) => Err(SysError::new("fork liblxc monitor", "<rootrun>", e)),
    }
}

/// Makes standard fd `target` (0, 1 or 2) a copy of `fd` (dup2(2)): a
/// detached rootrun's stdio goes to /dev/null or its log.
pub fn redirect(fd: std::os::fd::BorrowedFd<'_>, target: i32) -> Result<(), Errno> {
    use std::os::fd::AsRawFd;
    if !(0..=2).contains(&target) {
        return Err(Errno::EBADF);
    }
    // SAFETY: dup2 on a valid fd onto a standard fd number; it replaces
    // what that number referred to, which only standard streams use.
    let ret = unsafe { libc::dup2(fd.as_raw_fd(), target) };
    Errno::result(ret).map(drop)
}

/// Forks a process that goes on with the caller's code (`rootrun -d`'s
/// supervisor); refused (EDEADLK) when another thread exists.
pub fn fork_single_threaded() -> Result<ForkResult, Errno> {
    let threads = std::fs::read_dir("/proc/self/task")
        .map(Iterator::count)
        .unwrap_or(0);
    if threads != 1 {
        return Err(Errno::EDEADLK);
    }
    // SAFETY: rootrun has exactly one thread (checked above), so the child
    // may run arbitrary code.
    unsafe { fork() }
}

/// Points stdin, stdout and stderr at /dev/null: a detached rootrun's
/// children must not hold the pipes of the rootrun that started it (a
/// `$(rootrun -d IMAGE 2>&1)` would wait for them).
pub fn stdio_to_null() {
    use std::os::fd::AsFd;
    if let Ok(null) = std::fs::File::options()
        .read(true)
        .write(true)
        .open("/dev/null")
    {
        for target in 0..=2 {
            let _ = redirect(null.as_fd(), target);
        }
    }
}
