//! What a new user hit on the command line (issue 7): output errors, quiet
//! command mode, --arch and metadata.yaml warnings, the `--` hint, messages,
//! the dry run failing where the run fails, inspect's JSON, text from the
//! image escaped, and the steps the dry run prints being what the run does.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::harness::{mksquashfs, rootrun, text, Frame};

const NATIVE: &str = "amd64";
const LIMIT: Duration = Duration::from_secs(60);

/// A BusyBox image with extra files over the tree.
fn image_with(frame: &Frame, name: &str, files: &[(&str, &str)]) -> Option<PathBuf> {
    let extra = frame.dir(&format!("{name}-extra"));
    for (path, content) in files {
        let path = extra.join(path);
        fs::create_dir_all(path.parent().expect("a parent")).expect("mkdir extra");
        fs::write(&path, content).expect("write extra file");
    }
    frame.busybox_with(NATIVE, &extra)
}

/// The BusyBox image unpacked, changed by `change`, packed again.
pub(crate) fn image_changed(
    frame: &Frame,
    name: &str,
    change: impl FnOnce(&Path),
) -> Option<PathBuf> {
    let source = frame.busybox(NATIVE)?;
    let tree = frame.path(&format!("{name}-tree"));
    let status = Command::new("unsquashfs")
        .args(["-q", "-no-progress", "-d"])
        .arg(&tree)
        .arg(&source)
        .status()
        .expect("unsquashfs");
    assert!(status.success());
    change(&tree);
    let image = frame.path(&format!("{name}.img"));
    mksquashfs(&tree, &image);
    Some(image)
}

/// `rootrun ARGS IMAGE -- true` must be refused before anything starts:
/// exit 125, and `needle` in the message.
fn assert_refused(image: &Path, args: &[&str], needle: &str) {
    let out = rootrun()
        .args(args)
        .arg(image)
        .args(["--", "true"])
        .output()
        .expect("run rootrun");
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(125), "{args:?}: {stderr}");
    assert!(stderr.contains(needle), "{args:?}: {stderr}");
}

/// stdout is a pipe whose reader has gone: `rootrun ... | true`.
fn with_closed_stdout(cmd: &mut Command) -> std::process::Output {
    let (read_end, write_end) = nix::unistd::pipe().expect("pipe");
    drop(read_end);
    cmd.stdout(Stdio::from(write_end))
        .stderr(Stdio::piped())
        .stdin(Stdio::null())
        .output()
        .expect("run rootrun")
}

