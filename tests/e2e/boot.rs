//! Foundation: booting native BusyBox images through liblxc, for real.
//! Every privileged test checks afterwards that no mount, loop device,
//! rootrun state or cgroup was left behind and that the image is unchanged.

use std::fs;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::harness::{
    host_disk, mksquashfs, rootrun, rootrun_as_nobody, run_with_input, sh_command, text,
    wait_with_limit, Frame, Live, Piped,
};

const NATIVE: &str = "amd64";
const LIMIT: Duration = Duration::from_secs(60);

#[test]
fn boot_in_pipe_mode_runs_piped_commands_and_exits_0_on_poweroff() {
    let Some((frame, image)) = Frame::with_busybox("boot pipe mode", NATIVE) else {
        return;
    };
    let out = frame.run(
        rootrun().arg(&image),
        b"echo hello-$((6*7)); poweroff -f\n",
        LIMIT,
    );
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("ROOTRUN-BOOT-OK"),
        "no boot marker in: {stdout}"
    );
    // The shell's output, not the echo of the input line.
    assert!(
        stdout.lines().any(|l| l == "hello-42"),
        "command did not run: {stdout}"
    );
    assert!(
        !stdout.contains('\r'),
        "CR LF not turned into LF on a pipe: {stdout:?}"
    );
    assert_eq!(out.status.code(), Some(0), "stderr: {}", text(&out.stderr));
    frame.check();
}

#[test]
fn command_mode_passes_stdout_stderr_and_exit_status() {
    let Some((frame, image)) = Frame::with_busybox("command mode", NATIVE) else {
        return;
    };
    let out = frame.sh(&image, "echo out; echo err >&2; exit 7", LIMIT);
    assert_eq!(text(&out.stdout), "out\n");
    assert_eq!(text(&out.stderr), "err\n");
    assert_eq!(out.status.code(), Some(7));
    frame.check();
}

#[test]
fn command_mode_reads_stdin_and_finds_commands_on_path() {
    let Some((frame, image)) = Frame::with_busybox("command stdin", NATIVE) else {
        return;
    };
    let out = frame.run(
        rootrun().arg("-q").arg(&image).args(["--", "wc", "-l"]),
        b"a\nb\nc\n",
        LIMIT,
    );
    assert_eq!(text(&out.stdout).trim(), "3");
    assert_eq!(out.status.code(), Some(0));
    frame.check();
}

#[test]
fn signal_killed_command_exits_128_plus_n() {
    let Some((frame, image)) = Frame::with_busybox("signal status", NATIVE) else {
        return;
    };
    for (signal, code) in [("TERM", 143), ("KILL", 137)] {
        let script = format!("kill -{signal} $$");
        let out = frame.sh(&image, &script, LIMIT);
        assert_eq!(
            out.status.code(),
            Some(code),
            "SIG{signal}: {}",
            text(&out.stderr)
        );
    }
    frame.check();
}

#[test]
fn guest_writes_anywhere_and_a_second_run_does_not_see_it() {
    let Some((frame, image)) = Frame::with_busybox("throwaway overlay", NATIVE) else {
        return;
    };
    let write = "echo scribble > /etc/x && mkdir -p /usr/lib/new && cat /etc/x && rm /bin/ls";
    let out = frame.sh(&image, write, LIMIT);
    assert_eq!(
        text(&out.stdout),
        "scribble\n",
        "stderr: {}",
        text(&out.stderr)
    );
    assert_eq!(out.status.code(), Some(0));
    let check = "test ! -e /etc/x && test ! -e /usr/lib/new && test -e /bin/ls";
    let out = frame.sh(&image, check, LIMIT);
    assert_eq!(
        out.status.code(),
        Some(0),
        "the first run's writes leaked into the second"
    );
    frame.check();
}

