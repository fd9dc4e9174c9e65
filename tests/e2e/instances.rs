//! Named containers: `-d`, `ls`, `exec`, `logs`, `console`, `stop`, for
//! real. Every test names its containers after its own PID, so a user's
//! containers on the same machine are never touched, and checks that their
//! directories under /run/rootrun are gone at the end (besides the frame's
//! own checks of mounts, loop devices and cgroups, which include the
//! detached supervisor's container once adopted).

use std::fs;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::harness::{rootrun, rootrun_as_nobody, text, Frame, KillOnPanic, Live};

const NATIVE: &str = "amd64";
const LIMIT: Duration = Duration::from_secs(60);

/// A name no other test or user has.
fn unique(what: &str) -> String {
    format!("t{}-{what}", std::process::id())
}

/// `rootrun -d --name NAME ARGS... IMAGE`: returns the supervisor's PID
/// (adopted by the frame, so its container's leftovers are checked) and a
/// guard that kills the container if the test fails.
fn start_detached(frame: &Frame, name: &str, args: &[&str], image: &Path) -> (i32, KillOnPanic) {
    let out = frame.run(
        rootrun().args(["-d", "--name", name]).args(args).arg(image),
        b"",
        LIMIT,
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout).trim(), name, "-d prints the name");
    let entry = listed(name).unwrap_or_else(|| panic!("{name} not in rootrun ls"));
    assert_eq!(entry["state"], "running", "{entry}");
    assert!(entry["init_pid"].as_i64().is_some(), "{entry}");
    let supervisor = entry["supervisor_pid"].as_i64().expect("supervisor PID") as i32;
    frame.adopt(supervisor as u32);
    (supervisor, KillOnPanic(name.to_owned()))
}

/// `rootrun ls --json`'s entry for `name`.
fn listed(name: &str) -> Option<Value> {
    let out = rootrun()
        .args(["ls", "--json"])
        .output()
        .expect("rootrun ls");
    assert!(out.status.success(), "{}", text(&out.stderr));
    let all: Vec<Value> = serde_json::from_slice(&out.stdout).expect("ls --json is JSON");
    all.into_iter().find(|entry| entry["name"] == name)
}

fn stop(name: &str, args: &[&str]) -> std::process::Output {
    rootrun()
        .arg("stop")
        .args(args)
        .arg(name)
        .output()
        .expect("rootrun stop")
}

fn exec(name: &str, args: &[&str]) -> std::process::Output {
    rootrun()
        .arg("exec")
        .arg(name)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("rootrun exec")
}

fn assert_gone(name: &str) {
    assert!(listed(name).is_none(), "{name} still listed");
    assert!(
        !Path::new("/run/rootrun").join(name).exists(),
        "/run/rootrun/{name} left behind"
    );
}

/// Whether `pid` runs (a zombie does not: an orphaned supervisor waits
/// for whoever adopted it to reap it).
fn pid_alive(pid: i32) -> bool {
    fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| {
            let state = stat.rsplit_once(')')?.1.trim_start().chars().next()?;
            Some(state != 'Z' && state != 'X')
        })
        .unwrap_or(false)
}