#[test]
fn a_closed_stdout_pipe_ends_quietly_and_a_full_one_is_one_line() {
    let Some((frame, image)) = Frame::setup("closed stdout").any_user().busybox(NATIVE) else {
        return;
    };
    for args in [
        &["--dry-run"][..],
        &["inspect"][..],
        &["inspect", "--json"][..],
    ] {
        let out = with_closed_stdout(rootrun().args(args).arg(&image));
        let stderr = text(&out.stderr);
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
        assert_eq!(stderr, "", "{args:?}: a closed pipe ends quietly");
        assert_eq!(out.status.code(), Some(141), "{args:?}");
    }
    let full = fs::File::options()
        .write(true)
        .open("/dev/full")
        .expect("open /dev/full");
    let out = rootrun()
        .arg("inspect")
        .arg(&image)
        .stdout(full)
        .output()
        .expect("inspect > /dev/full");
    let stderr = text(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(
        stderr.trim(),
        "rootrun: write to stdout: No space left on device (os error 28)"
    );
    assert_eq!(out.status.code(), Some(125));
    frame.check();
}

#[test]
fn a_command_after_the_image_without_dashes_gets_a_hint() {
    let Some((frame, image)) = Frame::setup("-- hint").any_user().busybox(NATIVE) else {
        return;
    };
    let out = rootrun()
        .arg(&image)
        .args(["uname", "-m"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(125));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("unexpected argument 'uname'"), "{stderr}");
    assert!(stderr.contains("put it after `--`"), "{stderr}");
    let out = rootrun()
        .arg(&image)
        .arg("--no-such-flag")
        .output()
        .unwrap();
    assert!(
        !text(&out.stderr).contains("put it after"),
        "{}",
        text(&out.stderr)
    );
    frame.check();
}

#[test]
fn messages_name_what_is_wrong_in_whole_sentences() {
    let out = rootrun().arg("no-such-image.img").output().unwrap();
    assert_eq!(out.status.code(), Some(125));
    assert_eq!(
        text(&out.stderr).trim(),
        "rootrun: image no-such-image.img not found"
    );

    let out = rootrun().args(["--arch", "vax", "img"]).output().unwrap();
    let stderr = text(&out.stderr);
    let list = stderr
        .split("known: ")
        .nth(1)
        .and_then(|l| l.lines().next())
        .unwrap_or_default();
    assert_eq!(
        list.split(", ").filter(|n| *n == "arm").count(),
        1,
        "{stderr}"
    );

    let out = rootrun().args(["--hostname=-x", "img"]).output().unwrap();
    assert!(
        text(&out.stderr).contains("253 in all"),
        "{}",
        text(&out.stderr)
    );

    let help = text(&rootrun().arg("--help").output().unwrap().stdout);
    assert!(help.contains("`My_FW.v2.img` -> `my-fw-v2`"), "{help}");
    let run_help = text(&rootrun().args(["run", "--help"]).output().unwrap().stdout);
    for needle in ["Examples:", "Exit status:", "127 CMD or init"] {
        assert!(
            run_help.contains(needle),
            "run --help lacks {needle}: {run_help}"
        );
    }
}

#[test]
fn inspect_warns_about_an_arch_the_elf_contradicts_and_broken_metadata() {
    let Some(frame) = Frame::setup("inspect warnings").any_user().start() else {
        return;
    };
    let Some(image) = image_with(
        &frame,
        "broken-metadata",
        &[("metadata.yaml", "architecture: [x86_64\n")],
    ) else {
        return;
    };
    let out = rootrun()
        .args(["inspect", "--arch", "sparc64"])
        .arg(&image)
        .output()
        .unwrap();
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        stdout.contains("--arch sparc64 (sparc64) contradicts /sbin/init, which is x86_64 ELF"),
        "{stdout}"
    );
    assert!(stdout.contains("metadata.yaml ignored"), "{stdout}");
    assert!(stdout.contains("runs as      x86_64, native"), "{stdout}");

    let out = rootrun()
        .args(["inspect", "--json"])
        .arg(&image)
        .output()
        .unwrap();
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(report["arch"], "x86_64");
    assert!(report["metadata_problem"]
        .as_str()
        .is_some_and(|p| p.contains("metadata.yaml")));
    // Octal text, hex text, no internal ordering key.
    assert_eq!(report["init_resolved"]["mode"], "0755");
    if let Some(handler) = report["host"]["handler"].as_object() {
        assert!(!handler.contains_key("order_key"), "{handler:?}");
        assert!(handler["kind"]["magic"]["magic"].is_string(), "{handler:?}");
    }
    frame.check();
}

#[test]
fn inspect_json_shows_binfmt_patterns_as_hex_text() {
    let Some((frame, image)) = Frame::setup("inspect JSON")
        .any_user()
        .emulation()
        .busybox("arm64")
    else {
        return;
    };
    let out = rootrun()
        .args(["inspect", "--json"])
        .arg(&image)
        .output()
        .unwrap();
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let handler = &report["host"]["handler"];
    assert!(
        handler.is_object(),
        "no handler for arm64 on this host: {report}"
    );
    assert!(handler.get("order_key").is_none(), "{handler}");
    let magic = handler["kind"]["magic"]["magic"]
        .as_str()
        .unwrap_or_default();
    assert!(magic.starts_with("7f454c46"), "{handler}");
    assert!(handler["kind"]["magic"]["mask"].is_string(), "{handler}");
    frame.check();
}

