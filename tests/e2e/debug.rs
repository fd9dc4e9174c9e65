//! Debugging a run (issue 11): kept logs at liblxc's chosen level, QEMU's
//! options for one container, QEMU's syscall trace of init, QEMU's gdbstub
//! for the first process. Real containers under real emulation: the arm64
//! BusyBox image under the system's qemu-user handler.

use std::fs;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::harness::{rootrun, sh_command, text, Frame, KillOnPanic};

const LIMIT: Duration = Duration::from_secs(120);

#[test]
fn kept_logs_hold_liblxcs_log_at_the_chosen_level_and_the_console() {
    let Some((frame, image)) = Frame::setup("kept logs").busybox("amd64") else {
        return;
    };
    let logs = frame.path("logs");
    let out = frame.run(
        rootrun()
            .arg("--keep-logs")
            .arg(&logs)
            .args(["--log-level", "debug"])
            .arg(&image),
        b"echo typed-into-the-console; poweroff -f\n",
        LIMIT,
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let lxc_log = fs::read_to_string(logs.join("lxc.log")).expect("lxc.log kept");
    assert!(
        lxc_log.lines().any(|l| l.contains(" DEBUG ")),
        "no DEBUG line in the kept liblxc log:\n{lxc_log}"
    );
    let console = fs::read_to_string(logs.join("console.log")).expect("console.log kept");
    assert!(console.contains("ROOTRUN-BOOT-OK"), "{console}");
    assert!(console.contains("typed-into-the-console"), "{console}");

    // At the default level only errors go to the log: a clean run leaves
    // it empty.
    let quiet_logs = frame.path("quiet-logs");
    let out = frame.run(
        rootrun().arg("--keep-logs").arg(&quiet_logs).arg(&image),
        b"poweroff -f\n",
        LIMIT,
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let lxc_log = fs::read_to_string(quiet_logs.join("lxc.log")).expect("lxc.log kept");
    assert!(!lxc_log.contains(" DEBUG "), "{lxc_log}");
    frame.check();
}

#[test]
fn a_failed_start_names_its_cause_and_the_kept_logs() {
    let Some((frame, image)) = Frame::setup("failed start logs").busybox("amd64") else {
        return;
    };
    let logs = frame.path("logs");
    let missing = frame.path("no-such-source");
    let out = frame.run(
        rootrun()
            .arg("--keep-logs")
            .arg(&logs)
            .arg("--lxc")
            .arg(format!(
                "lxc.mount.entry={} mnt none bind 0 0",
                missing.display()
            ))
            .arg(&image)
            .args(["--", "/bin/true"]),
        b"",
        LIMIT,
    );
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(125), "{stderr}");
    // The cause (the mount and its errno) first, not only liblxc's
    // "Failed to spawn container".
    assert!(
        stderr.contains(&format!(
            "No such file or directory - Failed to mount \"{}\"",
            missing.display()
        )),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!("logs kept in {}", logs.display())),
        "{stderr}"
    );
    let lxc_log = fs::read_to_string(logs.join("lxc.log")).expect("lxc.log kept");
    assert!(lxc_log.contains(" ERROR "), "{lxc_log}");
    frame.check();
}

/// AT_HWCAP (16) and AT_HWCAP2 (26) from the auxiliary vector QEMU builds
/// for the guest from its CPU model, of the shell and of a grandchild.
const HWCAPS: &str = "od -A n -t u8 -w16 /proc/self/auxv | awk '$1 == 16 || $1 == 26 { print \"self\", $1, $2 }'; \
     sh -c \"od -A n -t u8 -w16 /proc/self/auxv\" | awk '$1 == 16 || $1 == 26 { print \"grandchild\", $1, $2 }'";

fn hwcaps(out: &std::process::Output) -> Vec<String> {
    text(&out.stdout).lines().map(str::to_owned).collect()
}

