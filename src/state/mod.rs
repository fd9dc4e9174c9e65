//! Named containers: what `ls`, `exec`, `stop`, `console` and `logs` find.
//!
//! Every running rootrun owns a directory `/run/rootrun/NAME` on the host:
//!
//! - `lock`: flock(2)ed by the supervisor (the rootrun process that runs
//!   the container) for as long as it lives. The kernel drops the lock when
//!   that process dies, even by SIGKILL, so a directory whose lock is free
//!   is stale, and whoever meets it (the next claim, `ls`, `stop`) removes
//!   it.
//! - `state.json`: the `Record`.
//! - `control.sock`: the supervisor's control socket (`control`).
//! - `console.log`: a detached container's console output; `rootrun.log`:
//!   a detached supervisor's own notes.
//!
//! A directory is made under a temporary name with its lock already taken
//! and then renamed into place with RENAME_NOREPLACE: a name is taken
//! atomically, and a live container's directory is never seen unlocked.
//! The supervisor's private tmpfs covers /run/rootrun in its own mount
//! namespace, so it keeps its directory by fd.

pub mod control;

use std::ffi::{CStr, CString};
use std::fs::File;
use std::io::Write;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use nix::errno::Errno;
use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::sys::{fsops, SysError};

/// Where the containers' directories are (the host's side of STATE_DIR).
pub const DIR: &str = crate::plan::STATE_DIR;

const STATE: &CStr = c"state.json";
const STATE_NEW: &CStr = c"state.json.new";
pub const CONTROL: &str = "control.sock";
pub const CONSOLE_LOG: &str = "console.log";
/// The console log before the last rotation (`ConsoleLog`).
pub const CONSOLE_LOG_OLD: &str = "console.log.1";
pub const SUPERVISOR_LOG: &str = "rootrun.log";
/// A symlink to the run's log directory (liblxc's log, the emulator's
/// traces): `/proc/SUPERVISOR/root/...` into the supervisor's mount
/// namespace, or the `--keep-logs` directory.
pub const LOGS: &str = "logs";

/// Every file a container's directory may hold.
const FILES: [&str; 8] = [
    "lock",
    "state.json",
    "state.json.new",
    CONTROL,
    CONSOLE_LOG,
    CONSOLE_LOG_OLD,
    SUPERVISOR_LOG,
    LOGS,
];

/// How many `-N` suffixes a default name tries before giving up.
const SUFFIXES: u32 = 999;

/// What `ls` shows and `exec` needs of one container.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    pub name: String,
    /// The rootrun process that runs the container.
    pub supervisor: i32,
    /// liblxc's name and lxcpath (inside the supervisor's mount namespace).
    pub lxc_name: String,
    pub lxcpath: PathBuf,
    /// The container's root as the supervisor's mount namespace sees it.
    pub rootfs: PathBuf,
    pub image: PathBuf,
    /// Debian's name (arm64, armhf, ...); None when unknown.
    pub architecture: Option<String>,
    /// How it runs: "native" or the emulator and handler.
    pub emulation: String,
    /// The host uid of guest root: 0, or an unprivileged one
    /// (`--unprivileged`).
    #[serde(default)]
    pub host_root_uid: u32,
    /// "boot" or "command".
    pub mode: String,
    /// How a stop asks init to halt.
    pub halt: String,
    pub detached: bool,
    /// Seconds since the epoch.
    pub started: u64,
    /// The container's init as the host sees it, once it runs.
    pub init_pid: Option<i32>,
    /// A stop was requested.
    pub stopping: bool,
}

impl Record {
    /// "starting", "running" or "stopping".
    pub fn state(&self) -> &'static str {
        match (self.stopping, self.init_pid) {
            (true, _) => "stopping",
            (false, None) => "starting",
            (false, Some(_)) => "running",
        }
    }
}

/// Seconds since the epoch, now.
pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// A container's directory, owned by its supervisor: removed when dropped.
pub struct Owned {
    parent: OwnedFd,
    dir: OwnedFd,
    name: String,
    /// Held, locked, until the process exits (fork shares it: a detached
    /// supervisor keeps it after the foreground rootrun returns).
    _lock: OwnedFd,
    listener: UnixListener,
    record: Record,
}

