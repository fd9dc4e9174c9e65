//! The harness's own tests: the skip policy, the fixture cache, the lock,
//! and above all that the host-state check catches what a test leaves of
//! its own and ignores what others have.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use super::fixtures::{busybox_image, busybox_key, cached, ImageSpec};
use super::host_state::{cgroup_hierarchies, names_container, names_path, own_mount, Owner};
use super::lock::LOCK_FILE;
use super::skip::{verdict, Verdict};
use super::Frame;

#[test]
fn a_test_that_cannot_run_fails_under_ci_and_notes_why_elsewhere() {
    let reason = "needs root (it boots containers through liblxc)";
    match verdict("boot pipe mode", reason, true) {
        Verdict::Fail(message) => assert!(
            message.starts_with("boot pipe mode: needs root") && message.contains("CI"),
            "{message}"
        ),
        Verdict::Note(message) => panic!("a note under CI: {message}"),
    }
    assert_eq!(
        verdict("boot pipe mode", reason, false),
        Verdict::Note(format!("NOTE: boot pipe mode: {reason}; not run"))
    );
}

#[test]
fn container_names_match_whole_pids_only() {
    assert!(names_container("lxc.payload.rootrun-42", "rootrun-42"));
    assert!(names_container("lxc.monitor.rootrun-42-1", "rootrun-42"));
    assert!(names_container(
        "/run/lxc/lock/run/rootrun/lxc/rootrun-42",
        "rootrun-42"
    ));
    assert!(!names_container("lxc.payload.rootrun-421", "rootrun-42"));
    assert!(!names_container("lxc.payload.xrootrun-42", "rootrun-42"));
    assert!(!names_container("/var/cache/rootrun-tests", "rootrun-42"));
}

#[test]
fn paths_match_whole_components_only() {
    assert!(names_path("lowerdir=/w/t/a,upperdir=/x", "/w/t/a"));
    assert!(names_path("lowerdir=/x:/w/t/a/lower", "/w/t/a"));
    assert!(!names_path("lowerdir=/w/t/ab", "/w/t/a"));
    assert!(!names_path("lowerdir=/v/w/t/a", "/w/t/a"));
}

#[test]
fn mounts_are_the_tests_by_path_loop_device_or_container_name() {
    let paths = [PathBuf::from("/work/target/tmp/e2e/7/t")];
    let containers = ["rootrun-42".to_owned()];
    let owner = Owner {
        paths: &paths,
        containers: &containers,
    };
    let loops = ["/dev/loop3".to_owned()];
    let line = |point: &str, tail: &str| format!("50 30 0:50 / {point} rw,relatime - {tail}");
    let own = [
        line("/work/target/tmp/e2e/7/t/mnt", "tmpfs tmpfs rw"),
        line("/x/lower", "squashfs /dev/loop3 ro"),
        line(
            "/x/rootfs",
            "overlay overlay rw,lowerdir=/work/target/tmp/e2e/7/t/tree",
        ),
        line("/run/rootrun/rootrun-42", "tmpfs tmpfs rw"),
        line("/work/target/tmp/e2e/7/t/with\\040space", "tmpfs tmpfs rw"),
    ];
    for line in &own {
        assert!(own_mount(line, &owner, &loops), "not the test's: {line}");
    }
    let others = [
        line("/work/target/tmp/e2e/7/tt/mnt", "tmpfs tmpfs rw"),
        line("/x/lower", "squashfs /dev/loop30 ro"),
        line("/var/cache/rootrun-tests/x", "squashfs /dev/loop4 ro"),
        line("/run/rootrun", "tmpfs tmpfs rw"),
        line("/run/lxc/rootrun-421", "tmpfs tmpfs rw"),
    ];
    for line in &others {
        assert!(!own_mount(line, &owner, &loops), "the test's: {line}");
    }
}

#[test]
fn fixture_keys_follow_content_not_mtimes() {
    let Some(frame) = Frame::setup("fixture keys").any_user().start() else {
        return;
    };
    let extra = frame.dir("extra");
    fs::create_dir_all(extra.join("etc")).unwrap();
    let file = extra.join("etc/init");
    fs::write(&file, "#!/bin/sh\n").unwrap();
    let spec = ImageSpec {
        extra: Some(&extra),
        ..ImageSpec::busybox("arm64")
    };
    let key = |spec: &ImageSpec, script: &[u8], version: &str| {
        busybox_key(spec, script, version).expect("key")
    };
    let first = key(&spec, b"script", "1.0");
    assert_eq!(first, key(&spec, b"script", "1.0"));
    // A new mtime (tests write their extra files on every run): same key.
    fs::File::open(&file)
        .unwrap()
        .set_modified(std::time::UNIX_EPOCH)
        .unwrap();
    assert_eq!(first, key(&spec, b"script", "1.0"));
    // Anything that changes the image: another key.
    let others = [
        key(&ImageSpec::busybox("arm64"), b"script", "1.0"),
        key(
            &ImageSpec {
                arch: "armhf",
                ..spec
            },
            b"script",
            "1.0",
        ),
        key(
            &ImageSpec {
                compression: "xz",
                ..spec
            },
            b"script",
            "1.0",
        ),
        key(&spec, b"script v2", "1.0"),
        key(&spec, b"script", "1.1"),
    ];
    for other in &others {
        assert_ne!(&first, other);
    }
    fs::set_permissions(&file, fs::Permissions::from_mode(0o755)).unwrap();
    let chmodded = key(&spec, b"script", "1.0");
    assert_ne!(first, chmodded);
    fs::write(&file, "#!/bin/sh\necho\n").unwrap();
    assert_ne!(chmodded, key(&spec, b"script", "1.0"));
    frame.check();
}