#[test]
fn a_detached_container_runs_commands_keeps_its_log_and_stops_clean() {
    let Some((frame, image)) = Frame::with_busybox("detached", NATIVE) else {
        return;
    };
    let name = unique("detached");
    let (supervisor, _running) = start_detached(&frame, &name, &["--stop-timeout=30"], &image);
    let init = listed(&name).unwrap()["init_pid"].as_i64().unwrap() as i32;
    assert!(pid_alive(init));
    // It keeps no directory of the caller's busy.
    assert_eq!(
        fs::read_link(format!("/proc/{supervisor}/cwd")).unwrap(),
        Path::new("/")
    );

    // Exit statuses pass through, as in command mode.
    let out = exec(
        &name,
        &["--", "/bin/sh", "-c", "echo in-$(hostname); exit 3"],
    );
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).starts_with("in-busybox-amd64"),
        "{}",
        text(&out.stdout)
    );
    let out = exec(&name, &["--", "/no/such/program"]);
    assert_eq!(out.status.code(), Some(127));
    // -e, -w, -u; no terminal on stdin: no terminal for the command.
    let out = exec(
        &name,
        &[
            "-e",
            "GREETING=hi",
            "-w",
            "/etc",
            "-u",
            "1000:1001",
            "--",
            "/bin/sh",
            "-c",
            "echo $GREETING $(pwd) $(id -u):$(id -g); tty",
        ],
    );
    assert_eq!(
        text(&out.stdout),
        "hi /etc 1000:1001\nnot a tty\n",
        "{}",
        text(&out.stderr)
    );
    assert_eq!(out.status.code(), Some(1), "tty without a terminal exits 1");
    // The command ran in the container's PID namespace, not the host's.
    let out = exec(&name, &["--", "/bin/readlink", "/proc/1/exe"]);
    assert_eq!(text(&out.stdout), "/bin/busybox\n", "{}", text(&out.stderr));

    // The console went to the log.
    let out = rootrun().args(["logs", &name]).output().unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("ROOTRUN-BOOT-OK"),
        "log: {}",
        text(&out.stdout)
    );

    let started = Instant::now();
    let out = stop(&name, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "the stop waited for the timeout: init did not halt"
    );
    assert!(
        text(&out.stderr).contains("exited 0"),
        "{}",
        text(&out.stderr)
    );
    assert!(!pid_alive(supervisor) && !pid_alive(init));
    assert_gone(&name);
    // Stopped, the name is free: the commands say so.
    let out = exec(&name, &["--", "true"]);
    assert_eq!(out.status.code(), Some(125));
    assert!(
        text(&out.stderr).contains("no container named"),
        "{}",
        text(&out.stderr)
    );
    frame.check();
}

#[test]
fn two_containers_cannot_take_one_name_and_default_names_count_up() {
    let Some((frame, image)) = Frame::with_busybox("names", NATIVE) else {
        return;
    };
    let name = unique("taken");
    let _running = start_detached(&frame, &name, &[], &image);
    let out = frame.run(
        rootrun().args(["-d", "--name", &name]).arg(&image),
        b"",
        LIMIT,
    );
    assert_eq!(out.status.code(), Some(125));
    assert!(
        text(&out.stderr).contains(&format!("a container named {name} is running already")),
        "{}",
        text(&out.stderr)
    );
    // Without --name: the image's name, then -2.
    let mut guards = Vec::new();
    let stem = unique("img");
    let copy = frame.path(&format!("{stem}.img"));
    fs::hard_link(&image, &copy).unwrap();
    for expected in [stem.clone(), format!("{stem}-2")] {
        let out = frame.run(rootrun().arg("-d").arg(&copy), b"", LIMIT);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        assert_eq!(text(&out.stdout).trim(), expected);
        let supervisor = listed(&expected).unwrap()["supervisor_pid"]
            .as_i64()
            .unwrap();
        frame.adopt(supervisor as u32);
        guards.push(KillOnPanic(expected));
    }
    let out = frame.run(
        rootrun().args(["-d", "--name", "../etc"]).arg(&image),
        b"",
        LIMIT,
    );
    assert_eq!(out.status.code(), Some(125), "a path is no name");
    // The containers are root's: another user is told so, not shown none.
    for args in [&["ls"][..], &["stop", &name], &["logs", &name]] {
        let out = rootrun_as_nobody().args(args).output().unwrap();
        assert_eq!(out.status.code(), Some(125), "{args:?}");
        assert!(
            text(&out.stderr).contains("run rootrun with sudo"),
            "{args:?}: {}",
            text(&out.stderr)
        );
    }
    for name in [name, stem.clone(), format!("{stem}-2")] {
        let out = stop(&name, &["--kill"]);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        assert!(
            text(&out.stderr).contains("exited 137"),
            "{}",
            text(&out.stderr)
        );
        assert_gone(&name);
    }
    frame.check();
}

/// A pty pair: the master for the test, the slave as the client's terminal.
fn terminal() -> (fs::File, OwnedFd) {
    let pty = nix::pty::openpty(None, None).expect("openpty");
    (fs::File::from(pty.master), pty.slave)
}