#[test]
fn missing_and_non_executable_commands_give_127_and_126() {
    let Some((frame, image)) = Frame::with_busybox("127/126", NATIVE) else {
        return;
    };
    let cases: [(&[&str], i32, &str); 4] = [
        (
            &["/bin/nonexistent"],
            127,
            "/bin/nonexistent not found in the image",
        ),
        (
            &["nonexistent-tool"],
            127,
            "nonexistent-tool not found in the image",
        ),
        (
            &["/etc/passwd"],
            126,
            "/etc/passwd in the image is not an executable file",
        ),
        (&["/etc"], 126, "is not an executable file"),
    ];
    for (argv, code, message) in cases {
        let out = frame.run(rootrun().arg(&image).arg("--").args(argv), b"", LIMIT);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(code), "{argv:?}: {stderr}");
        assert!(stderr.contains(message), "{argv:?}: {stderr}");
        assert_eq!(
            stderr.lines().count(),
            1,
            "one-line error expected: {stderr}"
        );
    }
    frame.check();
}

#[test]
fn image_without_init_gives_127() {
    let Some(frame) = Frame::new("no init") else {
        return;
    };
    let tree = frame.path("no-init-tree");
    fs::create_dir_all(tree.join("etc")).unwrap();
    fs::write(tree.join("etc/hostname"), "empty\n").unwrap();
    let image = frame.path("no-init.img");
    mksquashfs(&tree, &image);
    frame.watch(&image);
    let out = frame.run(rootrun().arg(&image), b"", LIMIT);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(127), "{stderr}");
    assert!(
        stderr.contains("/sbin/init not found in the image"),
        "{stderr}"
    );
    frame.check();
}

#[test]
fn bad_images_give_125_and_name_the_problem() {
    let Some((frame, image)) = Frame::with_busybox("bad images", NATIVE) else {
        return;
    };
    let dir = frame.scratch().to_path_buf();
    let text_file = dir.join("not-an-image.txt");
    fs::write(&text_file, "hello\n").unwrap();
    let truncated = dir.join("truncated.img");
    let full = fs::read(&image).unwrap();
    fs::write(&truncated, &full[..4096]).unwrap();
    let cases: [(PathBuf, &str); 4] = [
        (
            dir.join("does-not-exist.img"),
            "does-not-exist.img not found",
        ),
        (text_file, "not a SquashFS image"),
        (dir.clone(), "not an image file"),
        (truncated, "truncated.img"),
    ];
    for (path, message) in cases {
        let out = frame.run(rootrun().arg(&path), b"", LIMIT);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(125), "{}: {stderr}", path.display());
        assert!(stderr.contains(message), "{}: {stderr}", path.display());
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
    frame.check();
}

#[test]
fn not_root_gives_125_and_names_the_missing_capability() {
    let Some((frame, image)) = Frame::setup("not root").tools(&["setpriv"]).busybox(NATIVE) else {
        return;
    };
    let out = frame.run(rootrun_as_nobody().arg(&image), b"", LIMIT);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(125), "{stderr}");
    assert!(
        stderr.contains("not running as root") && stderr.contains("CAP_SYS_ADMIN"),
        "{stderr}"
    );
    frame.check();
}

#[test]
fn unloadable_liblxc_gives_125() {
    let Some((frame, image)) = Frame::with_busybox("no liblxc", NATIVE) else {
        return;
    };
    let out = frame.run(
        rootrun()
            .env("ROOTRUN_LIBLXC", "/nonexistent/liblxc.so.1")
            .arg(&image),
        b"",
        LIMIT,
    );
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(125), "{stderr}");
    assert!(
        stderr.contains("cannot load liblxc") && stderr.contains("apt-get install liblxc1"),
        "{stderr}"
    );
    frame.check();
}

/// A boot with stdin held open (pipe mode), output streamed.
fn spawn_boot(frame: &Frame, image: &Path) -> Live {
    frame.live(
        rootrun().arg("-q").arg("--stop-timeout=20").arg(image),
        Stdio::piped(),
    )
}