#[test]
fn concurrent_builders_of_one_fixture_build_it_once() {
    let Some(frame) = Frame::setup("fixture builders").any_user().start() else {
        return;
    };
    let entry = frame.path("cache/entry.img");
    let builds = AtomicUsize::new(0);
    let build = |tmp: &Path| {
        builds.fetch_add(1, Ordering::SeqCst);
        std::thread::sleep(Duration::from_millis(300));
        fs::write(tmp, "built").unwrap();
    };
    let (a, b) = std::thread::scope(|scope| {
        let a = scope.spawn(|| cached(&entry, "self-test entry (not a fixture)", build));
        let b = scope.spawn(|| cached(&entry, "self-test entry (not a fixture)", build));
        (a.join().unwrap(), b.join().unwrap())
    });
    assert_eq!(builds.load(Ordering::SeqCst), 1, "built more than once");
    assert_eq!(a.unwrap(), entry);
    assert_eq!(b.unwrap(), entry);
    assert_eq!(fs::read_to_string(&entry).unwrap(), "built");
    let names: Vec<String> = fs::read_dir(frame.path("cache"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        !names.iter().any(|n| n.contains(".tmp-")),
        "a temporary build was left: {names:?}"
    );
    // Found, not built, the next time.
    cached(&entry, "self-test entry (not a fixture)", |_| {
        panic!("built again")
    })
    .unwrap();
    frame.check();
}

#[test]
fn a_test_changing_binfmt_misc_excludes_every_other_across_processes() {
    let Some(frame) = Frame::setup("host lock shared")
        .any_user()
        .tools(&["flock"])
        .start()
    else {
        return;
    };
    // flock(1) exits 1 when it cannot lock at once.
    let try_lock = |mode: &str| {
        Command::new("flock")
            .args(["--nonblock", mode, LOCK_FILE, "true"])
            .status()
            .expect("run flock")
            .code()
    };
    assert_eq!(try_lock("--exclusive"), Some(1), "exclusive while shared");
    frame.check();
    let Some(frame) = Frame::setup("host lock exclusive")
        .any_user()
        .exclusive()
        .start()
    else {
        return;
    };
    assert_eq!(try_lock("--shared"), Some(1), "shared while exclusive");
    frame.check();
}

/// Runs its closure on drop: undoes a fake leftover even if the test fails.
struct OnDrop<F: FnMut()>(F);

impl<F: FnMut()> Drop for OnDrop<F> {
    fn drop(&mut self) {
        (self.0)()
    }
}

fn run(program: &str, args: &[&str]) -> String {
    let out = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("run {program}: {e}"));
    assert!(
        out.status.success(),
        "{program} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// A read-only loop device on `file`, detached on drop.
fn loop_device(file: &Path) -> (String, OnDrop<impl FnMut()>) {
    let device = run(
        "losetup",
        &["--read-only", "--find", "--show", &file.to_string_lossy()],
    );
    let detach = device.clone();
    (
        device,
        OnDrop(move || drop(run("losetup", &["--detach", &detach]))),
    )
}

/// A tmpfs on `dir`, unmounted on drop.
fn tmpfs(dir: &Path) -> OnDrop<impl FnMut()> {
    fs::create_dir_all(dir).unwrap();
    let dir = dir.to_string_lossy().into_owned();
    run("mount", &["-t", "tmpfs", "rootrun-harness-test", &dir]);
    OnDrop(move || drop(run("umount", &[&dir])))
}

/// A directory (a cgroup, a run-time entry), removed on drop.
fn directory(path: PathBuf) -> OnDrop<impl FnMut()> {
    fs::create_dir(&path).unwrap_or_else(|e| panic!("mkdir {}: {e}", path.display()));
    OnDrop(move || drop(fs::remove_dir(&path)))
}

/// A process that stays alive while the test runs (so no rootrun's sweep
/// takes a cgroup named for it as stale), killed on drop.
fn sleeper(child: Child) -> (u32, OnDrop<impl FnMut()>) {
    let pid = child.id();
    let mut child = Some(child);
    (
        pid,
        OnDrop(move || {
            if let Some(mut child) = child.take() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }),
    )
}

fn sleep_command() -> Command {
    let mut cmd = Command::new("sleep");
    cmd.arg("600").stdin(Stdio::null());
    cmd
}

/// A cgroup hierarchy where a directory can be made.
fn hierarchy() -> PathBuf {
    let mountinfo = fs::read_to_string("/proc/self/mountinfo").unwrap();
    cgroup_hierarchies(&mountinfo)
        .into_iter()
        .next()
        .expect("a cgroup hierarchy")
}

#[test]
fn the_host_state_check_catches_what_the_test_left_and_ignores_others() {
    let Some(frame) = Frame::setup("harness check")
        .tools(&["losetup", "mount", "umount", "sleep"])
        .start()
    else {
        return;
    };
    let Some(image) = frame.busybox("amd64") else {
        return;
    };
    let cgroups = hierarchy();
    let run_dir = Path::new("/run/lxc");
    fs::create_dir_all(run_dir).unwrap();

    // Not the test's: another run's loop device on the shared cache entry
    // (the failure that started this), one on a file made outside the
    // frame, a mount outside its paths, a cgroup and a run-time entry
    // named for a process it did not spawn.
    let cache_entry = busybox_image(&ImageSpec::busybox("amd64")).unwrap();
    let outside =
        Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("e2e-outside-{}", std::process::id()));
    fs::create_dir_all(&outside).unwrap();
    let _outside_dir = OnDrop(|| drop(fs::remove_dir_all(&outside)));
    let other_file = outside.join("other.img");
    fs::write(&other_file, vec![0u8; 1 << 20]).unwrap();
    let (other_loop, _l1) = loop_device(&other_file);
    let (cache_loop, _l2) = loop_device(&cache_entry);
    let other_mount = outside.join("mnt");
    let _m1 = tmpfs(&other_mount);
    let (stranger, _s1) = sleeper(sleep_command().spawn().unwrap());
    let other_cgroup = cgroups.join(format!("lxc.payload.rootrun-{stranger}"));
    let _c1 = directory(other_cgroup.clone());
    let other_entry = run_dir.join(format!("rootrun-{stranger}"));
    let _e1 = directory(other_entry.clone());

    // The test's: a loop device on its image, a mount in its work
    // directory, a cgroup and a run-time entry named for a process it
    // spawned.
    let (own_loop, own_loop_guard) = loop_device(&image);
    let own_mount_dir = frame.path("mnt");
    let own_mount_guard = tmpfs(&own_mount_dir);
    let (own_pid, own_process) = sleeper(frame.spawn(&mut sleep_command()));
    let own_cgroup = cgroups.join(format!("lxc.monitor.rootrun-{own_pid}"));
    let own_cgroup_guard = directory(own_cgroup.clone());
    let own_entry = run_dir.join(format!("rootrun-{own_pid}"));
    let own_entry_guard = directory(own_entry.clone());

    let found = frame.leftovers();
    let is_loop =
        |line: &String, device: &str| line.starts_with(&format!("loop device {device} on "));
    let is_mount = |line: &String, dir: &Path| {
        line.starts_with("mount ") && line.contains(&format!(" {} ", dir.display()))
    };
    assert!(
        found.iter().any(|l| is_loop(l, &own_loop)),
        "{own_loop} missed: {found:#?}"
    );
    assert!(
        found.iter().any(|l| is_mount(l, &own_mount_dir)),
        "mount missed: {found:#?}"
    );
    assert!(
        found.contains(&format!("cgroup {}", own_cgroup.display())),
        "cgroup missed: {found:#?}"
    );
    assert!(
        found.contains(&format!("run-time entry {}", own_entry.display())),
        "run-time entry missed: {found:#?}"
    );
    assert_eq!(found.len(), 4, "more than the test's own: {found:#?}");
    for device in [&other_loop, &cache_loop] {
        assert!(
            !found.iter().any(|l| is_loop(l, device)),
            "{device}: {found:#?}"
        );
    }
    assert!(
        !found.iter().any(|l| is_mount(l, &other_mount)),
        "{found:#?}"
    );
    // The check fails while the test's own leftovers are there...
    let failed = catch_unwind(AssertUnwindSafe(|| {
        frame.assert_restored_within(Duration::from_millis(300))
    }));
    assert!(failed.is_err(), "the check missed the test's own leftovers");

    // ...and passes once they are gone, with the others still there.
    drop((
        own_loop_guard,
        own_mount_guard,
        own_cgroup_guard,
        own_entry_guard,
    ));
    drop(own_process);
    assert!(other_cgroup.exists() && other_entry.exists());
    frame.check();
}
