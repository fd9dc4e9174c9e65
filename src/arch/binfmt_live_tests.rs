//! Tests against the running kernel's binfmt_misc. They register entries
//! named `rootrun-test-<pid>-*`, remove them (a Drop guard, so also on
//! panic) and touch no other entry. They need root and a mounted
//! binfmt_misc; without them they fail when CI=true and otherwise pass
//! with a printed note.

use super::{read_entries, register, register_line, remove, select, set_enabled, Flags, Kind};
use std::fs;
use std::io::ErrorKind;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

const DIR: &str = "/proc/sys/fs/binfmt_misc";

fn precondition() -> Result<(), String> {
    if !nix::unistd::geteuid().is_root() {
        return Err("needs root to register binfmt_misc entries".into());
    }
    if !Path::new(DIR).join("register").exists() {
        return Err(format!(
            "binfmt_misc is not mounted (mount -t binfmt_misc binfmt_misc {DIR})"
        ));
    }
    Ok(())
}

fn may_run(test: &str) -> bool {
    match precondition() {
        Ok(()) => true,
        // As root nothing excuses a skip; elsewhere only CI insists.
        Err(why)
            if std::env::var("CI").as_deref() == Ok("true") || nix::unistd::geteuid().is_root() =>
        {
            panic!("{test}: {why}; as root (and under CI=true) this test must run: run tests/setup-host.sh")
        }
        Err(why) => {
            println!("note: {test} not run: {why}");
            false
        }
    }
}

/// Removes the entries this test registered and its temporary directory.
struct Guard {
    tmp: PathBuf,
    names: Vec<String>,
}

impl Drop for Guard {
    fn drop(&mut self) {
        for n in &self.names {
            if Path::new(DIR).join(n).exists() {
                let _ = remove(Path::new(DIR), n);
            }
        }
        let _ = fs::remove_dir_all(&self.tmp);
    }
}

impl Guard {
    fn new(tag: &str) -> Guard {
        let tmp = std::env::temp_dir().join(format!("rootrun-test-{}-{tag}", std::process::id()));
        let _ = fs::remove_dir_all(&tmp);
        let made = fs::create_dir(&tmp);
        assert!(made.is_ok(), "mkdir {}: {made:?}", tmp.display());
        Guard {
            tmp,
            names: Vec::new(),
        }
    }

    fn name(&self, which: &str) -> String {
        format!("rootrun-test-{}-{which}", std::process::id())
    }

    /// Register `which` with a shell-script interpreter that prints `which`.
    fn register(&mut self, which: &str, magic: &[u8]) {
        let interp = self.tmp.join(format!("interp-{which}"));
        write_exec(&interp, format!("#!/bin/sh\necho {which}\n").as_bytes());
        let name = self.name(which);
        let kind = Kind::Magic {
            offset: 0,
            magic: magic.to_vec(),
            mask: Vec::new(),
        };
        let line = register_line(&name, &kind, &interp, Flags::default());
        let line = line.unwrap_or_else(|e| panic!("{e}"));
        self.names.push(name);
        let r = register(Path::new(DIR), &line);
        assert!(r.is_ok(), "{r:?}");
    }

    /// Removes the entry and registers it again (it becomes the newest).
    fn reregister(&mut self, which: &str, magic: &[u8]) {
        let name = self.name(which);
        let r = remove(Path::new(DIR), &name);
        assert!(r.is_ok(), "{r:?}");
        self.names.retain(|n| *n != name);
        self.register(which, magic);
    }

    fn set(&self, which: &str, on: bool) {
        let r = set_enabled(Path::new(DIR), &self.name(which), on);
        assert!(r.is_ok(), "{r:?}");
    }
}

fn write_exec(path: &Path, data: &[u8]) {
    let r = fs::write(path, data)
        .and_then(|_| fs::set_permissions(path, fs::Permissions::from_mode(0o755)));
    assert!(r.is_ok(), "write {}: {r:?}", path.display());
}