#[test]
fn sigterm_sighup_and_sigint_halt_the_booted_container_cleanly_and_exit_128_plus_n() {
    use nix::sys::signal::Signal;
    let Some((frame, image)) = Frame::with_busybox("stop signals", NATIVE) else {
        return;
    };
    for (signal, code) in [
        (Signal::SIGTERM, 143),
        (Signal::SIGHUP, 129),
        (Signal::SIGINT, 130),
    ] {
        let mut boot = spawn_boot(&frame, &image);
        boot.expect("ROOTRUN-BOOT-OK", LIMIT);
        boot.signal(signal);
        let (out, seen) = boot.finish(LIMIT);
        let status = out.status;
        assert_eq!(status.code(), Some(code), "{signal}");
        // BusyBox init ran its shutdown action: a clean halt, not a kill.
        assert!(
            seen.contains("ROOTRUN-SHUTDOWN"),
            "{signal}: no clean shutdown: {seen}"
        );
    }
    frame.check();
}

#[test]
fn container_processes_get_default_signal_dispositions() {
    let Some((frame, image)) = Frame::with_busybox("SigIgn", NATIVE) else {
        return;
    };
    // Rust ignores SIGPIPE; an ignored signal would stay ignored in the guest.
    let out = frame.sh(
        &image,
        "grep SigIgn /proc/self/status; yes | head -1",
        LIMIT,
    );
    assert_eq!(
        text(&out.stdout),
        "SigIgn:\t0000000000000000\ny\n",
        "{}",
        text(&out.stderr)
    );
    frame.check();
}

#[test]
fn sigkill_of_rootrun_leaves_nothing_behind() {
    let Some((frame, image)) = Frame::with_busybox("SIGKILL", NATIVE) else {
        return;
    };
    let mut boot = spawn_boot(&frame, &image);
    boot.expect("ROOTRUN-BOOT-OK", LIMIT);
    let pid = boot.id();
    boot.signal(nix::sys::signal::Signal::SIGKILL);
    let _ = boot.finish(LIMIT);
    // The container dies with its monitor; the namespace, mounts and loop
    // device with the container. Stale cgroups are swept by the next run.
    let out = frame.run(
        rootrun().arg("-q").arg(&image).args(["--", "true"]),
        b"",
        LIMIT,
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let leftovers: Vec<String> = frame
        .leftovers()
        .into_iter()
        .filter(|found| found.starts_with("cgroup ") && found.ends_with(&format!("rootrun-{pid}")))
        .collect();
    assert!(
        leftovers.is_empty(),
        "cgroups of the killed run remain: {leftovers:?}"
    );
    frame.check();
}

/// A pty pair: the master for the test, the slave for rootrun's terminal.
fn terminal() -> (fs::File, OwnedFd) {
    let pty = nix::pty::openpty(None, None).expect("openpty");
    (fs::File::from(pty.master), pty.slave)
}

fn assert_raw(slave: &OwnedFd, what: &str) {
    use nix::sys::termios::{tcgetattr, LocalFlags};
    let raw = tcgetattr(slave).expect("tcgetattr while running");
    assert!(!raw.local_flags.contains(LocalFlags::ICANON), "{what}");
}

fn assert_restored(slave: &OwnedFd, before: &nix::sys::termios::Termios) {
    let after = nix::sys::termios::tcgetattr(slave).expect("tcgetattr after");
    assert_eq!(
        after.local_flags, before.local_flags,
        "terminal mode not restored"
    );
    assert_eq!(
        after.input_flags, before.input_flags,
        "terminal mode not restored"
    );
}

/// Spawns `cmd` with the pty slave as stdin, stdout and stderr.
fn spawn_on(frame: &Frame, slave: &OwnedFd, cmd: &mut Command) -> std::process::Child {
    let io = || Stdio::from(slave.try_clone().expect("dup pty slave"));
    frame.spawn(cmd.stdin(io()).stdout(io()).stderr(io()))
}

#[test]
fn escape_key_on_a_terminal_stops_the_container_and_restores_the_terminal() {
    use nix::sys::termios::{tcgetattr, LocalFlags};
    let Some((frame, image)) = Frame::with_busybox("escape", NATIVE) else {
        return;
    };
    let (master, slave) = terminal();
    let before = tcgetattr(&slave).expect("tcgetattr");
    assert!(before.local_flags.contains(LocalFlags::ICANON));
    let child = spawn_on(
        &frame,
        &slave,
        rootrun().arg("--stop-timeout=20").arg(&image),
    );
    let mut console = Live::reading(child, master.try_clone().unwrap());
    console.expect("press Ctrl-a q", LIMIT);
    console.expect("/ # ", LIMIT);
    // While raw, Ctrl-C is a byte for the container, not a signal for rootrun.
    nix::unistd::write(master.as_fd(), b"\x03echo typed-$((1+1))\r").unwrap();
    console.expect("typed-2", LIMIT);
    assert_raw(&slave, "terminal not raw while attached");
    nix::unistd::write(master.as_fd(), b"\x01q").unwrap();
    // The pty stays open on our side: finish's drain ends on its 2 s quiet.
    let (out, _) = console.finish(LIMIT);
    let status = out.status;
    assert_eq!(status.code(), Some(0));
    assert_restored(&slave, &before);
    frame.check();
}

#[test]
fn sigint_reaches_the_command_and_rootrun_exits_130() {
    let Some((frame, image)) = Frame::with_busybox("SIGINT command", NATIVE) else {
        return;
    };
    let script = "trap 'echo got-INT; exit 5' INT; echo ready; while true; do sleep 1; done";
    let mut run = frame.live(&mut sh_command(&image, &[], script), Stdio::null());
    run.expect("ready", LIMIT);
    run.signal(nix::sys::signal::Signal::SIGINT);
    let (out, seen) = run.finish(LIMIT);
    assert!(
        seen.contains("got-INT"),
        "the command did not get SIGINT: {seen}"
    );
    assert_eq!(out.status.code(), Some(130));
    frame.check();
}

#[test]
fn guest_root_cannot_read_host_disks_through_device_nodes() {
    let Some((frame, image)) = Frame::with_busybox("devices policy", NATIVE) else {
        return;
    };
    let (major, minor) = host_disk().expect("this host has a block device to test with");
    // Both routes a privileged guest has: mknod in its /dev, and devtmpfs.
    let script = format!(
        "mknod /dev/hostdisk b {major} {minor} && (head -c 16 /dev/hostdisk >/dev/null 2>&1 && echo mknod-read || echo mknod-denied); \
         mkdir -p /mnt && mount -t devtmpfs none /mnt 2>/dev/null; \
         for d in /mnt/*; do [ -b \"$d\" ] && head -c 16 \"$d\" >/dev/null 2>&1 && echo devtmpfs-read; done; \
         grep '^Seccomp:' /proc/self/status; head -c 4 /dev/urandom | wc -c"
    );
    let out = frame.sh(&image, &script, LIMIT);
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("mknod-denied"),
        "{stdout} {}",
        text(&out.stderr)
    );
    assert!(
        !stdout.contains("-read"),
        "the guest read a host disk: {stdout}"
    );
    assert!(
        stdout.trim_end().ends_with('4'),
        "/dev/urandom must stay usable: {stdout}"
    );
    frame.check();
}

