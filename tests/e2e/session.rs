//! Defects of the console session a new user hit, booting native BusyBox
//! images for real: a boot run by timeout(1) on a terminal (a background
//! job there) must end on timeout's SIGTERM instead of hanging stopped, and
//! pipe-mode output must carry no terminal queries.

use std::collections::BTreeSet;
use std::fs;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::harness::{rootrun, text, Frame};

const NATIVE: &str = "amd64";
const LIMIT: Duration = Duration::from_secs(60);

/// `(PID, state)` of every process below `ancestor` that runs this build's
/// rootrun (rootrun itself, its liblxc monitor, its prefetch child), from
/// /proc/PID/stat (proc_pid_stat(5): state is field 3, the parent field 4).
fn rootruns_below(ancestor: i32) -> Vec<(i32, char)> {
    let mut parents = Vec::new();
    for entry in fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse().ok()) else {
            continue;
        };
        let Ok(stat) = fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        let Some((_, rest)) = stat.rsplit_once(") ") else {
            continue;
        };
        let mut fields = rest.split_whitespace();
        let state = fields.next().and_then(|s| s.chars().next());
        let ppid = fields.next().and_then(|p| p.parse::<i32>().ok());
        if let (Some(state), Some(ppid)) = (state, ppid) {
            parents.push((pid, ppid, state));
        }
    }
    let mut below = BTreeSet::from([ancestor]);
    // Parents before children is not the order of /proc: go round until
    // nothing new is found.
    loop {
        let before = below.len();
        for (pid, ppid, _) in &parents {
            if below.contains(ppid) {
                below.insert(*pid);
            }
        }
        if below.len() == before {
            break;
        }
    }
    parents
        .into_iter()
        .filter(|(pid, _, _)| *pid != ancestor && below.contains(pid) && runs_rootrun(*pid))
        .map(|(pid, _, state)| (pid, state))
        .collect()
}

/// Whether process `pid` (a child of this test) has exited: a zombie, or
/// gone.
fn ended(pid: i32) -> bool {
    fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| {
            stat.rsplit_once(") ")
                .map(|(_, rest)| rest.starts_with('Z'))
        })
        .unwrap_or(true)
}

fn runs_rootrun(pid: i32) -> bool {
    let argv0 = fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    let argv0 = argv0.split(|&b| b == 0).next().unwrap_or_default();
    argv0 == env!("CARGO_BIN_EXE_rootrun").as_bytes()
}

#[test]
fn a_boot_run_by_timeout_on_a_terminal_is_never_stopped_and_ends_on_its_sigterm() {
    let Some((frame, image)) = Frame::setup("background terminal")
        .tools(&["script", "timeout"])
        .busybox(NATIVE)
    else {
        return;
    };
    // script(1) gives the shell a terminal of its own, whose foreground
    // process group the shell is; timeout(1) runs rootrun in a process
    // group of its own, a background job of that terminal. Raw mode there
    // stopped rootrun with SIGTTOU, for good: its stop signals are blocked
    // (read from a signalfd), so timeout's SIGTERM and SIGCONT only woke it
    // into the next SIGTTOU, until `-k`'s SIGKILL (status 137).
    let shell = format!(
        "timeout -k 30 -s TERM 8 {} {}; echo timeout-status=$?",
        env!("CARGO_BIN_EXE_rootrun"),
        image.display()
    );
    let started = Instant::now();
    let mut run = frame.live(
        Command::new("script").args(["-qc", &shell, "/dev/null"]),
        Stdio::piped(),
    );
    let script = run.id() as i32;
    let (mut rootruns, mut stopped) = (BTreeSet::new(), BTreeSet::new());
    while !run.wait_for("timeout-status=", Duration::from_millis(200)) {
        for (pid, state) in rootruns_below(script) {
            if rootruns.insert(pid) {
                // Its container is named for it: the frame's to check.
                frame.adopt(pid as u32);
            }
            if state == 'T' {
                stopped.insert(pid);
            }
        }
        let script_ended = ended(script);
        if script_ended || started.elapsed() > LIMIT {
            break;
        }
    }
    let elapsed = started.elapsed();
    let (out, seen) = run.finish(LIMIT);
    let context = format!(
        "script: {}, stderr: {}\n{seen}",
        out.status,
        text(&out.stderr)
    );
    assert!(stopped.is_empty(), "stopped: {stopped:?}\n{context}");
    assert!(
        !rootruns.is_empty(),
        "rootrun never seen running\n{context}"
    );
    assert!(seen.contains("timeout-status=124"), "{context}");
    assert!(
        elapsed < Duration::from_secs(30),
        "took {elapsed:?} to end after timeout's SIGTERM at 8 s\n{context}"
    );
    assert!(seen.contains("ROOTRUN-BOOT-OK"), "{context}");
    // Halted cleanly by its halt signal, not killed.
    assert!(seen.contains("ROOTRUN-SHUTDOWN"), "{context}");
    assert!(
        seen.contains("not in its terminal's foreground"),
        "no note on the console that is not interactive\n{context}"
    );
    let left: Vec<&i32> = rootruns.iter().filter(|&&pid| runs_rootrun(pid)).collect();
    assert!(left.is_empty(), "rootrun processes left: {left:?}");
    frame.check();
}

#[test]
fn pipe_mode_output_carries_no_terminal_queries() {
    let Some((frame, image)) = Frame::with_busybox("terminal queries", NATIVE) else {
        return;
    };
    // BusyBox's line editor asks for the cursor position (ESC[6n) before
    // each prompt, on a pipe too.
    let out = frame.run(
        rootrun().arg("-q").arg(&image),
        b"echo hi; poweroff -f\n",
        LIMIT,
    );
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "stderr: {}", text(&out.stderr));
    assert!(stdout.lines().any(|l| l == "hi"), "{stdout:?}");
    assert!(stdout.contains("/ # "), "no prompt: {stdout:?}");
    assert!(!stdout.contains("\x1b[6n"), "a query on stdout: {stdout:?}");
    frame.check();
}