#[test]
fn a_broken_metadata_yaml_does_not_stop_a_boot() {
    let Some(frame) = Frame::new("broken metadata boot") else {
        return;
    };
    let Some(image) = image_with(
        &frame,
        "broken-metadata-boot",
        &[("metadata.yaml", "architecture: [x86_64\n")],
    ) else {
        return;
    };
    let out = frame.run(rootrun().arg(&image).args(["--", "true"]), b"", LIMIT);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("warning: metadata.yaml ignored"),
        "{}",
        text(&out.stderr)
    );
    frame.check();
}

#[test]
fn command_mode_is_quiet_unless_verbose_and_pipe_mode_does_not_offer_the_escape_key() {
    let Some((frame, image)) = Frame::with_busybox("quiet command mode", NATIVE) else {
        return;
    };
    let out = frame.run(rootrun().arg(&image).args(["--", "true"]), b"", LIMIT);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(text(&out.stderr), "", "command mode printed on stderr");

    let out = frame.run(
        rootrun().arg("-v").arg(&image).args(["--", "true"]),
        b"",
        LIMIT,
    );
    assert!(
        text(&out.stderr).contains("running a command in"),
        "{}",
        text(&out.stderr)
    );

    let out = frame.run(rootrun().arg(&image), b"poweroff -f\n", LIMIT);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("rootrun: booting"), "{stderr}");
    assert!(
        !stderr.contains("Ctrl-a"),
        "pipe mode offers the escape key: {stderr}"
    );
    assert!(stderr.contains("poweroff inside, or SIGTERM"), "{stderr}");
    frame.check();
}

#[test]
fn the_dry_run_fails_where_the_run_fails() {
    let Some((frame, image)) = Frame::setup("dry run fails").any_user().busybox(NATIVE) else {
        return;
    };
    let out = rootrun()
        .args(["--dry-run", "--init", "/sbin/nope"])
        .arg(&image)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(127));
    assert!(
        text(&out.stderr).contains("/sbin/nope not found in the image"),
        "{}",
        text(&out.stderr)
    );
    let out = rootrun()
        .arg("--dry-run")
        .arg(&image)
        .args(["--", "/etc/passwd"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(126), "{}", text(&out.stderr));
    let out = rootrun()
        .arg("--dry-run")
        .arg(&image)
        .args(["--", "nope-cmd"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(127), "{}", text(&out.stderr));
    frame.check();
}

/// The numbered step lines of a dry run ("#  3. text"), with the container
/// name (it holds rootrun's PID) made the same.
fn planned_steps(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|line| line.strip_prefix('#'))
        .filter_map(|line| line.trim_start().split_once(". "))
        .filter(|(number, _)| number.parse::<u32>().is_ok())
        .map(|(_, step)| normalize_name(step))
        .collect()
}

/// The steps a `-v` run reported on stderr (`rootrun: [   0.006s] step:
/// STEP (0.3 ms)`), without their times.
fn done_steps(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|line| line.strip_prefix("rootrun: ["))
        .filter_map(|line| line.split_once("] step: ").map(|(_, step)| step))
        .map(|step| match step.rsplit_once(" (") {
            Some((done, time)) if time.ends_with(" ms)") => done,
            _ => step,
        })
        .map(normalize_name)
        .collect()
}

fn normalize_name(line: &str) -> String {
    let mut out = String::new();
    let mut rest = line;
    while let Some(at) = rest.find("rootrun-") {
        let (head, tail) = rest.split_at(at + "rootrun-".len());
        out.push_str(head);
        let digits = tail.bytes().take_while(u8::is_ascii_digit).count();
        if digits > 0 {
            out.push_str("PID");
        }
        rest = &tail[digits..];
    }
    out.push_str(rest);
    out
}