impl Owned {
    /// Takes `requested`, or else `default` (then `default-2`, `-3`, ...
    /// while taken), sweeping stale directories on the way.
    pub fn claim(requested: Option<&str>, default: &str, record: Record) -> Result<Owned, Error> {
        let parent = open_parent()?;
        // What rootruns killed by SIGKILL left: their directories, unlocked.
        sweep_claims(parent.as_fd());
        sweep_stale(&parent);
        let candidates: Box<dyn Iterator<Item = String>> = match requested {
            Some(name) => Box::new(std::iter::once(name.to_owned())),
            None => Box::new(
                std::iter::once(default.to_owned())
                    .chain((2..=SUFFIXES).map(move |n| format!("{default}-{n}"))),
            ),
        };
        for name in candidates {
            if let Some(owned) = try_claim(&parent, &name, &record)? {
                return Ok(owned);
            }
            if requested.is_some() {
                return Err(Error::Usage(format!(
                    "a container named {name} is running already (rootrun ls); choose \
                     another --name"
                )));
            }
        }
        Err(Error::Usage(format!(
            "{SUFFIXES} containers named after {default} run already; give one a --name"
        )))
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn record(&self) -> &Record {
        &self.record
    }

    pub fn listener(&self) -> &UnixListener {
        &self.listener
    }

    /// Changes the record and writes it (whole, by rename).
    pub fn update(&mut self, change: impl FnOnce(&mut Record)) -> Result<(), SysError> {
        change(&mut self.record);
        write_record(self.dir.as_fd(), &self.record)
    }

    /// `logs`, a symlink to `target` (the run's log directory).
    pub fn link_logs(&self, target: &Path) -> Result<(), SysError> {
        let c_target = CString::new(target.as_os_str().as_encoded_bytes())
            .map_err(|_| SysError::new("link the logs to", target, Errno::EINVAL))?;
        fsops::symlink_at(&c_target, self.dir.as_fd(), c"logs")
            .map_err(|e| SysError::new("link the logs to", target, e))
    }

    /// Creates (or empties) `file` in the directory, for writing.
    pub fn create(&self, file: &str) -> Result<File, SysError> {
        create_in(self.dir.as_fd(), file)
    }

    /// Renames `from` to `to` in the directory (console log rotation).
    pub fn rotate(&self, from: &str, to: &str) -> Result<(), SysError> {
        let (from, to) = (cstring(from)?, cstring(to)?);
        nix::fcntl::renameat(
            self.dir.as_fd(),
            from.as_c_str(),
            self.dir.as_fd(),
            to.as_c_str(),
        )
        .map_err(|e| SysError::new("rename", Path::new(DIR).join(&self.name), e))
    }
}

impl Drop for Owned {
    fn drop(&mut self) {
        remove_dir(self.parent.as_fd(), self.dir.as_fd(), &self.name);
    }
}

/// One container found in /run/rootrun.
#[derive(Debug, Clone)]
pub struct Found {
    pub record: Record,
    pub dir: PathBuf,
}

impl Found {
    pub fn path(&self, file: &str) -> PathBuf {
        self.dir.join(file)
    }

