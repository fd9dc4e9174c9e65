//! Foreign architectures under QEMU user emulation, for real: images built
//! from Debian's busybox-static for other CPUs, both binfmt_misc setups (the
//! system's F-flag handlers and a test handler without F), and the errors.
//! Tests that change binfmt_misc restore it through `Binfmt`, even on panic,
//! and hold the host lock so no other test sees the change.

mod common;

use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::*;
use rootrun::arch::{self, Arch, Flags, BINFMT_DIR};

const LIMIT: Duration = Duration::from_secs(120);

/// Debian architecture, `uname -m` inside.
const ARCHES: [(&str, &str); 5] = [
    ("arm64", "aarch64"),
    ("armhf", "armv7l"),
    ("ppc64el", "ppc64le"),
    ("s390x", "s390x"),
    ("i386", "i686"),
];

fn binfmt_ready(test: &str) -> bool {
    if !require_root(test) {
        return false;
    }
    let ready = Path::new(BINFMT_DIR).join("qemu-aarch64").exists();
    if !ready {
        panic!(
            "{test}: binfmt_misc is not mounted or Debian's QEMU handlers are not registered; \
             run tests/setup-host.sh first"
        );
    }
    true
}

/// Undoes every binfmt_misc change it made, in reverse, on drop.
#[derive(Default)]
struct Binfmt {
    undo: Vec<Undo>,
}

enum Undo {
    Remove(String),
    Enable(String),
    Register(String),
}

impl Binfmt {
    fn dir() -> &'static Path {
        Path::new(BINFMT_DIR)
    }

    /// Registers a handler for `arch` with no flags at all (no F).
    fn register_without_f(&mut self, name: &str, arch: Arch, interpreter: &Path) {
        let line = arch::register_line(
            name,
            &arch::qemu_pattern(arch).kind(),
            interpreter,
            Flags::default(),
        )
        .expect("build registration line");
        arch::register(Self::dir(), &line).expect("register test handler");
        self.undo.push(Undo::Remove(name.to_owned()));
    }

    fn disable(&mut self, name: &str) {
        arch::set_enabled(Self::dir(), name, false).expect("disable handler");
        self.undo.push(Undo::Enable(name.to_owned()));
    }

    /// Takes an enabled entry out of the kernel's list for this test: a
    /// `rootrun-qemu-ARCH` that an interrupted run left would answer for its
    /// architecture. It is registered again on drop.
    fn set_aside_if_enabled(&mut self, name: &str) {
        let entries = arch::read_entries(Self::dir()).expect("read binfmt_misc");
        let Some(entry) = entries.into_iter().find(|e| e.name == name && e.enabled) else {
            return;
        };
        let line = arch::register_line(name, &entry.kind, &entry.interpreter, entry.flags)
            .expect("registration line of an existing entry");
        arch::remove(Self::dir(), name).expect("remove handler");
        self.undo.push(Undo::Register(line));
    }

    /// Removes one of Debian's handlers; it is registered again from
    /// /usr/lib/binfmt.d on drop.
    fn remove_system(&mut self, name: &str) {
        let conf = fs::read_to_string(format!("/usr/lib/binfmt.d/{name}.conf"))
            .expect("read binfmt.d conf");
        let line = conf
            .lines()
            .find(|l| l.starts_with(':'))
            .expect("registration line")
            .to_owned();
        arch::remove(Self::dir(), name).expect("remove handler");
        self.undo.push(Undo::Register(line));
    }
}

impl Drop for Binfmt {
    fn drop(&mut self) {
        for undo in self.undo.drain(..).rev() {
            let _ = match undo {
                Undo::Remove(name) => arch::remove(Self::dir(), &name),
                Undo::Enable(name) => arch::set_enabled(Self::dir(), &name, true),
                Undo::Register(line) => arch::register(Self::dir(), &line),
            };
        }
    }
}

/// A copy of the static QEMU at a path that exists only on the host.
struct HostOnlyQemu {
    dir: PathBuf,
    path: PathBuf,
}

impl HostOnlyQemu {
    fn new(arch: &str) -> Self {
        let dir = PathBuf::from(format!(
            "/usr/local/lib/rootrun-test-{}",
            std::process::id()
        ));
        fs::create_dir_all(&dir).expect("create host-only interpreter dir");
        let path = dir.join(format!("qemu-{arch}"));
        fs::copy(format!("/usr/bin/qemu-{arch}-static"), &path).expect("copy qemu");
        HostOnlyQemu { dir, path }
    }
}