fn assert_run_matches_dry_run(frame: &Frame, image: &Path, args: &[&str], input: &[u8]) {
    let dry = rootrun()
        .arg("--dry-run")
        .args(args)
        .arg(image)
        .output()
        .unwrap();
    assert_eq!(dry.status.code(), Some(0), "{}", text(&dry.stderr));
    let planned = planned_steps(&text(&dry.stdout));
    let json: serde_json::Value = serde_json::from_slice(
        &rootrun()
            .args(["--dry-run", "--json"])
            .args(args)
            .arg(image)
            .output()
            .unwrap()
            .stdout,
    )
    .expect("dry run JSON");
    assert_eq!(
        json["steps"].as_array().map(Vec::len),
        Some(planned.len()),
        "JSON and text list different steps: {json}"
    );
    let run = frame.run(rootrun().arg("-v").args(args).arg(image), input, LIMIT);
    assert_eq!(run.status.code(), Some(0), "{}", text(&run.stderr));
    let done = done_steps(&text(&run.stderr));
    assert!(planned.len() > 10, "{planned:?}");
    assert_eq!(done, planned, "the run did not do what the dry run printed");
}

#[test]
fn a_run_executes_exactly_the_steps_its_dry_run_printed() {
    let Some(frame) = Frame::setup("run matches dry run").emulation().start() else {
        return;
    };
    let (Some(native), Some(foreign)) = (frame.busybox(NATIVE), frame.busybox("arm64")) else {
        return;
    };
    assert_run_matches_dry_run(&frame, &native, &[], b"poweroff -f\n");
    assert_run_matches_dry_run(&frame, &native, &["--unpack"], b"poweroff -f\n");
    assert_run_matches_dry_run(&frame, &foreign, &[], b"poweroff -f\n");
    frame.check();
}

#[test]
fn a_broken_init_does_not_stop_a_command_and_is_127_or_named_for_a_boot() {
    let Some(frame) = Frame::new("broken init, command") else {
        return;
    };
    let looped = image_changed(&frame, "cmd-init-loop", |tree| {
        fs::remove_file(tree.join("sbin/init")).unwrap();
        std::os::unix::fs::symlink("/sbin/init2", tree.join("sbin/init")).unwrap();
        std::os::unix::fs::symlink("init", tree.join("sbin/init2")).unwrap();
    });
    let sbin_file = image_changed(&frame, "cmd-sbin-file", |tree| {
        fs::remove_dir_all(tree.join("sbin")).unwrap();
        fs::write(tree.join("sbin"), "not a directory\n").unwrap();
    });
    let (Some(looped), Some(sbin_file)) = (looped, sbin_file) else {
        return;
    };
    for image in [&looped, &sbin_file] {
        let out = frame.run(
            rootrun().arg(image).args(["--", "/bin/busybox", "true"]),
            b"",
            LIMIT,
        );
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}: {}",
            image.display(),
            text(&out.stderr)
        );
    }
    // Booting it: /sbin a file makes init as missing as no init (127).
    let out = frame.run(rootrun().arg(&sbin_file), b"", LIMIT);
    assert_eq!(out.status.code(), Some(127), "{}", text(&out.stderr));
    frame.check();
}

