//! A short version of tests/bench/soak.sh: many runs in a row and in
//! parallel (native and emulated, the same image twice at once), every one
//! right, nothing of them left on the host; and a detached container's
//! rootrun keeps its file descriptors and memory flat over many execs.

use std::fs;
use std::process::Stdio;
use std::thread;
use std::time::Duration;

use crate::harness::{rootrun, text, Frame, KillOnPanic};

const LIMIT: Duration = Duration::from_secs(120);

fn fds(pid: i32) -> usize {
    fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, Iterator::count)
}

fn rss_kb(pid: i32) -> u64 {
    fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches(" kB").parse().ok())
        .unwrap_or(0)
}

#[test]
fn many_runs_in_a_row_and_at_once_leave_nothing_and_a_supervisor_stays_flat() {
    let Some((frame, native)) = Frame::setup("soak").emulation().busybox("amd64") else {
        return;
    };
    let Some(foreign) = frame.busybox("arm64") else {
        return;
    };
    let run = |image: &std::path::Path, n: usize| {
        let out = frame.run(
            rootrun().arg("-q").arg(image).args([
                "--",
                "/bin/sh",
                "-c",
                &format!("echo run-{n}-$(uname -m)"),
            ]),
            b"",
            LIMIT,
        );
        assert_eq!(out.status.code(), Some(0), "run {n}: {}", text(&out.stderr));
        text(&out.stdout)
    };
    for n in 0..20 {
        let (image, arch) = if n % 2 == 0 {
            (&native, "x86_64")
        } else {
            (&foreign, "aarch64")
        };
        assert_eq!(run(image, n), format!("run-{n}-{arch}\n"));
    }
    for round in 0..3 {
        thread::scope(|scope| {
            let runs: Vec<_> = [&native, &native, &foreign, &foreign]
                .into_iter()
                .enumerate()
                .map(|(i, image)| scope.spawn(move || (i, run(image, 100 * round + i))))
                .collect();
            for handle in runs {
                let (i, out) = handle.join().unwrap();
                let arch = if i < 2 { "x86_64" } else { "aarch64" };
                assert_eq!(out, format!("run-{}-{arch}\n", 100 * round + i));
            }
        });
    }

    // One detached container, many execs into it: its rootrun stays flat.
    let name = format!("t{}-soak", std::process::id());
    let _kill = KillOnPanic(name.clone());
    let out = frame.run(
        rootrun().args(["-q", "-d", "--name", &name]).arg(&native),
        b"",
        LIMIT,
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let ls = rootrun().args(["ls", "--json"]).output().unwrap();
    let all: Vec<serde_json::Value> = serde_json::from_slice(&ls.stdout).unwrap();
    let supervisor = all
        .iter()
        .find(|c| c["name"] == name.as_str())
        .and_then(|c| c["supervisor_pid"].as_i64())
        .expect("listed") as i32;
    frame.adopt(supervisor as u32);
    let exec = || {
        let out = rootrun()
            .args(["exec", &name, "--", "/bin/true"])
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    };
    for _ in 0..5 {
        exec();
    }
    let (fds_before, rss_before) = (fds(supervisor), rss_kb(supervisor));
    for _ in 0..40 {
        exec();
    }
    let (fds_after, rss_after) = (fds(supervisor), rss_kb(supervisor));
    let stop = rootrun().args(["stop", "--kill", &name]).output().unwrap();
    assert_eq!(stop.status.code(), Some(0), "{}", text(&stop.stderr));
    eprintln!(
        "soak: supervisor fds {fds_before} -> {fds_after}, RSS {rss_before} -> {rss_after} kB \
         over 40 execs"
    );
    assert_eq!(fds_after, fds_before, "the supervisor's descriptors grew");
    assert!(
        rss_after <= rss_before + 512,
        "the supervisor's memory grew: {rss_before} -> {rss_after} kB"
    );
    frame.check();
}