fn on_terminal(slave: &OwnedFd, cmd: &mut Command) -> std::process::Child {
    let io = || Stdio::from(slave.try_clone().expect("dup pty slave"));
    cmd.stdin(io())
        .stdout(io())
        .stderr(io())
        .spawn()
        .expect("spawn on the terminal")
}

#[test]
fn console_attaches_and_detaches_and_exec_gets_a_terminal_on_one() {
    let Some((frame, image)) = Frame::with_busybox("console", NATIVE) else {
        return;
    };
    let name = unique("console");
    let _running = start_detached(&frame, &name, &[], &image);

    let (master, slave) = terminal();
    let client = on_terminal(&slave, rootrun().args(["console", &name]));
    let mut console = Live::reading(client, master.try_clone().unwrap());
    console.expect("Ctrl-a q detaches", LIMIT);
    nix::unistd::write(master.as_fd(), b"\recho typed-$((40+2))\r").unwrap();
    console.expect("typed-42", LIMIT);
    nix::unistd::write(master.as_fd(), b"\x01q").unwrap();
    console.expect("detached from", LIMIT);
    let (out, _) = console.finish(LIMIT);
    assert_eq!(out.status.code(), Some(0));
    // Detaching left it running; what was typed is in its log.
    assert_eq!(listed(&name).unwrap()["state"], "running");
    let log = rootrun().args(["logs", &name]).output().unwrap();
    assert!(text(&log.stdout).contains("typed-42"));

    // exec on a (controlling) terminal: the command has one of its own.
    let (master, slave) = terminal();
    let client = on_terminal(
        &slave,
        Command::new("setsid")
            .args(["--ctty", "--wait"])
            .arg(env!("CARGO_BIN_EXE_rootrun"))
            .args(["exec", &name, "--", "/bin/sh", "-c", "tty; exit 4"]),
    );
    let mut run = Live::reading(client, master.try_clone().unwrap());
    run.expect("/dev/pts/", LIMIT);
    let (out, _) = run.finish(LIMIT);
    assert_eq!(out.status.code(), Some(4));

    let out = stop(&name, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_gone(&name);
    frame.check();
}

#[test]
fn a_foreground_container_is_listed_and_stopped_by_name() {
    let Some((frame, image)) = Frame::with_busybox("foreground by name", NATIVE) else {
        return;
    };
    let name = unique("fg");
    let mut boot = frame.live(
        rootrun().args(["-q", "--name", &name]).arg(&image),
        Stdio::piped(),
    );
    boot.expect("ROOTRUN-BOOT-OK", LIMIT);
    let entry = listed(&name).expect("a foreground run is listed");
    assert_eq!(entry["detached"], false);
    let out = exec(&name, &["--", "/bin/echo", "beside"]);
    assert_eq!(text(&out.stdout), "beside\n", "{}", text(&out.stderr));
    // Its console is the foreground rootrun's.
    let out = rootrun().args(["console", &name]).output().unwrap();
    assert_eq!(out.status.code(), Some(125));
    assert!(text(&out.stderr).contains("terminal of the rootrun that started it"));
    let out = stop(&name, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let (out, _) = boot.finish(LIMIT);
    assert_eq!(
        out.status.code(),
        Some(0),
        "a requested stop is a clean end"
    );
    assert_gone(&name);
    frame.check();
}

#[test]
fn a_killed_supervisor_takes_its_container_along_and_the_next_run_sweeps() {
    let Some((frame, image)) = Frame::with_busybox("supervisor killed", NATIVE) else {
        return;
    };
    let name = unique("killed");
    let (supervisor, _running) = start_detached(&frame, &name, &[], &image);
    let init = listed(&name).unwrap()["init_pid"].as_i64().unwrap() as i32;
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(supervisor),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    let deadline = Instant::now() + LIMIT;
    while pid_alive(init) || pid_alive(supervisor) {
        assert!(
            Instant::now() < deadline,
            "the container outlived its rootrun"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // Its directory stays, unlocked, until a rootrun meets it (another
    // test's start may be first): the next start sweeps it, and its cgroups.
    let out = frame.run(
        rootrun().arg("-q").arg(&image).args(["--", "true"]),
        b"",
        LIMIT,
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        !Path::new("/run/rootrun").join(&name).exists(),
        "the next start did not sweep /run/rootrun/{name}"
    );
    assert_gone(&name);
    frame.check();
}

/// The rootrun binary the tests run.
fn rootrun_binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_rootrun"))
}

#[test]
fn exec_runs_from_a_copy_that_the_guest_cannot_write() {
    use std::os::fd::AsRawFd;
    let Some((frame, image)) = Frame::with_busybox("exec protected", NATIVE) else {
        return;
    };
    let name = unique("protected");
    let _running = start_detached(&frame, &name, &[], &image);
    // A copy of rootrun runs the exec, on the test's (writable) disk.
    let launcher = frame.path("rootrun-copy");
    fs::copy(rootrun_binary(), &launcher).unwrap();
    let before = fs::read(&launcher).unwrap();
    let mut attach = Command::new(&launcher)
        .args(["exec", &name, "--", "/bin/sleep", "30"])
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    let pid = attach.id();
    // Once it has re-executed itself (before it attaches), hold its program
    // file open, as guest root could through /proc/PID/exe
    // (CVE-2019-5736), ...
    let deadline = Instant::now() + LIMIT;
    while !fs::read(format!("/proc/{pid}/environ"))
        .unwrap_or_default()
        .split(|&b| b == 0)
        .any(|var| var == b"ROOTRUN_REEXECUTED=1")
    {
        assert!(Instant::now() < deadline, "exec never re-executed itself");
        std::thread::sleep(Duration::from_millis(5));
    }
    let held = fs::File::open(format!("/proc/{pid}/exe")).expect("open /proc/PID/exe");
    // ... and write through it once the process is gone (no ETXTBSY then).
    let _ = attach.kill();
    let _ = attach.wait();
    let write = fs::OpenOptions::new()
        .write(true)
        .open(format!("/proc/self/fd/{}", held.as_raw_fd()))
        .and_then(|mut f| std::io::Write::write_all(&mut f, b"pwned"));
    assert!(write.is_err(), "the launcher's program file took a write");
    assert_eq!(fs::read(&launcher).unwrap(), before, "the launcher changed");
    // The control: the same open file of a plain copy takes the write.
    let plain = fs::OpenOptions::new()
        .write(true)
        .open(&launcher)
        .and_then(|mut f| std::io::Write::write_all(&mut f, b"x"));
    assert!(plain.is_ok(), "the control write failed: {plain:?}");
    let out = stop(&name, &["--kill"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_gone(&name);
    frame.check();
}

#[test]
fn emulated_systemd_started_detached_powers_off_on_rootrun_stop() {
    let Some(frame) = Frame::setup("systemd detached").emulation().start() else {
        return;
    };
    let Some(tree) = frame.systemd_rootfs("arm64") else {
        return;
    };
    let name = unique("systemd");
    let tree_arg = tree.to_string_lossy().into_owned();
    let (_, _running) = start_detached(
        &frame,
        &name,
        &["--stop-timeout=90", "--rootfs"],
        Path::new(&tree_arg),
    );
    // Follow the console from the start to the end.
    let follow = Command::new(rootrun_binary())
        .args(["logs", "-f", &name])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut logs = Live::new(follow);
    if !logs.wait_for("Reached target multi-user.target", Duration::from_secs(240)) {
        let _ = stop(&name, &["--kill"]);
        let (_, seen) = logs.finish(LIMIT);
        panic!("systemd did not reach multi-user.target; console:\n{seen}");
    }
    let started = Instant::now();
    let out = stop(&name, &[]);
    let took = started.elapsed();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("exited 0"),
        "{}",
        text(&out.stderr)
    );
    assert!(
        took < Duration::from_secs(45),
        "the stop took {took:?}: systemd did not halt by itself"
    );
    let (_, seen) = logs.finish(LIMIT);
    assert!(
        seen.contains("Reached target poweroff.target"),
        "systemd did not power off: {seen}"
    );
    eprintln!(
        "rootrun stop of emulated systemd: {:.2} s",
        took.as_secs_f64()
    );
    assert_gone(&name);
    frame.check();
}

#[test]
fn command_mode_runs_as_the_user_given() {
    let Some((frame, image)) = Frame::with_busybox("command -u", NATIVE) else {
        return;
    };
    let run = |user: &str| {
        frame.run(
            rootrun().args(["-q", "-u", user]).arg(&image).args([
                "--",
                "/bin/sh",
                "-c",
                "echo $(id -u):$(id -g)",
            ]),
            b"",
            LIMIT,
        )
    };
    let out = run("1000:1001");
    assert_eq!(text(&out.stdout), "1000:1001\n", "{}", text(&out.stderr));
    // A name, from the image's /etc/passwd.
    let out = run("root");
    assert_eq!(text(&out.stdout), "0:0\n", "{}", text(&out.stderr));
    let out = run("nobody");
    assert_eq!(out.status.code(), Some(125));
    assert!(
        text(&out.stderr).contains("-u nobody: no such user in the image's /etc/passwd"),
        "{}",
        text(&out.stderr)
    );
    frame.check();
}

#[test]
fn a_command_stopped_by_name_ends_with_its_own_status() {
    let Some((frame, image)) = Frame::with_busybox("command stopped by name", NATIVE) else {
        return;
    };
    let name = unique("cmd");
    let mut run = frame.live(
        rootrun().args(["-q", "--name", &name]).arg(&image).args([
            "--",
            "/bin/sh",
            "-c",
            "echo started; exec sleep 100",
        ]),
        Stdio::null(),
    );
    run.expect("started", LIMIT);
    assert_eq!(listed(&name).expect("listed")["mode"], "command");
    let out = stop(&name, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let (out, _) = run.finish(LIMIT);
    // The SIGTERM ended the command: 128+15, as `docker stop` reports it.
    assert_eq!(out.status.code(), Some(143), "{}", text(&out.stderr));
    assert_gone(&name);
    frame.check();
}

#[test]
fn an_unprivileged_detached_foreign_container_takes_exec_and_stop() {
    let Some((frame, image)) = Frame::setup("detached --unprivileged")
        .emulation()
        .busybox("arm64")
    else {
        return;
    };
    let name = unique("unprivileged");
    let (supervisor, _running) = start_detached(
        &frame,
        &name,
        &["--unprivileged", "--stop-timeout=60"],
        &image,
    );
    let entry = listed(&name).unwrap();
    let host_root = entry["host_root_uid"].as_u64().expect("host_root_uid");
    assert_ne!(host_root, 0, "{entry}");
    // Guest root and -u are the container's ids; the map says which host
    // ids they are.
    let out = exec(
        &name,
        &[
            "--",
            "/bin/sh",
            "-c",
            "uname -m; id -u; cat /proc/self/uid_map",
        ],
    );
    let stdout = text(&out.stdout);
    let lines: Vec<Vec<&str>> = stdout
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(out.status.code(), Some(0), "{stdout} {}", text(&out.stderr));
    assert_eq!(lines[0], ["aarch64"]);
    assert_eq!(lines[1], ["0"]);
    assert_eq!(lines[2], ["0", &host_root.to_string(), "65536"]);
    let out = exec(
        &name,
        &["-u", "1000:1001", "--", "/bin/sh", "-c", "id -u; id -g"],
    );
    assert_eq!(text(&out.stdout), "1000\n1001\n", "{}", text(&out.stderr));
    // Its init runs as the host uid of guest root.
    let init = entry["init_pid"].as_i64().unwrap();
    let status = fs::read_to_string(format!("/proc/{init}/status")).unwrap();
    let uid_line = status.lines().find(|l| l.starts_with("Uid:")).unwrap();
    assert!(
        uid_line.split_whitespace().nth(1) == Some(&host_root.to_string()),
        "{uid_line}"
    );
    let out = stop(&name, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(!pid_alive(supervisor));
    assert_gone(&name);
    frame.check();
}