#[test]
fn a_file_name_that_is_not_utf8_is_a_usage_error_not_a_panic() {
    use std::os::unix::ffi::OsStrExt;
    let name = std::ffi::OsStr::from_bytes(b"img\xff.img");
    let out = rootrun().arg(name).args(["uname", "-m"]).output().unwrap();
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(125), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn text_from_the_image_reaches_the_terminal_escaped() {
    let Some(frame) = Frame::setup("escaped text").any_user().start() else {
        return;
    };
    let Some(image) = image_with(
        &frame,
        "escapes",
        &[(
            "metadata.yaml",
            "architecture: x86_64\nproperties:\n  os: \"\\e]0;OWNED\\a\\e[2J\"\n",
        )],
    ) else {
        return;
    };
    let out = rootrun().arg("inspect").arg(&image).output().unwrap();
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(stdout.contains("OWNED"), "{stdout}");
    assert!(
        !stdout.contains('\x1b') && !stdout.contains('\x07'),
        "{stdout:?}"
    );
    frame.check();
}

#[test]
fn env_and_workdir_reach_the_command_and_term_comes_from_a_terminal() {
    let Some((frame, image)) = Frame::setup("env and workdir")
        .tools(&["script"])
        .busybox(NATIVE)
    else {
        return;
    };
    let out = frame.run(
        rootrun()
            .args(["-e", "GREETING=hello world", "-e", "EMPTY=", "-w", "/etc"])
            .arg(&image)
            .args([
                "--",
                "/bin/sh",
                "-c",
                "echo \"[$GREETING][${EMPTY-unset}]\"; pwd",
            ]),
        b"",
        LIMIT,
    );
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}{}", text(&out.stderr));
    assert_eq!(stdout, "[hello world][]\n/etc\n");
    assert_refused(&image, &["-e", "1BAD=x"], "not a variable name");
    // On a terminal (script(1) gives rootrun one), TERM comes along; on a
    // pipe it does not.
    let shell = format!(
        "{} -q {} -- /bin/sh -c 'echo term=[$TERM]'",
        env!("CARGO_BIN_EXE_rootrun"),
        image.display()
    );
    let mut script = Command::new("script");
    script
        .args(["-qc", &shell, "/dev/null"])
        .env("TERM", "xterm-rootrun-test");
    let out = frame.run(&mut script, b"", LIMIT);
    let stdout = text(&out.stdout);
    assert!(stdout.contains("term=[xterm-rootrun-test]"), "{stdout}");
    let out = frame.run(
        rootrun()
            .arg(&image)
            .args(["--", "/bin/sh", "-c", "echo term=[$TERM]"])
            .env("TERM", "xterm-rootrun-test"),
        b"",
        LIMIT,
    );
    assert!(
        !text(&out.stdout).contains("xterm-rootrun-test"),
        "{}",
        text(&out.stdout)
    );
    frame.check();
}

#[test]
fn binds_are_writable_or_read_only_and_never_follow_an_image_symlink_out() {
    let Some(frame) = Frame::new("--bind") else {
        return;
    };
    // /opt in the image is a symlink to /tmp: the bind's mount point must
    // be made in the image's /tmp, never in the host's.
    let name = format!("rootrun-bind-{}", std::process::id());
    let Some(image) = image_changed(&frame, "bind-symlink", |tree| {
        fs::create_dir_all(tree.join("tmp")).unwrap();
        std::os::unix::fs::symlink("/tmp", tree.join("opt")).unwrap();
    }) else {
        return;
    };
    let shared = frame.dir("shared");
    fs::write(shared.join("from-host"), "hello\n").unwrap();
    let rw = format!("{}:/opt/{name}", shared.display());
    let ro = format!("{}:/srv/ro:ro", shared.display());
    let script = format!(
        "cat /opt/{name}/from-host; echo guest > /tmp/{name}/from-guest; \
         echo x > /srv/ro/nope 2>/dev/null; echo ro-write=$?"
    );
    let out = frame.run(
        rootrun()
            .args(["-q", "--bind", &rw, "--bind", &ro])
            .arg(&image)
            .args(["--", "/bin/sh", "-c", &script]),
        b"",
        LIMIT,
    );
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}{}", text(&out.stderr));
    assert!(stdout.starts_with("hello\n"), "{stdout}");
    assert!(
        stdout.contains("ro-write=1"),
        "a read-only bind took a write: {stdout}"
    );
    assert_eq!(
        fs::read_to_string(shared.join("from-guest")).unwrap_or_default(),
        "guest\n"
    );
    assert!(!shared.join("nope").exists());
    assert!(
        !Path::new("/tmp").join(&name).exists(),
        "the mount point went through the image's symlink onto the host"
    );
    assert_refused(
        &image,
        &["--bind", "/no/such/dir:/x"],
        "--bind: /no/such/dir",
    );
    frame.check();
}