#[test]
fn qemu_cpu_and_qemu_env_reach_every_emulated_process_and_are_refused_natively() {
    let Some((frame, image)) = Frame::setup("qemu cpu").emulation().busybox("arm64") else {
        return;
    };
    // QEMU 7.2's default for aarch64 is its "max" CPU, with HWCAP2 bits;
    // a Cortex-A53 (ARMv8.0) has none, and HWCAP fp, asimd, evtstrm, aes,
    // pmull, sha1, sha2, crc32, cpuid (0x8fb = 2299).
    let default = frame.run(&mut sh_command(&image, &[], HWCAPS), b"", LIMIT);
    assert_eq!(default.status.code(), Some(0), "{}", text(&default.stderr));
    let default = hwcaps(&default);
    assert!(
        default
            .iter()
            .any(|l| l.starts_with("self 26 ") && l != "self 26 0"),
        "{default:?}"
    );

    let a53 = frame.run(
        &mut sh_command(&image, &["--qemu-cpu", "cortex-a53"], HWCAPS),
        b"",
        LIMIT,
    );
    assert_eq!(a53.status.code(), Some(0), "{}", text(&a53.stderr));
    assert_eq!(
        hwcaps(&a53),
        [
            "self 16 2299",
            "self 26 0",
            "grandchild 16 2299",
            "grandchild 26 0"
        ]
    );

    let env = frame.run(
        &mut sh_command(
            &image,
            &["--qemu-env", "QEMU_UNAME=9.9.9-rootrun"],
            "uname -r; sh -c 'uname -r'",
        ),
        b"",
        LIMIT,
    );
    assert_eq!(text(&env.stdout), "9.9.9-rootrun\n9.9.9-rootrun\n");

    let native = frame.busybox("amd64").expect("amd64 image");
    for option in [
        ["--qemu-cpu", "max"],
        ["--qemu-env", "QEMU_UNAME=1"],
        ["--gdb", "1234"],
    ] {
        let out = frame.run(&mut sh_command(&native, &option, "true"), b"", LIMIT);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(125), "{option:?}: {stderr}");
        assert!(stderr.contains("runs natively"), "{option:?}: {stderr}");
    }
    let out = frame.run(
        &mut sh_command(&native, &["--gdb", "1234"], "true"),
        b"",
        LIMIT,
    );
    assert!(
        text(&out.stderr).contains("gdb -p PID"),
        "{}",
        text(&out.stderr)
    );
    frame.check();
}

#[test]
fn strace_traces_init_alone_into_the_log_directory_never_the_console() {
    let Some((frame, image)) = Frame::setup("strace init").emulation().busybox("arm64") else {
        return;
    };
    let logs = frame.path("logs");
    let out = frame.run(
        rootrun()
            .arg("--strace")
            .arg("--keep-logs")
            .arg(&logs)
            .arg(&image),
        b"env; echo env-done; poweroff -f\n",
        LIMIT,
    );
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stdout.contains("env-done"), "{stdout}");
    // Nothing of the trace on the console, and the shell init started is
    // neither traced nor told to be.
    assert!(!stdout.contains("execve("), "{stdout}");
    assert!(!stdout.contains("QEMU_"), "{stdout}");

    let emulator = logs.join("emulator");
    let mut files: Vec<String> = fs::read_dir(&emulator)
        .expect("the emulator's log directory")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    files.sort();
    assert_eq!(files, ["strace.1"], "only init (PID 1) is traced");
    let trace = fs::read_to_string(emulator.join("strace.1")).expect("init's trace");
    // Init's own calls, and the inittab's first command (::sysinit:
    // /bin/echo ROOTRUN-BOOT-OK) as init's forked child execs it.
    assert!(trace.lines().any(|l| l.starts_with("1 ")), "{trace}");
    assert!(trace.contains("execve(\"/bin/echo\""), "{trace}");
    assert!(
        stderr.contains(&format!(
            "syscall trace of init (/sbin/init) (PID 1 in the container): {}",
            emulator.join("strace.1").display()
        )),
        "{stderr}"
    );

    let refused = frame.run(rootrun().arg("--strace").arg(&image), b"", LIMIT);
    assert_eq!(refused.status.code(), Some(125));
    assert!(
        text(&refused.stderr).contains("--keep-logs"),
        "{}",
        text(&refused.stderr)
    );
    frame.check();
}

/// A gdb remote serial protocol packet (`$data#checksum`).
fn packet(data: &str) -> Vec<u8> {
    let sum = data.bytes().fold(0u8, |acc, b| acc.wrapping_add(b));
    format!("${data}#{sum:02x}").into_bytes()
}

/// Reads one reply packet's data, skipping acknowledgements.
fn reply(stream: &mut (impl Read + Write)) -> String {
    let mut got = Vec::new();
    let mut byte = [0u8; 1];
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        match stream.read(&mut byte) {
            Ok(1) => got.push(byte[0]),
            Ok(_) => break,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
            Err(e) => panic!("read from the gdbstub: {e}"),
        }
        if let Some(hash) = got.iter().position(|b| *b == b'#') {
            if got.len() == hash + 3 {
                let start = got.iter().position(|b| *b == b'$').expect("a packet");
                stream.write_all(b"+").expect("ack");
                return text(&got[start + 1..hash]);
            }
        }
    }
    panic!("no reply from the gdbstub: {:?}", text(&got));
}

