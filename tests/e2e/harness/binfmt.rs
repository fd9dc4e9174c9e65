//! Changing the host's binfmt_misc for a test, and only under the exclusive
//! host lock (`Frame::setup(..).exclusive()`): every change is undone in
//! reverse on drop, also when the test panics. A SIGKILLed run cannot undo
//! anything; tests/setup-host.sh re-enables Debian's handlers and removes
//! `rootrun-test-*-PID` entries and interpreter copies of dead processes.

use std::fs;
use std::marker::PhantomData;
use std::path::{Path, PathBuf};

use rootrun::arch::{self, Arch, Flags, BINFMT_DIR};

use super::frame::Frame;

/// Undoes every binfmt_misc change it made, in reverse, on drop; borrows
/// the frame, so it cannot outlive the exclusive lock.
pub struct Binfmt<'f> {
    undo: Vec<Undo>,
    _frame: PhantomData<&'f Frame>,
}

enum Undo {
    Remove(String),
    Enable(String),
    Register(String),
}

impl Frame {
    /// A guard for changes to binfmt_misc; the frame must be exclusive.
    pub fn binfmt(&self) -> Binfmt<'_> {
        assert!(
            self.is_exclusive(),
            "{}: changes binfmt_misc without the exclusive host lock \
             (Frame::setup(..).exclusive())",
            self.test()
        );
        Binfmt {
            undo: Vec::new(),
            _frame: PhantomData,
        }
    }

    /// A copy of the static QEMU for `arch` at a path that exists only on
    /// the host; its mounts are the test's.
    pub fn host_only_qemu(&self, arch: &str) -> HostOnlyQemu {
        let qemu = HostOnlyQemu::new(arch);
        self.own(&qemu.dir);
        qemu
    }
}

impl Binfmt<'_> {
    fn dir() -> &'static Path {
        Path::new(BINFMT_DIR)
    }

    /// Registers a handler for `arch` with no flags at all (no F).
    pub fn register_without_f(&mut self, name: &str, arch: Arch, interpreter: &Path) {
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

    /// Registers a handler for `arch` with these flag letters (e.g. `OC`).
    pub fn register_with_flags(&mut self, name: &str, arch: Arch, interpreter: &Path, flags: &str) {
        let flags = Flags {
            preserve_argv0: flags.contains('P'),
            open_binary: flags.contains('O'),
            credentials: flags.contains('C'),
            fix_binary: flags.contains('F'),
        };
        let line = arch::register_line(name, &arch::qemu_pattern(arch).kind(), interpreter, flags)
            .expect("build registration line");
        arch::register(Self::dir(), &line).expect("register test handler");
        self.undo.push(Undo::Remove(name.to_owned()));
    }

    pub fn disable(&mut self, name: &str) {
        arch::set_enabled(Self::dir(), name, false).expect("disable handler");
        self.undo.push(Undo::Enable(name.to_owned()));
    }

    /// Takes an enabled entry out of the kernel's list for this test: a
    /// `rootrun-qemu-ARCH` that an interrupted run left would answer for its
    /// architecture. It is registered again on drop.
    pub fn set_aside_if_enabled(&mut self, name: &str) {
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
    pub fn remove_system(&mut self, name: &str) {
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

    /// An entry that rootrun itself is about to register (--register-binfmt)
    /// is removed on drop if it is there.
    pub fn remove_on_drop(&mut self, name: &str) {
        self.undo.push(Undo::Remove(name.to_owned()));
    }
}

impl Binfmt<'_> {
    /// Removes `name` now if it is there (it stays on the undo list).
    pub fn remove_now(&mut self, name: &str) {
        if Self::dir().join(name).exists() {
            arch::remove(Self::dir(), name).expect("remove handler");
        }
    }
}

impl Drop for Binfmt<'_> {
    fn drop(&mut self) {
        for undo in self.undo.drain(..).rev() {
            let _ = match undo {
                Undo::Remove(name) if Self::dir().join(&name).exists() => {
                    arch::remove(Self::dir(), &name)
                }
                Undo::Remove(_) => Ok(()),
                Undo::Enable(name) => arch::set_enabled(Self::dir(), &name, true),
                Undo::Register(line) => arch::register(Self::dir(), &line),
            };
        }
    }
}

/// A copy of the static QEMU at a path that exists only on the host.
pub struct HostOnlyQemu {
    pub dir: PathBuf,
    pub path: PathBuf,
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