#[test]
fn persist_keeps_the_writable_layer_across_runs_and_keep_upper_keeps_one_run() {
    let Some((frame, image)) = Frame::with_busybox("--persist", NATIVE) else {
        return;
    };
    let persist = frame.path("persist");
    let sh = |args: &[&str], script: &str| {
        frame.run(
            rootrun()
                .arg("-q")
                .args(args)
                .arg(&image)
                .args(["--", "/bin/sh", "-c", script]),
            b"",
            LIMIT,
        )
    };
    let dir = persist.to_string_lossy().into_owned();
    let out = sh(&["--persist", &dir], "echo first > /etc/note");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let out = sh(&["--persist", &dir], "cat /etc/note");
    assert_eq!(text(&out.stdout), "first\n", "{}", text(&out.stderr));
    // Without it, a run starts from the image again (which is unchanged:
    // frame.check compares its fingerprint).
    let out = sh(&[], "cat /etc/note 2>/dev/null || echo none");
    assert_eq!(text(&out.stdout), "none\n");

    let keep = frame.path("post-mortem");
    let keep_dir = keep.to_string_lossy().into_owned();
    let out = sh(&["--keep-upper", &keep_dir], "echo crash > /var-log-note");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(
        fs::read_to_string(keep.join("upper/var-log-note")).unwrap_or_default(),
        "crash\n"
    );
    assert_refused(
        &image,
        &["--keep-upper", &keep_dir],
        "give an empty directory",
    );
    frame.check();
}

#[test]
fn raw_lxc_items_reach_liblxc_and_rootruns_own_keys_are_refused() {
    let Some((frame, image)) = Frame::with_busybox("--lxc", NATIVE) else {
        return;
    };
    let out = frame.run(
        rootrun()
            .args(["-q", "--lxc", "lxc.prlimit.nofile=123"])
            .arg(&image)
            .args(["--", "/bin/sh", "-c", "ulimit -n"]),
        b"",
        LIMIT,
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout).trim(), "123");
    for item in ["lxc.rootfs.path=dir:/", "lxc.signal.halt=SIGKILL"] {
        assert_refused(&image, &["--lxc", item], "rootrun sets");
    }
    assert_refused(
        &image,
        &["--lxc", "lxc.mount.entry=/a b none bind\nlxc.rootfs.path=x"],
        "newline",
    );
    frame.check();
}

#[test]
fn version_completions_and_man_page_come_from_the_command_line_definitions() {
    let out = rootrun().arg("--version").output().unwrap();
    assert!(out.status.success());
    let version = text(&out.stdout);
    let lines: Vec<&str> = version.lines().collect();
    assert_eq!(lines[0], format!("rootrun {}", env!("CARGO_PKG_VERSION")));
    assert!(
        lines[1].starts_with("liblxc ") && lines[1].ends_with("(loaded)"),
        "{version}"
    );
    assert!(
        lines[2].starts_with("bindings generated from liblxc "),
        "{version}"
    );

    // bash: a script bash parses, completing the subcommands.
    let out = rootrun().args(["completions", "bash"]).output().unwrap();
    assert!(out.status.success());
    let script = text(&out.stdout);
    for word in ["exec", "console", "--detach", "--rootfs"] {
        assert!(
            script.contains(word),
            "{word} missing from the bash completion"
        );
    }
    let mut bash = Command::new("bash")
        .arg("-n")
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(bash.stdin.as_mut().unwrap(), script.as_bytes()).unwrap();
    drop(bash.stdin.take());
    assert!(
        bash.wait().unwrap().success(),
        "bash -n refused the completion"
    );
    for (shell, first) in [("zsh", "#compdef rootrun"), ("fish", "complete -c rootrun")] {
        let out = rootrun().args(["completions", shell]).output().unwrap();
        assert!(text(&out.stdout).contains(first), "{shell}");
    }
    let out = rootrun().args(["completions", "tcsh"]).output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(125),
        "an unknown shell is a usage error"
    );

    let out = rootrun().arg("man").output().unwrap();
    assert!(out.status.success());
    let page = text(&out.stdout);
    assert!(page.contains(".TH rootrun 1"), "{page}");
    assert!(
        page.contains(r"stop\-timeout"),
        "the options are in the page"
    );
}