#[test]
fn too_old_liblxc_is_refused_with_125_before_anything_is_mounted() {
    let Some(frame) = Frame::setup("old liblxc").tools(&["cc"]).start() else {
        return;
    };
    // A stand-in library with liblxc's three entry points that reports 4.0.12.
    let dir = frame.dir("old-liblxc");
    let source = dir.join("old.c");
    fs::write(
        &source,
        "const char *lxc_get_version(void) { return \"4.0.12\"; }\n\
         void *lxc_container_new(const char *n, const char *p) { return 0; }\n\
         int lxc_container_put(void *c) { return 0; }\n",
    )
    .unwrap();
    let library = dir.join("liblxc-old.so");
    let built = Command::new("cc")
        .args(["-shared", "-fPIC", "-o"])
        .arg(&library)
        .arg(&source)
        .status()
        .expect("run cc");
    assert!(built.success(), "cc failed");
    let Some(image) = frame.busybox(NATIVE) else {
        return;
    };
    let out = frame.run(
        rootrun().env("ROOTRUN_LIBLXC", &library).arg(&image),
        b"",
        LIMIT,
    );
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(125), "{stderr}");
    assert!(
        stderr.contains("liblxc 4.0.12 is older than 5.0.2"),
        "{stderr}"
    );
    frame.check();
}