impl Drop for HostOnlyQemu {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.dir);
    }
}

#[test]
fn foreign_images_run_under_the_systems_f_handlers_and_pass_exit_status() {
    if !binfmt_ready("foreign arches") {
        return;
    }
    let images: Vec<(PathBuf, &str)> = ARCHES
        .iter()
        .map(|(deb, uname)| (busybox_image(deb), *uname))
        .collect();
    let _lock = host_lock();
    let before = HostState::capture();
    for (image, uname) in &images {
        let hash = sha256(image);
        let out = sh_in(image, "uname -m; exit 3", LIMIT);
        assert_eq!(
            text(&out.stdout).trim(),
            *uname,
            "{}: {}",
            image.display(),
            text(&out.stderr)
        );
        assert_eq!(out.status.code(), Some(3), "{}", image.display());
        assert_eq!(sha256(image), hash);
    }
    before.assert_restored("foreign arches");
}

#[test]
fn foreign_boot_in_pipe_mode_reaches_the_shell_and_powers_off() {
    if !binfmt_ready("foreign boot") {
        return;
    }
    let image = busybox_image("arm64");
    let _lock = host_lock();
    let before = HostState::capture();
    let out = run_with_input(rootrun().arg(&image), b"uname -m; poweroff -f\n", LIMIT);
    let stdout = text(&out.stdout);
    assert!(stdout.contains("ROOTRUN-BOOT-OK"), "{stdout}");
    assert!(stdout.lines().any(|l| l == "aarch64"), "{stdout}");
    assert_eq!(out.status.code(), Some(0));
    let banner = text(&out.stderr);
    assert!(
        banner.contains("aarch64 under /usr/libexec/qemu-binfmt/aarch64-binfmt-P"),
        "{banner}"
    );
    before.assert_restored("foreign boot");
}

#[test]
fn handler_without_f_gets_its_interpreter_bind_mounted_at_the_registered_path() {
    if !binfmt_ready("non-F handler") {
        return;
    }
    let image = busybox_image("arm64");
    let _lock = host_lock();
    let before = HostState::capture();
    let qemu = HostOnlyQemu::new("aarch64");
    let mut binfmt = Binfmt::default();
    // Registered last, it is the one the kernel tries first.
    binfmt.register_without_f(
        &format!("rootrun-test-nof-{}", std::process::id()),
        Arch::Aarch64,
        &qemu.path,
    );

    let plan = rootrun()
        .arg("--dry-run")
        .arg(&image)
        .output()
        .expect("dry run");
    let plan = text(&plan.stdout);
    assert!(
        plan.contains(&format!(
            "aarch64 under {}, bind-mounted",
            qemu.path.display()
        )),
        "{plan}"
    );

    let out = run_with_input(rootrun().arg(&image), b"ps; kill -USR2 1\n", LIMIT);
    let stdout = text(&out.stdout);
    // The seed's `ps` inside a working foreign container: init runs under
    // the interpreter, at the path registered on the host.
    let init_line = format!("{} /sbin/init", qemu.path.display());
    assert!(
        stdout.contains(&init_line),
        "ps does not show {init_line:?}: {stdout}"
    );
    assert!(stdout.contains("ROOTRUN-SHUTDOWN"), "{stdout}");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let banner = text(&out.stderr);
    assert!(banner.contains("bind-mounted"), "{banner}");

    // Bind-mounted read-only: the guest cannot overwrite the host's emulator.
    let script = format!("echo x > {} ; echo rc=$?", qemu.path.display());
    let out = sh_in(&image, &script, LIMIT);
    assert!(
        text(&out.stdout).contains("rc=1"),
        "interpreter writable: {}",
        text(&out.stdout)
    );
    drop(binfmt);
    drop(qemu);
    before.assert_restored("non-F handler");
}

#[test]
fn mount_point_for_the_interpreter_never_follows_image_symlinks_onto_the_host() {
    if !binfmt_ready("hostile symlink") {
        return;
    }
    // The image's /usr/local is a symlink to /tmp: the interpreter's mount
    // point must be created in the container's /tmp, not the host's.
    let extra = work_dir().join("evil-usr-local");
    let _ = fs::remove_dir_all(&extra);
    fs::create_dir_all(extra.join("usr")).unwrap();
    symlink("/tmp", extra.join("usr/local")).unwrap();
    let image = work_dir().join("evil-usr-local.img");
    build_image("arm64", &image, Some(&extra));

    let _lock = host_lock();
    let before = HostState::capture();
    let qemu = HostOnlyQemu::new("aarch64");
    let leaked = Path::new("/tmp/lib").join(qemu.dir.file_name().unwrap());
    let mut binfmt = Binfmt::default();
    binfmt.register_without_f(
        &format!("rootrun-test-evil-{}", std::process::id()),
        Arch::Aarch64,
        &qemu.path,
    );
    let out = sh_in(&image, "uname -m; ls /tmp/lib", LIMIT);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).starts_with("aarch64\n"),
        "{}",
        text(&out.stdout)
    );
    assert!(!leaked.exists(), "created {} on the host", leaked.display());
    drop(binfmt);
    drop(qemu);
    before.assert_restored("hostile symlink");
}