fn free_port() -> u16 {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("a free port");
    listener.local_addr().expect("address").port()
}

/// `e_entry` of a 64-bit little-endian ELF file.
fn entry_point(path: &Path) -> u64 {
    let bytes = fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    u64::from_le_bytes(bytes[24..32].try_into().expect("8 bytes"))
}

#[test]
fn gdb_halts_the_first_process_at_its_entry_point_and_its_children_run_free() {
    let Some((frame, image)) = Frame::setup("gdb stub").emulation().busybox("arm64") else {
        return;
    };
    let port = free_port();
    let mut cmd = sh_command(
        &image,
        &["--gdb", &port.to_string()],
        // Not ending with the child: a shell execs its last command, and
        // the stub would go with the exec.
        "echo first-ran; sh -c 'echo child-ran'; echo first-done",
    );
    // -q keeps the banner quiet, not the gdb notes.
    let child = frame.spawn(
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped()),
    );
    let mut rootrun = crate::harness::Live::new(child);

    // Nothing runs until a debugger says so.
    assert!(!rootrun.wait_for("first-ran", Duration::from_secs(2)));
    let mut stream = connect(port);
    stream.write_all(&packet("?")).expect("send ?");
    let stop = reply(&mut stream);
    assert!(stop.starts_with("T05") || stop.starts_with("S05"), "{stop}");

    // The program counter is the program's entry point. `g` reads every
    // register: aarch64's x0-x30 and sp, 8 bytes each, then pc.
    stream.write_all(&packet("g")).expect("send g");
    let registers = reply(&mut stream);
    let pc_hex = registers
        .get(32 * 16..33 * 16)
        .unwrap_or_else(|| panic!("{registers}"));
    let pc = u64::from_le_bytes(
        (0..8)
            .map(|i| u8::from_str_radix(&pc_hex[2 * i..2 * i + 2], 16).expect("hex"))
            .collect::<Vec<u8>>()
            .try_into()
            .expect("8 bytes"),
    );

    // Continued, it stops again for each signal it gets (SIGCHLD when the
    // child ends, T14): passed on, as gdb does, until it exits.
    stream.write_all(&packet("c")).expect("send c");
    let mut end = reply(&mut stream);
    for _ in 0..20 {
        let Some(signal) = end.strip_prefix('T').and_then(|t| t.get(..2)) else {
            break;
        };
        stream
            .write_all(&packet(&format!("C{signal}")))
            .expect("send C");
        end = reply(&mut stream);
    }
    assert_eq!(end, "W00", "the program exits 0 once continued");
    let (out, stdout) = rootrun.finish(LIMIT);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    // The child ran without waiting for a debugger of its own.
    assert_eq!(stdout, "first-ran\nchild-ran\nfirst-done\n");

    let command = stderr
        .lines()
        .find(|l| l.contains("gdb-multiarch"))
        .unwrap_or_else(|| panic!("no gdb command line: {stderr}"));
    assert!(
        command.contains(&format!("-ex 'target remote 127.0.0.1:{port}'")),
        "{command}"
    );
    assert!(
        command.contains("-ex 'set architecture aarch64'"),
        "{command}"
    );
    assert!(command.contains("-ex 'set sysroot /proc/"), "{command}");
    assert!(stderr.contains("/bin/sh starts halted"), "{stderr}");
    // The program file as the host saw it while rootrun ran: the same
    // BusyBox as in the image's cache entry, so its entry point is the
    // halted PC.
    let file = command
        .rsplit('\'')
        .nth(1)
        .expect("the program file, quoted last");
    assert!(file.ends_with("/bin/busybox"), "{command}");
    let busybox = image_busybox();
    assert_eq!(pc, entry_point(&busybox), "{command}");
    frame.check();
}

/// The arm64 BusyBox the fixture image was built from.
fn image_busybox() -> std::path::PathBuf {
    let cache = crate::harness::cache_dir().expect("fixture cache");
    fs::read_dir(cache.join("busybox-static"))
        .expect("busybox-static cache")
        .flatten()
        .map(|version| version.path().join("arm64/bin/busybox"))
        .find(|path| path.exists())
        .expect("the arm64 busybox in the fixture cache")
}