    /// Whether its supervisor still holds the lock.
    pub fn alive(&self) -> bool {
        lock_held(&self.dir) == Some(true)
    }
}

/// The live containers, by name; stale directories met on the way go.
pub fn list() -> Vec<Found> {
    let Ok(parent) = open_parent_existing() else {
        return Vec::new();
    };
    let Ok(names) = fsops::list_names(parent.as_fd()) else {
        return Vec::new();
    };
    let mut found: Vec<Found> = names
        .iter()
        .filter_map(|name| name.to_str().ok())
        .filter(|name| !name.starts_with('.'))
        .filter_map(|name| look(&parent, name))
        .collect();
    found.sort_by(|a, b| a.record.name.cmp(&b.record.name));
    found
}

/// Removes the directories whose lock nobody holds, reading no record: on
/// every start, so it costs a readdir and one open and flock per container.
fn sweep_stale(parent: &OwnedFd) {
    let Ok(names) = fsops::list_names(parent.as_fd()) else {
        return;
    };
    for name in names.iter().filter_map(|n| n.to_str().ok()) {
        if name.starts_with('.') {
            continue;
        }
        if lock_held(&Path::new(DIR).join(name)) == Some(false) {
            if let Ok(c_name) = CString::new(name) {
                if let Ok(dir) = fsops::open_dir_at(parent.as_fd(), &c_name) {
                    remove_dir(parent.as_fd(), dir.as_fd(), name);
                }
            }
        }
    }
}

/// The live container called `name`.
pub fn find(name: &str) -> Result<Found, Error> {
    open_parent_existing()
        .ok()
        .and_then(|parent| look(&parent, name))
        .ok_or_else(|| {
            Error::Usage(format!(
                "no container named {name} is running (rootrun ls lists them)"
            ))
        })
}

/// Reads `name`'s record; None (after sweeping it) when it is stale, and
/// None when it is not a container's directory at all.
fn look(parent: &OwnedFd, name: &str) -> Option<Found> {
    let dir = Path::new(DIR).join(name);
    let c_name = CString::new(name).ok()?;
    let dir_fd = fsops::open_dir_at(parent.as_fd(), &c_name).ok()?;
    match lock_held(&dir) {
        Some(true) => {}
        Some(false) => {
            // Its supervisor is gone: what the kernel could not remove goes.
            remove_dir(parent.as_fd(), dir_fd.as_fd(), name);
            return None;
        }
        // No lock file: not a container's directory, or one being removed.
        None => return None,
    }
    let text = std::fs::read(dir.join("state.json")).ok()?;
    let record: Record = serde_json::from_slice(&text).ok()?;
    Some(Found { record, dir })
}

/// Whether a supervisor holds `dir`'s lock; None when there is no lock.
fn lock_held(dir: &Path) -> Option<bool> {
    let file = File::open(dir.join("lock")).ok()?;
    Some(fsops::locked_elsewhere(file.as_fd()).unwrap_or(true))
}

fn open_parent() -> Result<OwnedFd, SysError> {
    match std::fs::DirBuilder::new().mode_0755().create(DIR) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(SysError::io("create directory", DIR, e)),
    }
    open_parent_existing()
}

fn open_parent_existing() -> Result<OwnedFd, SysError> {
    let dir = cstring(DIR)?;
    fsops::open_dir_path(&dir).map_err(|e| SysError::new("open", DIR, e))
}

trait Mode0755 {
    fn mode_0755(&mut self) -> &mut Self;
}

impl Mode0755 for std::fs::DirBuilder {
    fn mode_0755(&mut self) -> &mut Self {
        std::os::unix::fs::DirBuilderExt::mode(self, 0o755)
    }
}

/// Makes `.claim-PID-NAME` with the lock taken, the record written and the
/// control socket bound, then renames it to NAME unless NAME exists. A
/// stale NAME is swept and the rename tried once more; None when taken.
fn try_claim(parent: &OwnedFd, name: &str, record: &Record) -> Result<Option<Owned>, Error> {
    let temp_name = format!(".claim-{}-{name}", std::process::id());
    let temp = cstring(&temp_name)?;
    let final_name = cstring(name)?;
    let temp_path = Path::new(DIR).join(&temp_name);
    fsops::mkdir_at(parent.as_fd(), &temp, 0o700)
        .map_err(|e| SysError::new("create directory", &temp_path, e))?;
    let made = (|| {
        let dir = fsops::open_dir_at(parent.as_fd(), &temp)
            .map_err(|e| SysError::new("open", &temp_path, e))?;
        let lock: OwnedFd = create_in(dir.as_fd(), "lock")?.into();
        if !fsops::try_lock_exclusive(lock.as_fd())
            .map_err(|e| SysError::new("flock", &temp_path, e))?
        {
            return Err(SysError::new("flock", &temp_path, Errno::EWOULDBLOCK));
        }
        let mut record = record.clone();
        record.name = name.to_owned();
        write_record(dir.as_fd(), &record)?;
        let socket = temp_path.join(CONTROL);
        let listener =
            UnixListener::bind(&socket).map_err(|e| SysError::io("listen on", &socket, e))?;
        listener
            .set_nonblocking(true)
            .map_err(|e| SysError::io("listen on", &socket, e))?;
        Ok((dir, lock, listener, record))
    })();
    let (dir, lock, listener, record) = match made {
        Ok(made) => made,
        Err(e) => {
            if let Ok(dir) = fsops::open_dir_at(parent.as_fd(), &temp) {
                remove_dir(parent.as_fd(), dir.as_fd(), &temp_name);
            }
            return Err(e.into());
        }
    };
    for attempt in 0..2 {
        match fsops::rename_noreplace(parent.as_fd(), &temp, &final_name) {
            Ok(()) => {
                let parent = parent
                    .try_clone()
                    .map_err(|e| SysError::io("duplicate fd of", DIR, e))?;
                return Ok(Some(Owned {
                    parent,
                    dir,
                    name: name.to_owned(),
                    _lock: lock,
                    listener,
                    record,
                }));
            }
            // Stale (its supervisor died): sweep it and try again, once.
            Err(Errno::EEXIST | Errno::ENOTEMPTY) if attempt == 0 => {
                if look(parent, name).is_some() {
                    break;
                }
            }
            Err(Errno::EEXIST | Errno::ENOTEMPTY) => break,
            Err(e) => {
                remove_dir(parent.as_fd(), dir.as_fd(), &temp_name);
                return Err(SysError::new("rename", &temp_path, e).into());
            }
        }
    }
    remove_dir(parent.as_fd(), dir.as_fd(), &temp_name);
    Ok(None)
}