fn expect_125(image: &Path, args: &[&str], needles: &[&str]) {
    let out = run_with_input(
        rootrun().args(args).arg(image).args(["--", "/bin/true"]),
        b"",
        LIMIT,
    );
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(125), "{stderr}");
    for needle in needles {
        assert!(stderr.contains(needle), "{needle:?} missing from: {stderr}");
    }
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn missing_disabled_gone_and_dynamic_handlers_are_clear_errors() {
    if !binfmt_ready("handler errors") {
        return;
    }
    let image = busybox_image("s390x");
    let _lock = host_lock();
    let before = HostState::capture();
    // Each case below assumes Debian's qemu-s390x is the only handler.
    let mut earlier = Binfmt::default();
    earlier.set_aside_if_enabled("rootrun-qemu-s390x");
    {
        let mut binfmt = Binfmt::default();
        binfmt.disable("qemu-s390x");
        expect_125(
            &image,
            &[],
            &[
                "qemu-s390x for s390x is disabled",
                "echo 1 > /proc/sys/fs/binfmt_misc/qemu-s390x",
            ],
        );
    }
    {
        let mut binfmt = Binfmt::default();
        binfmt.remove_system("qemu-s390x");
        expect_125(
            &image,
            &[],
            &[
                "no binfmt_misc handler for s390x",
                "apt-get install qemu-user-static",
                "register",
            ],
        );
        // --register-binfmt fixes exactly that; --dry-run shows the plan
        // with the handler it would register, and registers nothing.
        let out = run_with_input(
            rootrun()
                .args(["--dry-run", "--register-binfmt"])
                .arg(&image),
            b"",
            LIMIT,
        );
        let plan = text(&out.stdout);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        assert!(plan.contains("/usr/bin/qemu-s390x-static"), "{plan}");
        assert!(!Path::new(BINFMT_DIR).join("rootrun-qemu-s390x").exists());
        let out = run_with_input(
            rootrun()
                .arg("--register-binfmt")
                .arg(&image)
                .args(["--", "uname", "-m"]),
            b"",
            LIMIT,
        );
        let _ = arch::remove(Path::new(BINFMT_DIR), "rootrun-qemu-s390x");
        assert_eq!(text(&out.stdout).trim(), "s390x", "{}", text(&out.stderr));
        assert!(text(&out.stderr).contains("registered binfmt_misc handler rootrun-qemu-s390x"));
    }
    {
        let gone = work_dir().join("qemu-gone");
        fs::write(&gone, b"").unwrap();
        let mut binfmt = Binfmt::default();
        binfmt.register_without_f(
            &format!("rootrun-test-gone-{}", std::process::id()),
            Arch::S390x,
            &gone,
        );
        fs::remove_file(&gone).unwrap();
        expect_125(&image, &[], &["which does not exist"]);
    }
    {
        let mut binfmt = Binfmt::default();
        binfmt.register_without_f(
            &format!("rootrun-test-dyn-{}", std::process::id()),
            Arch::S390x,
            Path::new("/bin/true"),
        );
        expect_125(&image, &[], &["dynamically linked", "qemu-user-static"]);
    }
    drop(earlier);
    before.assert_restored("handler errors");
}

fn image_with(name: &str, build: impl FnOnce(&Path)) -> PathBuf {
    let tree = work_dir().join(name);
    let _ = fs::remove_dir_all(&tree);
    fs::create_dir_all(tree.join("sbin")).unwrap();
    fs::create_dir_all(tree.join("bin")).unwrap();
    build(&tree);
    let image = work_dir().join(format!("{name}.img"));
    mksquashfs(&tree, &image);
    image
}