fn connect(port: u16) -> TcpStream {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match TcpStream::connect((Ipv4Addr::LOCALHOST, port)) {
            Ok(stream) => {
                stream
                    .set_read_timeout(Some(Duration::from_secs(30)))
                    .expect("timeout");
                return stream;
            }
            Err(e) if Instant::now() > deadline => panic!("connect to 127.0.0.1:{port}: {e}"),
            Err(_) => std::thread::sleep(Duration::from_millis(100)),
        }
    }
}

/// The printed line, in the stderr file of a rootrun still running.
fn printed_gdb_command(stderr: &Path) -> String {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let text = fs::read_to_string(stderr).unwrap_or_default();
        if let Some(line) = text.lines().find(|l| l.contains("gdb-multiarch")) {
            return line.trim_start_matches("rootrun: ").to_owned();
        }
        assert!(Instant::now() < deadline, "no gdb command line: {text}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn gdb_multiarch_attaches_to_a_halted_init_with_the_printed_command_line() {
    let Some((frame, image)) = Frame::setup("gdb boot")
        .emulation()
        .tools(&["gdb-multiarch"])
        .busybox("arm64")
    else {
        return;
    };
    let port = free_port();
    let stderr_path = frame.path("rootrun.stderr");
    let stderr = fs::File::create(&stderr_path).expect("stderr file");
    let child = frame.spawn(
        rootrun()
            .args(["--gdb", &port.to_string()])
            .arg(&image)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(stderr),
    );
    let mut boot = crate::harness::Live::new(child);
    let command = printed_gdb_command(&stderr_path);
    // Halted: init has not run its sysinit line.
    assert!(!boot.wait_for("ROOTRUN-BOOT-OK", Duration::from_secs(2)));

    // The line as printed, in batch mode: the PC at the entry point, a
    // breakpoint on the next instruction, continue, then detach (batch
    // mode would kill the inferior at the end).
    let entry = entry_point(&image_busybox());
    let script = format!(
        "{} -ex 'print $pc' -ex 'break *{:#x}' -ex continue -ex 'print $pc' -ex delete -ex detach",
        command.replacen("gdb-multiarch -q", "gdb-multiarch -q -batch -nx", 1),
        entry + 4
    );
    let gdb = std::process::Command::new("sh")
        .args(["-c", &script])
        .output()
        .expect("run gdb-multiarch");
    let gdb_out = text(&gdb.stdout) + &text(&gdb.stderr);
    assert!(
        gdb_out.contains(&format!("$1 = (void (*)()) {entry:#x}")),
        "{gdb_out}"
    );
    assert!(
        gdb_out.contains(&format!("Breakpoint 1, {:#018x}", entry + 4)),
        "{gdb_out}"
    );
    assert!(gdb_out.contains("detached"), "{gdb_out}");

    // Init goes on booting; its shell (a child) runs without a debugger.
    boot.expect("ROOTRUN-BOOT-OK", LIMIT);
    boot.write_and_close_stdin(b"echo init-child-ran; poweroff -f\n");
    boot.expect("init-child-ran", LIMIT);
    let (out, _) = boot.finish(LIMIT);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        fs::read_to_string(&stderr_path).unwrap_or_default()
    );
    frame.check();
}

#[test]
fn gdb_on_a_unix_socket_path_is_served_there_and_the_socket_goes_with_the_run() {
    let Some((frame, image)) = Frame::setup("gdb unix").emulation().busybox("arm64") else {
        return;
    };
    let socket = frame.path("gdb.sock");
    let mut cmd = rootrun();
    cmd.arg("-q")
        .arg("--gdb")
        .arg(&socket)
        .arg(&image)
        .args(["--", "/bin/echo", "continued"]);
    let child = frame.spawn(
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped()),
    );
    let rootrun = crate::harness::Live::new(child);
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut stream = loop {
        match std::os::unix::net::UnixStream::connect(&socket) {
            Ok(stream) => break stream,
            Err(e) if Instant::now() > deadline => panic!("connect {}: {e}", socket.display()),
            Err(_) => std::thread::sleep(Duration::from_millis(100)),
        }
    };
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    stream.write_all(&packet("?")).expect("send ?");
    let stop = reply(&mut stream);
    assert!(stop.starts_with("T05") || stop.starts_with("S05"), "{stop}");
    stream.write_all(&packet("c")).expect("send c");
    assert_eq!(reply(&mut stream), "W00");
    let (out, stdout) = rootrun.finish(LIMIT);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert_eq!(stdout, "continued\n");
    assert!(
        stderr.contains(&format!("-ex 'target remote {}'", socket.display())),
        "{stderr}"
    );
    assert!(!socket.exists(), "the socket is removed with the run");
    frame.check();
}