/// Boots with a guest flooding its console into `output` (stdout and
/// stderr), which the test does not read until rootrun has exited, sends
/// SIGTERM and returns rootrun's exit status and what reached `unread`.
fn stop_with_stalled_output(
    frame: &Frame,
    image: &Path,
    output: OwnedFd,
    mut unread: fs::File,
) -> Option<i32> {
    use std::io::{Read, Write};
    let mut child = frame.spawn(
        rootrun()
            .args(["-q", "--stop-timeout=3"])
            .arg(image)
            .stdin(Stdio::piped())
            .stdout(Stdio::from(output.try_clone().unwrap()))
            .stderr(Stdio::from(output)),
    );
    let mut stdin = child.stdin.take().expect("stdin pipe");
    stdin.write_all(b"yes flood-flood-flood\n").unwrap();
    std::thread::sleep(Duration::from_secs(3));
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .expect("signal rootrun");
    let deadline = std::time::Instant::now() + LIMIT;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for rootrun") {
            break status;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("rootrun ignored SIGTERM while its output was stalled");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    drop(stdin);
    let mut seen = vec![0u8; 1 << 16];
    let n = unread.read(&mut seen).unwrap_or(0);
    assert!(
        text(&seen[..n]).contains("flood-flood-flood"),
        "the guest never flooded its console"
    );
    status.code()
}

#[test]
fn sigterm_is_served_while_a_flooding_guest_fills_an_unread_pipe_or_terminal() {
    let Some((frame, image)) = Frame::with_busybox("stalled output", NATIVE) else {
        return;
    };
    // A pipe for stdout and stderr (2>&1), never read while rootrun runs.
    let (read_end, write_end) = nix::unistd::pipe().expect("pipe");
    let status = stop_with_stalled_output(&frame, &image, write_end, fs::File::from(read_end));
    assert_eq!(status, Some(143), "pipe");
    // A terminal nobody reads: a frozen terminal emulator.
    let (master, slave) = terminal();
    let status = stop_with_stalled_output(&frame, &image, slave, master);
    assert_eq!(status, Some(143), "terminal");
    frame.check();
}

#[test]
fn a_slow_reader_gets_all_console_output_in_order() {
    use std::io::{Read, Write};
    let Some((frame, image)) = Frame::with_busybox("slow reader", NATIVE) else {
        return;
    };
    let Piped {
        child,
        mut stdin,
        mut stdout,
        stderr,
    } = frame.spawn_piped(rootrun().arg("-q").arg(&image));
    // About 1.3 MB, several times what rootrun queues before the console waits.
    stdin.write_all(b"seq 1 200000; poweroff -f\n").unwrap();
    std::thread::sleep(Duration::from_secs(3));
    let mut seen = Vec::new();
    stdout.read_to_end(&mut seen).unwrap();
    let out = wait_with_limit(child, LIMIT);
    drop(stdin);
    let stderr = text(&stderr.join().unwrap_or_default());
    assert_eq!(out.status.code(), Some(0), "stderr: {stderr}");
    let numbers: Vec<u32> = text(&seen)
        .lines()
        .filter_map(|line| line.trim().parse().ok())
        .collect();
    let expected: Vec<u32> = (1..=200_000).collect();
    assert!(
        numbers == expected,
        "lost or reordered output: {} numbers",
        numbers.len()
    );
    assert!(!stderr.contains("dropped"), "{stderr}");
    frame.check();
}

#[test]
fn a_killed_command_that_made_the_terminal_raw_leaves_it_restored() {
    use nix::sys::termios::{tcgetattr, LocalFlags};
    let Some((frame, image)) = Frame::with_busybox("command terminal", NATIVE) else {
        return;
    };
    let (master, slave) = terminal();
    let before = tcgetattr(&slave).expect("tcgetattr");
    assert!(before
        .local_flags
        .contains(LocalFlags::ICANON | LocalFlags::ECHO));
    let script = "stty raw -echo; echo now-raw; sleep 100";
    let child = spawn_on(
        &frame,
        &slave,
        &mut sh_command(&image, &["--stop-timeout=1"], script),
    );
    let mut run = Live::reading(child, master);
    run.expect("now-raw", LIMIT);
    assert_raw(&slave, "the command did not make the terminal raw");
    run.signal(nix::sys::signal::Signal::SIGTERM);
    let (out, _) = run.finish(LIMIT);
    assert_eq!(out.status.code(), Some(143));
    assert_restored(&slave, &before);
    frame.check();
}