/// Removes `.claim-PID-*` directories whose process is gone (a rootrun
/// killed between its mkdir and its rename).
fn sweep_claims(parent: BorrowedFd<'_>) {
    let Ok(names) = fsops::list_names(parent) else {
        return;
    };
    for name in names.iter().filter_map(|n| n.to_str().ok()) {
        let Some(pid) = name
            .strip_prefix(".claim-")
            .and_then(|rest| rest.split('-').next())
            .and_then(|pid| pid.parse::<i32>().ok())
        else {
            continue;
        };
        if Path::new(&format!("/proc/{pid}")).exists() {
            continue;
        }
        if let Ok(c_name) = CString::new(name) {
            if let Ok(dir) = fsops::open_dir_at(parent, &c_name) {
                remove_dir(parent, dir.as_fd(), name);
            }
        }
    }
}

/// Removes the files rootrun puts in a container's directory, then the
/// directory; anything else found there is left, and so is the directory.
fn remove_dir(parent: BorrowedFd<'_>, dir: BorrowedFd<'_>, name: &str) {
    for file in FILES {
        if let Ok(c_file) = CString::new(file) {
            let _ = fsops::unlink_at(dir, &c_file, false);
        }
    }
    if let Ok(c_name) = CString::new(name) {
        let _ = fsops::unlink_at(parent, &c_name, true);
    }
}

fn write_record(dir: BorrowedFd<'_>, record: &Record) -> Result<(), SysError> {
    let path = Path::new(DIR).join(&record.name).join("state.json");
    let text = serde_json::to_vec_pretty(record)
        .map_err(|e| SysError::io("encode", &path, std::io::Error::other(e)))?;
    let mut file = create_in(dir, "state.json.new")?;
    file.write_all(&text)
        .map_err(|e| SysError::io("write", &path, e))?;
    drop(file);
    nix::fcntl::renameat(dir, STATE_NEW, dir, STATE).map_err(|e| SysError::new("rename", &path, e))
}

fn create_in(dir: BorrowedFd<'_>, file: &str) -> Result<File, SysError> {
    let c_file = cstring(file)?;
    let _ = fsops::unlink_at(dir, &c_file, false);
    fsops::create_file_at(dir, &c_file, 0o600)
        .map(File::from)
        .map_err(|e| SysError::new("create", Path::new(DIR).join(file), e))
}

fn cstring(text: &str) -> Result<CString, SysError> {
    CString::new(text).map_err(|_| SysError::new("name", text, Errno::EINVAL))
}

/// A record for tests.
#[cfg(test)]
pub(crate) fn sample_record() -> Record {
    Record {
        name: "fw".into(),
        supervisor: 42,
        lxc_name: "rootrun-42".into(),
        lxcpath: "/run/rootrun/lxc".into(),
        rootfs: "/run/rootrun/rootfs".into(),
        image: "/srv/fw.img".into(),
        architecture: Some("arm64".into()),
        emulation: "emulated by /usr/bin/qemu-aarch64-static".into(),
        host_root_uid: 0,
        mode: "boot".into(),
        halt: "SIGUSR2".into(),
        detached: true,
        started: 1_700_000_000,
        init_pid: None,
        stopping: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_follows_the_record() {
        let mut record = sample_record();
        assert_eq!(record.state(), "starting");
        record.init_pid = Some(7);
        assert_eq!(record.state(), "running");
        record.stopping = true;
        assert_eq!(record.state(), "stopping");
    }

    #[test]
    fn record_round_trips_through_json() {
        let record = sample_record();
        let text = serde_json::to_string(&record).unwrap();
        assert_eq!(serde_json::from_str::<Record>(&text).unwrap(), record);
    }
}
