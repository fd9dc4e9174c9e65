//! How the host will run the image's binaries: natively, or through the
//! binfmt_misc handler the kernel picks, and what the container needs for it.
//!
//! fs/binfmt_misc.c is inserted ahead of the ELF loader (insert_binfmt), so a
//! matching enabled entry wins even for a native ELF; only when none matches
//! does the ELF loader run the binary itself, which works when the host CPU
//! can (x86_64 runs i386 too).

use std::path::{Path, PathBuf};

use serde::Serialize;

use super::binfmt::{select, Entry};
use super::Arch;

/// Where binfmt_misc lives (Documentation/admin-guide/binfmt-misc.rst).
pub const BINFMT_DIR: &str = "/proc/sys/fs/binfmt_misc";

/// What the host knows about binfmt_misc.
#[derive(Debug, Clone)]
pub enum Binfmt {
    NotMounted,
    Mounted { enabled: bool, entries: Vec<Entry> },
}

/// How the image's init will run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "how", rename_all = "kebab-case")]
pub enum Emulation {
    /// The host CPU runs it.
    Native,
    /// A handler with the `F` flag: the kernel opened the interpreter at
    /// registration, so it works inside any root; nothing to add.
    Preloaded { entry: String, interpreter: PathBuf },
    /// A handler without `F`: the kernel opens `interpreter` inside the
    /// container at each exec, so the host file (`host_file`, symlinks
    /// resolved) is bind-mounted read-only at that very path.
    BindMount {
        entry: String,
        interpreter: PathBuf,
        host_file: PathBuf,
    },
    /// `--unprivileged`: a binfmt_misc of the container's own user
    /// namespace, where rootrun registers `interpreter` (a host file) with
    /// the `F` flag before init runs; the host's table is not used.
    Private {
        interpreter: PathBuf,
        /// The line written to that binfmt_misc's `register`.
        line: String,
    },
}

impl Emulation {
    /// The host file of the emulator that runs the image (symlinks not yet
    /// resolved); None when native.
    pub fn emulator_file(&self) -> Option<&Path> {
        match self {
            Emulation::Native => None,
            Emulation::Preloaded { interpreter, .. } => Some(interpreter),
            Emulation::BindMount { host_file, .. } => Some(host_file),
            Emulation::Private { interpreter, .. } => Some(interpreter),
        }
    }

    /// One line for the start banner and `inspect`.
    pub fn describe(&self, arch: Arch) -> String {
        match self {
            Emulation::Native => format!("{arch}, native"),
            Emulation::Preloaded { interpreter, .. } => {
                format!("{arch} under {}, preloaded (F flag)", interpreter.display())
            }
            Emulation::BindMount { interpreter, .. } => {
                format!("{arch} under {}, bind-mounted", interpreter.display())
            }
            Emulation::Private { interpreter, .. } => format!(
                "{arch} under {}, in the container's own binfmt_misc (F flag)",
                interpreter.display()
            ),
        }
    }
}

/// Why the image cannot run here, with the fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EmulationError {
    #[error("{arch} binaries need binfmt_misc, which is not mounted; {}", fix(*arch))]
    NotMounted { arch: Arch },
    #[error("binfmt_misc is disabled (0 in {BINFMT_DIR}/status); enable it: echo 1 > {BINFMT_DIR}/status")]
    GloballyDisabled { arch: Arch },
    #[error("no binfmt_misc handler for {arch} binaries; {}", fix(*arch))]
    NoHandler { arch: Arch },
    #[error("the binfmt_misc handler {entry} for {arch} is disabled; enable it: echo 1 > {BINFMT_DIR}/{entry}")]
    Disabled { arch: Arch, entry: String },
    #[error(
        "the binfmt_misc handler {entry} for {arch} names {}, which does not exist; {}",
        interpreter.display(),
        fix(*arch)
    )]
    InterpreterMissing {
        arch: Arch,
        entry: String,
        interpreter: PathBuf,
    },
    #[error(
        "the interpreter {} of binfmt_misc handler {entry} is dynamically linked (loader {}), so it cannot \
         run inside a {arch} root; use a static emulator: apt-get install qemu-user-static \
         (Debian 12) or qemu-user (Debian 13, where it is static)",
        interpreter.display(),
        loader.display()
    )]
    DynamicInterpreter {
        arch: Arch,
        entry: String,
        interpreter: PathBuf,
        loader: PathBuf,
    },
}

fn fix(arch: Arch) -> String {
    format!(
        "install the emulator (Debian 12: apt-get install qemu-user-static, which provides \
         /usr/bin/qemu-{q}-static; Debian 13: apt-get install qemu-user qemu-user-binfmt, \
         which provide /usr/bin/qemu-{q} and register it), \
         then register it: rootrun --register-binfmt ... (or: mount -t binfmt_misc binfmt_misc {BINFMT_DIR}; \
         cat /usr/lib/binfmt.d/qemu-{q}.conf > {BINFMT_DIR}/register)",
        q = arch.qemu()
    )
}