#[test]
fn a_configuration_beside_the_image_gives_defaults_the_command_line_overrides() {
    let Some((frame, image)) = Frame::with_busybox("configuration file", NATIVE) else {
        return;
    };
    let dir = frame.dir("conf");
    let fw = dir.join("fw.img");
    fs::hard_link(&image, &fw).unwrap();
    frame.watch(&fw);
    fs::create_dir(dir.join("data")).unwrap();
    fs::write(dir.join("data/note"), "from-the-host\n").unwrap();
    fs::write(
        dir.join("fw.img.rootrun.yaml"),
        "# defaults for fw.img\nhostname: from-yaml\nenv: {GREETING: hello, MODE: yaml}\n\
         bind: [data:/data:ro]\nstop_timeout: 5\n\
         command: [/bin/sh, -c, 'echo $GREETING $MODE $(hostname) $(cat /data/note)']\n",
    )
    .unwrap();
    let run = |args: &[&str], tail: &[&str]| {
        frame.run(
            rootrun().arg("-q").args(args).arg(&fw).args(tail),
            b"",
            LIMIT,
        )
    };
    let out = run(&[], &[]);
    assert_eq!(
        text(&out.stdout),
        "hello yaml from-yaml from-the-host\n",
        "{}",
        text(&out.stderr)
    );
    // The command line wins: a single value replaces, env adds after.
    let out = run(&["--hostname", "from-cli", "-e", "MODE=cli"], &[]);
    assert_eq!(text(&out.stdout), "hello cli from-cli from-the-host\n");
    let out = run(&[], &["--", "/bin/echo", "cli-command"]);
    assert_eq!(text(&out.stdout), "cli-command\n");
    // --config names another file; its mistakes name their line.
    let other = dir.join("other.yaml");
    fs::write(&other, "hostname: other\nnetwork: host\n").unwrap();
    let out = run(&["--config", other.to_str().unwrap()], &[]);
    assert_eq!(out.status.code(), Some(125));
    assert!(
        text(&out.stderr).contains("line 2")
            && text(&out.stderr).contains("unknown field `network`"),
        "{}",
        text(&out.stderr)
    );
    fs::write(&other, "hostname: other\nnet: natt\n").unwrap();
    let out = run(&["--config", other.to_str().unwrap()], &[]);
    assert_eq!(out.status.code(), Some(125));
    assert!(
        text(&out.stderr).contains("line 2: net: invalid value 'natt'"),
        "{}",
        text(&out.stderr)
    );
    frame.check();
}

#[test]
fn a_file_rootrun_cannot_read_is_named_with_what_to_do() {
    let Some(frame) = Frame::new("other formats") else {
        return;
    };
    // A disk image: an MBR with one Linux partition entry.
    let mut disk = vec![0u8; 1 << 20];
    disk[446 + 4] = 0x83;
    disk[510..512].copy_from_slice(&[0x55, 0xAA]);
    let disk_path = frame.path("sdcard.img");
    fs::write(&disk_path, disk).unwrap();
    let lz4_path = frame.path("root.tar.lz4");
    fs::write(&lz4_path, [0x04, 0x22, 0x4D, 0x18, 0, 0, 0, 0]).unwrap();
    for (file, what, hint) in [
        (
            &disk_path,
            "but a disk image with a partition table",
            "losetup -r -P",
        ),
        (&lz4_path, "but lz4-compressed data", "lz4 -d"),
    ] {
        for args in [&["inspect"][..], &["-q"][..]] {
            let out = rootrun().args(args).arg(file).output().unwrap();
            assert_eq!(out.status.code(), Some(125), "{args:?}");
            let stderr = text(&out.stderr);
            assert!(
                stderr.contains(what) && stderr.contains(hint),
                "{args:?}: {stderr}"
            );
            assert_eq!(stderr.lines().count(), 1, "{stderr}");
        }
    }
    frame.check();
}