#[test]
fn init_symlink_loops_and_images_without_elf_are_refused() {
    let looped = image_with("init-loop", |tree| {
        symlink("/sbin/init2", tree.join("sbin/init")).unwrap();
        symlink("init", tree.join("sbin/init2")).unwrap();
    });
    let script_only = image_with("script-only", |tree| {
        fs::write(tree.join("sbin/init"), "#!/bin/sh\necho hi\n").unwrap();
        fs::write(tree.join("bin/sh"), "not a program\n").unwrap();
    });
    if !require_root("detection errors") {
        return;
    }
    let _lock = host_lock();
    let before = HostState::capture();
    expect_125(
        &looped,
        &[],
        &["/sbin/init", "too many levels of symbolic links"],
    );
    expect_125(
        &script_only,
        &[],
        &[
            "cannot tell the image's CPU architecture",
            "a script",
            "--arch",
        ],
    );
    before.assert_restored("detection errors");
}

#[test]
fn script_init_falls_back_to_busybox_and_metadata_disagreement_is_reported() {
    if !binfmt_ready("fallback") {
        return;
    }
    let extra = work_dir().join("script-init-extra");
    let _ = fs::remove_dir_all(&extra);
    fs::create_dir_all(extra.join("sbin")).unwrap();
    fs::write(
        extra.join("metadata.yaml"),
        "architecture: x86_64\nproperties:\n  os: myrootfs\n",
    )
    .unwrap();
    let image = work_dir().join("script-init.img");
    build_image("arm64", &image, Some(&extra));
    // Replace the init symlink by a script (build-image copies extra last).
    let tree = work_dir().join("script-init-tree");
    let _ = fs::remove_dir_all(&tree);
    let status = std::process::Command::new("unsquashfs")
        .args(["-q", "-no-progress", "-d"])
        .arg(&tree)
        .arg(&image)
        .status()
        .unwrap();
    assert!(status.success());
    fs::remove_file(tree.join("sbin/init")).unwrap();
    fs::write(
        tree.join("sbin/init"),
        "#!/bin/sh\nexec /bin/busybox init\n",
    )
    .unwrap();
    mksquashfs(&tree, &image);

    let inspect = rootrun()
        .args(["inspect", "--json"])
        .arg(&image)
        .output()
        .expect("inspect");
    let report: serde_json::Value = serde_json::from_slice(&inspect.stdout).expect("inspect JSON");
    assert_eq!(report["arch"], "aarch64");
    assert_eq!(report["evidence"]["file"], "/bin/busybox");
    assert_eq!(report["metadata_mismatch"], "x86_64");

    let _lock = host_lock();
    let out = sh_in(&image, "uname -m", LIMIT);
    assert_eq!(text(&out.stdout).trim(), "aarch64", "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("metadata.yaml says architecture \"x86_64\""),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn inspect_names_the_arch_in_every_dialect_and_the_handler() {
    let image = busybox_image("armhf");
    let out = rootrun()
        .args(["inspect", "--json"])
        .arg(&image)
        .output()
        .expect("inspect");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(report["names"]["uname"], "armv7l");
    assert_eq!(report["names"]["debian"], "armhf");
    assert_eq!(report["names"]["qemu"], "arm");
    assert_eq!(report["init_flavor"], "busybox");
    assert_eq!(report["evidence"]["resolved"], "/bin/busybox");
    assert_eq!(report["squashfs"]["compression"], "gzip");
    if Path::new(BINFMT_DIR).join("qemu-arm").exists() {
        assert_eq!(report["host"]["handler"]["name"], "qemu-arm");
        assert_eq!(report["host"]["emulation"]["how"], "preloaded");
    }
    let text_out = rootrun()
        .arg("inspect")
        .arg(&image)
        .output()
        .expect("inspect");
    let text_out = text(&text_out.stdout);
    assert!(
        text_out.contains("architecture arm (uname armv7l, Debian armhf, QEMU arm"),
        "{text_out}"
    );
}

/// The systemd halt signal rootrun sends to an emulated image (host
/// SIGRTMIN+6, see plan.rs) rests on qemu-user delivering host real-time
/// signal N as N-2. Measured here with the installed emulator: a guest shell
/// traps every real-time signal and names the one it got.
#[test]
fn qemu_delivers_host_sigrtmin_plus_6_as_guest_sigrtmin_plus_4() {
    if !binfmt_ready("signal shift") {
        return;
    }
    let image = busybox_image("arm64");
    let _lock = host_lock();
    let script = "for s in $(seq 34 64); do trap \"echo got-$s\" $s; done; echo ready; while :; do sleep 0.1; done";
    let mut run = Live::spawn(
        &mut sh_command(&image, &[], script),
        std::process::Stdio::null(),
    );
    run.expect("ready", LIMIT);
    // rootrun -> liblxc monitor -> liblxc init -> the shell (under qemu).
    let children = |pid: u32| -> Vec<u32> {
        let list =
            fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).unwrap_or_default();
        list.split_whitespace()
            .filter_map(|p| p.parse().ok())
            .collect()
    };
    // rootrun's children: the monitor (which has the container under it)
    // and a short-lived page-cache prefetcher.
    let monitor = children(run.child.id())
        .into_iter()
        .find(|p| !children(*p).is_empty())
        .unwrap_or(0);
    let init = children(monitor).first().copied().unwrap_or(0);
    let shell = children(init).first().copied().unwrap_or(0);
    assert!(shell > 0, "no shell process found; output: {}", run.seen);
    let host_signal = libc::SIGRTMIN() + 6;
    // nix's Signal has no real-time signals; kill(1) sends any number.
    let sent = std::process::Command::new("kill")
        .arg(format!("-{host_signal}"))
        .arg(shell.to_string())
        .status()
        .expect("run kill");
    assert!(sent.success(), "kill -{host_signal} {shell} failed");
    let expected = format!("got-{}", libc::SIGRTMIN() + 4);
    run.wait_for("got-", Duration::from_secs(20));
    run.signal(nix::sys::signal::Signal::SIGTERM);
    let (_, seen) = run.finish(LIMIT);
    assert!(
        seen.contains(&expected),
        "host signal {host_signal} did not arrive as {expected}: {seen}"
    );
}