/// The handler the kernel will use for `head` (the first bytes of init)
/// and what that means for the container. Pure: `interpreter_facts` is asked
/// about the interpreter's host file only when a handler is chosen.
pub fn decide(
    arch: Arch,
    head: &[u8],
    file_name: &str,
    host: Arch,
    binfmt: &Binfmt,
    interpreter_facts: &dyn Fn(&Path) -> InterpreterFacts,
) -> Result<Emulation, EmulationError> {
    let native = arch.runs_natively(host);
    let (enabled, entries) = match binfmt {
        Binfmt::NotMounted if native => return Ok(Emulation::Native),
        Binfmt::NotMounted => return Err(EmulationError::NotMounted { arch }),
        Binfmt::Mounted { enabled: false, .. } if native => return Ok(Emulation::Native),
        Binfmt::Mounted { enabled: false, .. } => {
            return Err(EmulationError::GloballyDisabled { arch })
        }
        Binfmt::Mounted { enabled, entries } => (*enabled, entries),
    };
    debug_assert!(enabled);
    let Some(entry) = select(entries, head, file_name) else {
        if native {
            return Ok(Emulation::Native);
        }
        return Err(match disabled_match(entries, head, file_name) {
            Some(entry) => EmulationError::Disabled {
                arch,
                entry: entry.name.clone(),
            },
            None => EmulationError::NoHandler { arch },
        });
    };
    let name = entry.name.clone();
    let interpreter = entry.interpreter.clone();
    match (interpreter_facts(&interpreter), entry.flags.fix_binary) {
        // Dynamic: its loader would be looked up inside the foreign root.
        // (With F this inspects the file now at the path, which is the one
        // the kernel opened unless it was replaced since.)
        (InterpreterFacts::Dynamic { loader }, _) => Err(EmulationError::DynamicInterpreter {
            arch,
            entry: name,
            interpreter,
            loader,
        }),
        // With F the kernel holds the file open: a path gone since
        // registration does not matter.
        (_, true) => Ok(Emulation::Preloaded {
            entry: name,
            interpreter,
        }),
        (InterpreterFacts::Missing, false) => Err(EmulationError::InterpreterMissing {
            arch,
            entry: name,
            interpreter,
        }),
        (InterpreterFacts::Static { host_file }, false) => Ok(Emulation::BindMount {
            entry: name,
            interpreter,
            host_file,
        }),
    }
}

/// A disabled entry that would have matched: the likely culprit.
fn disabled_match<'a>(entries: &'a [Entry], head: &[u8], file_name: &str) -> Option<&'a Entry> {
    let all_on: Vec<Entry> = entries
        .iter()
        .cloned()
        .map(|e| Entry { enabled: true, ..e })
        .collect();
    let name = select(&all_on, head, file_name)?.name.clone();
    entries.iter().find(|e| e.name == name)
}

/// What the host says about a handler's interpreter file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InterpreterFacts {
    Missing,
    Dynamic {
        loader: PathBuf,
    },
    /// Statically linked (or not telling); `host_file` has symlinks resolved.
    Static {
        host_file: PathBuf,
    },
}

/// Reads the interpreter's ELF header on the host.
pub fn inspect_interpreter(path: &Path) -> InterpreterFacts {
    let Ok(host_file) = std::fs::canonicalize(path) else {
        return InterpreterFacts::Missing;
    };
    let head = read_head(&host_file, 4096).unwrap_or_default();
    match super::elf::identify(&head)
        .ok()
        .and_then(|facts| facts.interp().map(Path::to_path_buf))
    {
        Some(loader) => InterpreterFacts::Dynamic { loader },
        None => InterpreterFacts::Static { host_file },
    }
}

fn read_head(path: &Path, max: usize) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let mut head = Vec::with_capacity(max);
    std::fs::File::open(path)?
        .take(max as u64)
        .read_to_end(&mut head)?;
    Ok(head)
}

/// binfmt_misc from a listing of its files (`(name, contents)` in the
/// kernel's order, newest entry first), e.g. read where rootrun had to
/// mount it first (`sys::binfmt_probe`).
pub fn binfmt_from_listing(listing: &[(String, String)]) -> Result<Binfmt, super::ArchError> {
    let bad = |problem: String| super::ArchError::BadEntry {
        path: Path::new(BINFMT_DIR).join("status"),
        problem,
    };
    let mut enabled = None;
    let mut entries = Vec::new();
    let count = listing.len() as u64;
    for (index, (name, text)) in listing.iter().enumerate() {
        match name.as_str() {
            "register" => {}
            "status" => {
                enabled = Some(match text.trim_end() {
                    "enabled" => true,
                    "disabled" => false,
                    other => return Err(bad(format!("unexpected status {other:?}"))),
                })
            }
            _ => {
                let order_key = super::OrderKey {
                    rank: count - index as u64,
                };
                let entry = super::parse_entry(name, text, order_key).map_err(|problem| {
                    super::ArchError::BadEntry {
                        path: Path::new(BINFMT_DIR).join(name),
                        problem,
                    }
                })?;
                entries.push(entry);
            }
        }
    }
    entries.sort_by_key(|e| std::cmp::Reverse(e.order_key));
    Ok(Binfmt::Mounted {
        enabled: enabled.ok_or_else(|| bad("no status file".into()))?,
        entries,
    })
}

/// Reads the host's binfmt_misc state (not mounted is a state, not an error).
pub fn read_binfmt(dir: &Path) -> Result<Binfmt, super::ArchError> {
    if !dir.join("register").exists() {
        return Ok(Binfmt::NotMounted);
    }
    Ok(Binfmt::Mounted {
        enabled: super::global_enabled(dir)?,
        entries: super::read_entries(dir)?,
    })
}

#[cfg(test)]
#[path = "emulation_tests.rs"]
mod tests;