#[test]
fn a_command_that_ignores_sigterm_is_killed_after_the_stop_timeout() {
    let Some((frame, image)) = Frame::with_busybox("ignored SIGTERM", NATIVE) else {
        return;
    };
    let script = "trap '' INT TERM HUP; echo ready; while true; do sleep 1; done";
    let mut run = frame.live(
        &mut sh_command(&image, &["--stop-timeout=1"], script),
        Stdio::null(),
    );
    run.expect("ready", LIMIT);
    run.signal(nix::sys::signal::Signal::SIGTERM);
    // Without the stop timeout's SIGKILL this waits for a second signal and
    // overruns LIMIT.
    let (out, _) = run.finish(LIMIT);
    assert_eq!(out.status.code(), Some(143), "{}", text(&out.stderr));
    frame.check();
}

#[test]
fn a_command_mode_run_in_the_background_is_not_stopped_by_its_terminal() {
    let Some((frame, image)) = Frame::setup("background job")
        .tools(&["script"])
        .busybox(NATIVE)
    else {
        return;
    };
    // An interactive-like shell with job control on a terminal of its own
    // (script(1)): `&` puts rootrun in a background process group, where
    // setting the terminal's mode would stop it with SIGTTOU (status 150).
    let rootrun = format!("{} -q {}", env!("CARGO_BIN_EXE_rootrun"), image.display());
    // The shell reports each rootrun's PID ($!) for the frame's check.
    let jobs = format!(
        "set -m; {rootrun} -- true & echo rootrun-pid=$!; wait $!; echo untouched=$?; \
         {rootrun} -- busybox stty raw & echo rootrun-pid=$!; wait $!; echo made-raw=$?"
    );
    // script(1) starts rootrun as a grandchild: not the frame's child.
    let out = run_with_input(
        Command::new("script").args(["-qc", &format!("sh -c '{jobs}'"), "/dev/null"]),
        b"",
        LIMIT,
    );
    let seen = text(&out.stdout);
    for pid in seen
        .lines()
        .filter_map(|line| line.trim().strip_prefix("rootrun-pid="))
        .filter_map(|pid| pid.parse().ok())
    {
        frame.adopt(pid);
    }
    assert!(seen.contains("untouched=0"), "{seen}");
    assert!(seen.contains("made-raw=0"), "{seen}");
    frame.check();
}

#[test]
fn a_halt_signal_sent_before_init_catches_it_is_sent_again() {
    use std::os::unix::fs::PermissionsExt;
    // An init (a shell script) that handles SIGPWR, its halt signal, only
    // two seconds after it starts: the kernel drops one sent earlier.
    let Some(frame) = Frame::new("late trap") else {
        return;
    };
    let extra = frame.path("late-trap-extra");
    fs::create_dir_all(extra.join("etc")).unwrap();
    let init = extra.join("etc/late-trap-init");
    fs::write(
        &init,
        "#!/bin/sh\necho init-started\nsleep 2\ntrap 'echo got-PWR; exit 0' PWR\n\
         while true; do sleep 1; done\n",
    )
    .unwrap();
    fs::set_permissions(&init, fs::Permissions::from_mode(0o755)).unwrap();
    let Some(image) = frame.busybox_with(NATIVE, &extra) else {
        return;
    };
    let mut boot = frame.live(
        rootrun()
            .args(["-q", "--stop-timeout=40", "--init=/etc/late-trap-init"])
            .arg(&image),
        Stdio::null(),
    );
    boot.expect("init-started", LIMIT);
    boot.signal(nix::sys::signal::Signal::SIGTERM);
    let (out, seen) = boot.finish(LIMIT);
    assert!(
        seen.contains("got-PWR"),
        "init never got its halt signal: {seen}"
    );
    assert_eq!(out.status.code(), Some(143), "{}", text(&out.stderr));
    frame.check();
}