/// On a fresh host binfmt_misc is not mounted; rootrun mounts it in its own
/// namespace to find the handler. Simulated by unmounting it in a private
/// mount namespace of the test's own.
#[test]
fn rootrun_mounts_binfmt_misc_itself_when_the_host_has_not() {
    if !binfmt_ready("binfmt_misc not mounted") {
        return;
    }
    let image = busybox_image("arm64");
    let _lock = host_lock();
    let before = HostState::capture();
    let script = format!(
        "umount {BINFMT_DIR} && test ! -e {BINFMT_DIR}/register && exec {} -q {} -- uname -m",
        env!("CARGO_BIN_EXE_rootrun"),
        image.display()
    );
    let out = run_with_input(
        std::process::Command::new("unshare").args([
            "--mount",
            "--propagation",
            "private",
            "sh",
            "-c",
            &script,
        ]),
        b"",
        LIMIT,
    );
    assert_eq!(text(&out.stdout).trim(), "aarch64", "{}", text(&out.stderr));
    assert!(
        Path::new(BINFMT_DIR).join("register").exists(),
        "the host's binfmt_misc was unmounted"
    );
    before.assert_restored("binfmt_misc not mounted");
}

#[test]
fn inspect_works_as_a_normal_user() {
    let image = busybox_image("arm64");
    if !nix::unistd::geteuid().is_root() {
        // Already a normal user: the plain test above covers it.
        return;
    }
    let out = std::process::Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
        .arg(env!("CARGO_BIN_EXE_rootrun"))
        .args(["inspect", "--json"])
        .arg(&image)
        .output()
        .expect("run inspect as nobody");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(report["arch"], "aarch64");
    assert_eq!(report["evidence"]["elf"]["machine"], 183);
}

/// CI jobs boot-test several architectures at once: concurrent runs must
/// not disturb each other (names, locks, mounts are per run).
#[test]
fn concurrent_runs_of_several_architectures_do_not_interfere() {
    if !binfmt_ready("concurrent runs") {
        return;
    }
    let images: Vec<(PathBuf, &str)> = ARCHES
        .iter()
        .map(|(deb, uname)| (busybox_image(deb), *uname))
        .collect();
    let _lock = host_lock();
    let before = HostState::capture();
    let children: Vec<_> = images
        .iter()
        .map(|(image, _)| {
            rootrun()
                .arg("-q")
                .arg(image)
                .args(["--", "/bin/sh", "-c", "sleep 1; uname -m"])
                .stdin(std::process::Stdio::null())
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .expect("spawn rootrun")
        })
        .collect();
    for (child, (image, uname)) in children.into_iter().zip(&images) {
        let out = wait_with_limit(child, LIMIT);
        assert_eq!(
            text(&out.stdout).trim(),
            *uname,
            "{}: {}",
            image.display(),
            text(&out.stderr)
        );
        assert_eq!(out.status.code(), Some(0));
    }
    before.assert_restored("concurrent runs");
}