#[test]
fn strace_of_a_program_traces_each_of_its_runs_alone_into_its_own_file() {
    let Some(frame) = Frame::setup("strace program").emulation().start() else {
        return;
    };
    // A second BusyBox, not the /bin/sh the wrapper runs under, with a
    // link to it under another name (an applet).
    let extra = frame.dir("extra");
    fs::create_dir_all(extra.join("opt/bin")).expect("mkdir");
    fs::copy(image_busybox(), extra.join("opt/bin/busybox")).expect("copy busybox");
    std::os::unix::fs::symlink("busybox", extra.join("opt/bin/uname")).expect("symlink");
    let Some(image) = frame.busybox_with("arm64", &extra) else {
        return;
    };
    let logs = frame.path("logs");
    let out = frame.run(
        &mut sh_command(
            &image,
            &[
                "--strace=/opt/bin/busybox",
                "--keep-logs",
                logs.to_str().expect("utf-8"),
            ],
            "/opt/bin/busybox echo one; /opt/bin/busybox echo two; /opt/bin/uname -m; \
             env | grep QEMU_; echo done",
        ),
        b"",
        LIMIT,
    );
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    // Each run did its work (the applet through its link too), and the
    // shell that ran them saw no QEMU variable and no trace.
    assert_eq!(stdout, "one\ntwo\naarch64\ndone\n", "{stderr}");

    let emulator = logs.join("emulator");
    let traces: Vec<String> = fs::read_dir(&emulator)
        .expect("the emulator's log directory")
        .map(|e| fs::read_to_string(e.expect("entry").path()).expect("a trace"))
        .collect();
    assert_eq!(traces.len(), 3, "one trace per run: {traces:?}");
    assert_eq!(
        traces.iter().filter(|t| t.contains(" uname(")).count(),
        1,
        "{traces:?}"
    );
    assert_eq!(
        stderr
            .lines()
            .filter(|l| l.contains("syscall trace of /opt/bin/busybox (PID "))
            .count(),
        3,
        "{stderr}"
    );

    // The shell itself cannot be traced this way: said before the start.
    let out = frame.run(
        &mut sh_command(
            &image,
            &[
                "--strace=/bin/busybox",
                "--keep-logs",
                frame.path("logs2").to_str().expect("utf-8"),
            ],
            "true",
        ),
        b"",
        LIMIT,
    );
    assert_eq!(out.status.code(), Some(125));
    assert!(
        text(&out.stderr).contains("it is the image's /bin/sh"),
        "{}",
        text(&out.stderr)
    );
    frame.check();
}

#[test]
fn a_named_containers_directory_leads_to_its_logs_while_it_runs() {
    let Some((frame, image)) = Frame::setup("logs link").emulation().busybox("arm64") else {
        return;
    };
    let name = format!("dbg-logs-{}", std::process::id());
    let _kill = KillOnPanic(name.clone());
    let kept = frame.path("kept");
    for keep in [false, true] {
        let mut cmd = rootrun();
        cmd.args(["-d", "--name", &name]);
        if keep {
            cmd.arg("--keep-logs").arg(&kept).arg("--strace");
        }
        let out = frame.run(cmd.arg(&image), b"", LIMIT);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        let link = Path::new("/run/rootrun").join(&name).join("logs");
        let target = fs::read_link(&link).expect("the logs link");
        if keep {
            assert_eq!(target, kept);
            // init's trace, readable from the host while it runs (-d
            // returns once init runs: its sysinit line may come later).
            let deadline = Instant::now() + Duration::from_secs(60);
            let trace = loop {
                let trace = fs::read_to_string(link.join("emulator/strace.1")).unwrap_or_default();
                if trace.contains("execve(\"/bin/echo\"") || Instant::now() > deadline {
                    break trace;
                }
                std::thread::sleep(Duration::from_millis(100));
            };
            assert!(trace.contains("execve(\"/bin/echo\""), "{trace}");
        } else {
            // Into the supervisor's mount namespace, onto its tmpfs.
            assert!(target.starts_with("/proc/"), "{}", target.display());
            assert!(link.join("lxc.log").is_file(), "{}", target.display());
        }
        let stop = frame.run(rootrun().args(["stop", &name]), b"", LIMIT);
        assert_eq!(stop.status.code(), Some(0), "{}", text(&stop.stderr));
        assert!(!Path::new("/run/rootrun").join(&name).exists());
    }
    frame.check();
}
