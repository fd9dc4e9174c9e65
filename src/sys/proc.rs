//! What rootrun reads about processes in /proc (proc(5)): a process's
//! oldest child, a container's init, and whether a signal sent to a PID
//! namespace's init would reach it. The text is the kernel's, but a process
//! may be gone half-way through: nothing here trusts a field to exist.

use std::fs;

/// The oldest child of `pid`, if any: from /proc/PID/task/PID/children
/// (proc_pid_children(5)), or, on kernels built without it
/// (CONFIG_PROC_CHILDREN), from a scan of every process's parent.
pub fn first_child(pid: i32) -> Option<i32> {
    match fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")) {
        Ok(text) => text.split_whitespace().next()?.parse().ok(),
        Err(_) => children_by_scan(pid)
            .into_iter()
            .min()
            .map(|(_, child)| child),
    }
}

/// `(start time, PID)` of every process whose parent is `parent`, from
/// /proc/PID/stat.
fn children_by_scan(parent: i32) -> Vec<(u64, i32)> {
    let mut found = Vec::new();
    for entry in fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<i32>().ok())
        else {
            continue;
        };
        let Ok(stat) = fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        if let Some((ppid, start)) = parent_and_start(&stat) {
            if ppid == parent {
                found.push((start, pid));
            }
        }
    }
    found
}

/// When process `pid` started (clock ticks after boot), while it runs (not
/// a zombie): with the PID, it names one process across PID reuse.
pub fn start_time(pid: u32) -> Option<u64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let state = stat.rsplit_once(") ")?.1.chars().next()?;
    if matches!(state, 'Z' | 'X') {
        return None;
    }
    parent_and_start(&stat).map(|(_, start)| start)
}

/// The parent PID and start time in a /proc/PID/stat line
/// (proc_pid_stat(5): field 4 is the parent, 22 the start time).
fn parent_and_start(stat: &str) -> Option<(i32, u64)> {
    // After the name in parentheses (which may hold anything, ") " too):
    // state is field 3, so the parent is [1] and the start time [19].
    let (_, rest) = stat.rsplit_once(") ")?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    Some((fields.get(1)?.parse().ok()?, fields.get(19)?.parse().ok()?))
}

/// The container's init: the monitor's child in a PID namespace of its
/// own (liblxc clones it there). None before it exists and after it is
/// gone.
pub fn container_init(monitor: i32) -> Option<i32> {
    let init = first_child(monitor)?;
    let ns = |pid: i32| fs::read_link(format!("/proc/{pid}/ns/pid")).ok();
    let (init_ns, monitor_ns) = (ns(init)?, ns(monitor)?);
    (init_ns != monitor_ns).then_some(init)
}

/// Whether process `pid`, if it is the first of a PID namespace, would
/// receive `signal` from outside: only when it catches it (SigCgt) or blocks
/// it (SigBlk: queued until it reads it, as systemd does with a signalfd);
/// otherwise the kernel drops it (pid_namespaces(7)). A process waiting in
/// sigtimedwait(2) counts as receiving: the kernel unblocks the awaited
/// signals for the wait, so SigBlk does not show them (BusyBox init waits
/// so for its halt signals). An unreadable status counts as receiving.
pub fn receives(pid: i32, signal: i32) -> bool {
    let Ok(status) = fs::read_to_string(format!("/proc/{pid}/status")) else {
        return true;
    };
    // The wait channel only when the masks say no: reading it costs a
    // stack walk in the kernel.
    status_takes(&status, signal).unwrap_or(true)
        || fs::read_to_string(format!("/proc/{pid}/wchan"))
            .is_ok_and(|wchan| waits_for_signals(&wchan))
}

/// Whether a /proc/PID/status text shows `signal` caught or blocked; None
/// when the masks are missing or unreadable.
fn status_takes(status: &str, signal: i32) -> Option<bool> {
    let mask = |field: &str| {
        status
            .lines()
            .find_map(|line| line.strip_prefix(field))
            .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok())
    };
    let (caught, blocked) = (mask("SigCgt:")?, mask("SigBlk:")?);
    Some((1..=64).contains(&signal) && (caught | blocked) & (1 << (signal - 1)) != 0)
}

/// Whether a /proc/PID/wchan text is a wait in sigtimedwait(2).
fn waits_for_signals(wchan: &str) -> bool {
    wchan.starts_with("do_sigtimedwait")
}