/// What the kernel actually runs: the interpreter prints its tag.
fn kernel_choice(prog: &Path) -> String {
    for _ in 0..50 {
        match Command::new(prog).output() {
            Ok(o) => return String::from_utf8_lossy(&o.stdout).trim().to_string(),
            // Another test thread may hold the freshly written file open
            // for writing across a fork (ETXTBSY); retry.
            Err(e) if e.raw_os_error() == Some(libc::ETXTBSY) => {
                std::thread::sleep(Duration::from_millis(20))
            }
            Err(e) if e.kind() == ErrorKind::NotFound => return "ENOENT".into(),
            Err(e) => return format!("error: {e}"),
        }
    }
    "ETXTBSY forever".into()
}

/// What `select` predicts, as the same tag.
fn predicted(g: &Guard, head: &[u8], prog: &Path) -> String {
    let entries = read_entries(Path::new(DIR)).unwrap_or_else(|e| panic!("{e}"));
    let prefix = g.name("");
    match select(&entries, head, &prog.to_string_lossy()) {
        Some(e) => e.name.strip_prefix(&prefix).unwrap_or(&e.name).to_string(),
        None => "none".into(),
    }
}

#[test]
fn newest_enabled_match_wins_and_disabled_is_skipped() {
    if !may_run("newest_enabled_match_wins_and_disabled_is_skipped") {
        return;
    }
    let mut g = Guard::new("order");
    let mut magic = b"\x01RRT".to_vec();
    magic.extend_from_slice(&std::process::id().to_le_bytes());
    let prog = g.tmp.join("prog");
    let mut content = magic.clone();
    content.push(b'\n');
    write_exec(&prog, &content);

    // Back to back, within one jiffy: only the directory order tells them
    // apart (ctime and inode numbers cannot).
    g.register("A", &magic);
    g.register("B", &magic);

    // Registered later, so tried first.
    assert_eq!(kernel_choice(&prog), "B");
    assert_eq!(predicted(&g, &content, &prog), "B");
    // A disabled entry is skipped: the older one runs.
    g.set("B", false);
    assert_eq!(kernel_choice(&prog), "A");
    assert_eq!(predicted(&g, &content, &prog), "A");
    // Disabling the older entry leaves the newer in charge.
    g.set("B", true);
    g.set("A", false);
    assert_eq!(kernel_choice(&prog), "B");
    assert_eq!(predicted(&g, &content, &prog), "B");
    // Both disabled: no handler, so exec fails (not an ELF, not a script).
    g.set("B", false);
    assert_ne!(kernel_choice(&prog), "A");
    assert_eq!(predicted(&g, &content, &prog), "none");
    // Removing and registering A again makes it the newest.
    g.set("A", true);
    g.set("B", true);
    g.reregister("A", &magic);
    assert_eq!(kernel_choice(&prog), "A");
    assert_eq!(predicted(&g, &content, &prog), "A");
}

#[test]
fn later_entry_shadows_the_system_qemu_entry() {
    use super::{qemu_pattern, Arch};
    if !may_run("later_entry_shadows_the_system_qemu_entry") {
        return;
    }
    // sh4eb: a CPU nothing else on a test machine runs, so the few
    // milliseconds our entry shadows the system's cannot hurt anyone.
    let arch = Arch::Sh4eb;
    let mut g = Guard::new("shadow");
    let prog = g.tmp.join("prog");
    let head = super::test_elf::elf(32, true, 42, 0);
    write_exec(&prog, &head);
    let system = format!("qemu-{}", arch.qemu());
    let had_system = Path::new(DIR).join(&system).exists();

    g.register("shadow", &qemu_pattern(arch).magic);
    // The kernel runs our (newest) entry, and select agrees.
    assert_eq!(kernel_choice(&prog), "shadow");
    assert_eq!(predicted(&g, &head, &prog), "shadow");
    g.set("shadow", false);
    let want = if had_system { system } else { "none".into() };
    assert_eq!(predicted(&g, &head, &prog), want);
}