/// The kernel command line as processes here (and in a container, which
/// sees the host's) read it; empty when unreadable.
pub fn kernel_cmdline() -> String {
    fs::read_to_string("/proc/cmdline").unwrap_or_default()
}

/// The running kernel's release (`uname -r`); empty when unreadable.
pub fn kernel_release() -> String {
    fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_owned())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use nix::sys::signal::Signal;

    #[test]
    fn caught_or_blocked_signals_are_read_from_proc_status() {
        // Rust's runtime ignores SIGPIPE and catches nothing by default;
        // nothing in this test process installs handlers for these. A
        // thread's SigBlk is its own: look at a thread that blocks SIGUSR1.
        let me = std::process::id() as i32;
        // What the kernel showed, should an assertion fail (it has failed
        // now and then on a loaded machine; the text will say why).
        let shown = |pid: i32| {
            let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
            let masks: Vec<&str> = status.lines().filter(|l| l.starts_with("Sig")).collect();
            let wchan = fs::read_to_string(format!("/proc/{pid}/wchan")).unwrap_or_default();
            format!("{masks:?} wchan {wchan:?}")
        };
        assert!(!receives(me, libc::SIGUSR2), "{}", shown(me));
        assert!(
            !receives(me, libc::SIGPIPE),
            "ignored is not received: {}",
            shown(me)
        );
        assert!(receives(-1, libc::SIGUSR2), "unreadable counts as received");
        let (tx, rx) = std::sync::mpsc::channel();
        let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
        let blocker = std::thread::spawn(move || {
            let mut set = nix::sys::signal::SigSet::empty();
            set.add(Signal::SIGUSR1);
            set.thread_block().unwrap();
            tx.send(nix::unistd::gettid().as_raw()).unwrap();
            let _ = done_rx.recv();
        });
        let tid = rx.recv().unwrap();
        assert!(receives(tid, libc::SIGUSR1), "{}", shown(tid));
        assert!(!receives(tid, libc::SIGUSR2), "{}", shown(tid));
        done_tx.send(()).unwrap();
        blocker.join().unwrap();
    }

    #[test]
    fn status_masks_and_wait_channels_are_read_from_their_text() {
        // SIGUSR1 (10) caught, SIGUSR2 (12) blocked, SIGRTMIN+4 (38) caught.
        let status = "Name:\tinit\nSigBlk:\t0000000000000800\n\
                      SigIgn:\t0000000000000001\nSigCgt:\t0000002000000200\n";
        assert_eq!(status_takes(status, libc::SIGUSR1), Some(true));
        assert_eq!(status_takes(status, libc::SIGUSR2), Some(true));
        assert_eq!(status_takes(status, 38), Some(true));
        assert_eq!(status_takes(status, libc::SIGHUP), Some(false), "ignored");
        assert_eq!(status_takes(status, libc::SIGTERM), Some(false));
        assert_eq!(status_takes(status, 0), Some(false));
        assert_eq!(status_takes(status, 65), Some(false));
        assert_eq!(status_takes("Name:\tx\nSigBlk:\t0\n", 10), None);
        assert_eq!(status_takes("SigBlk:\tzz\nSigCgt:\t0\n", 10), None);
        assert!(waits_for_signals("do_sigtimedwait"));
        assert!(!waits_for_signals("do_wait"));
        assert!(!waits_for_signals(""));
    }

    #[test]
    fn stat_lines_give_parent_and_start_even_with_odd_names() {
        let stat = "42 (a) b (c) S 7 42 42 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 \
                    12345 1000 100 18446744073709551615";
        assert_eq!(parent_and_start(stat), Some((7, 12345)));
        assert_eq!(parent_and_start("42 (short) S 7"), None);
        assert_eq!(parent_and_start("garbage"), None);
    }

    #[test]
    fn the_parent_scan_finds_a_running_child() {
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .expect("spawn sleep");
        let pid = child.id() as i32;
        let scanned: Vec<i32> = children_by_scan(std::process::id() as i32)
            .into_iter()
            .map(|(_, child)| child)
            .collect();
        let _ = child.kill();
        let _ = child.wait();
        assert!(scanned.contains(&pid), "{pid} not in {scanned:?}");
        assert!(children_by_scan(pid).is_empty());
    }
}
