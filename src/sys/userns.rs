//! `--unprivileged`: the host ids the container's ids map to, and a user
//! namespace that carries that mapping for idmapped mounts
//! (mount_setattr(2) with MOUNT_ATTR_IDMAP takes a user namespace fd).

use std::fs;
use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::path::Path;

use nix::sched::{unshare, CloneFlags};
use nix::sys::wait::waitpid;
use nix::unistd::{fork, ForkResult};
use serde::Serialize;

use super::SysError;

/// How many ids the container gets: 0..65535 inside, as LXD and Incus give
/// an unprivileged container by default.
pub const RANGE: u32 = 65536;
/// The first host id when /etc/subuid (or /etc/subgid) gives root none:
/// LXD's own default start, far above any id a distribution hands out.
pub const DEFAULT_FIRST: u32 = 1_000_000;

/// Container ids 0..count are host ids first..first+count, for users and
/// groups.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct IdMap {
    pub uid_first: u32,
    pub gid_first: u32,
    pub count: u32,
    /// Whether the ranges came from /etc/subuid and /etc/subgid.
    pub from_subid: bool,
}

impl IdMap {
    /// root's ranges in /etc/subuid and /etc/subgid (the first of at least
    /// `RANGE` ids), else the default range.
    pub fn for_root() -> IdMap {
        let read = |path: &str| fs::read_to_string(path).ok();
        let uid = read("/etc/subuid").and_then(|t| first_range(&t, "root", "0"));
        let gid = read("/etc/subgid").and_then(|t| first_range(&t, "root", "0"));
        match (uid, gid) {
            (Some(uid_first), Some(gid_first)) => IdMap {
                uid_first,
                gid_first,
                count: RANGE,
                from_subid: true,
            },
            _ => IdMap {
                uid_first: DEFAULT_FIRST,
                gid_first: DEFAULT_FIRST,
                count: RANGE,
                from_subid: false,
            },
        }
    }

    /// The host uid of container uid `id` (None when outside the range).
    pub fn host_uid(&self, id: u32) -> Option<u32> {
        (id < self.count).then(|| self.uid_first + id)
    }

    pub fn host_gid(&self, id: u32) -> Option<u32> {
        (id < self.count).then(|| self.gid_first + id)
    }

    /// The `lxc.idmap` values (lxc.container.conf(5)).
    pub fn lxc_items(&self) -> [String; 2] {
        [
            format!("u 0 {} {}", self.uid_first, self.count),
            format!("g 0 {} {}", self.gid_first, self.count),
        ]
    }

    /// What /proc/PID/uid_map and gid_map get.
    fn map_lines(&self) -> (String, String) {
        (
            format!("0 {} {}\n", self.uid_first, self.count),
            format!("0 {} {}\n", self.gid_first, self.count),
        )
    }
}

/// The first `NAME:FIRST:COUNT` line (subuid(5)) for `name` or `id` with
/// at least `RANGE` ids whose end fits in 32 bits.
fn first_range(text: &str, name: &str, id: &str) -> Option<u32> {
    text.lines().find_map(|line| {
        let mut fields = line.trim().split(':');
        let (who, first, count) = (fields.next()?, fields.next()?, fields.next()?);
        if who != name && who != id {
            return None;
        }
        let first: u32 = first.parse().ok()?;
        let count: u32 = count.parse().ok()?;
        (count >= RANGE && first.checked_add(RANGE).is_some()).then_some(first)
    })
}

/// A user namespace with `map`'s mapping, as an fd that keeps it alive: a
/// child unshares one and waits while this process writes its maps
/// (user_namespaces(7)), then exits; the namespace lives on through the fd.
pub fn namespace_fd(map: &IdMap) -> Result<OwnedFd, SysError> {
    let fail = |op: &'static str| move |e| SysError::new(op, "a user namespace", e);
    let (ready_r, ready_w) = nix::unistd::pipe().map_err(fail("pipe for"))?;
    let (done_r, done_w) = nix::unistd::pipe().map_err(fail("pipe for"))?;
    // SAFETY: the child calls only unshare, write, read and _exit, all
    // async-signal-safe, so forking a process that may have threads is sound.
    match unsafe { fork() }.map_err(fail("fork to create"))? {
        ForkResult::Child => {
            drop(ready_r);
            drop(done_w);
            let ok = unshare(CloneFlags::CLONE_NEWUSER).is_ok();
            let mut ready = fs::File::from(ready_w);
            let _ = ready.write_all(if ok { b"1" } else { b"0" });
            drop(ready);
            let mut byte = [0u8; 1];
            let _ = fs::File::from(done_r).read(&mut byte);
            // SAFETY: _exit ends the child without running the parent's
            // atexit handlers or destructors.
            unsafe { libc::_exit(0) }
        }
        ForkResult::Parent { child } => {
            drop(ready_w);
            drop(done_r);
            let mut byte = [0u8; 1];
            let got = fs::File::from(ready_r).read(&mut byte);
            let result = match got {
                Ok(1) if byte[0] == b'1' => write_maps_and_open(child.as_raw(), map),
                _ => Err(SysError::new(
                    "unshare(CLONE_NEWUSER) for",
                    USERNS_REFUSED,
                    nix::errno::Errno::EPERM,
                )),
            };
            drop(done_w);
            let _ = waitpid(child, None);
            result
        }
    }
}

/// Why a container cannot have a binfmt_misc of its own here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoPrivateBinfmt {
    /// unshare(CLONE_NEWUSER) fails: rootrun runs chrooted (the kernel
    /// refuses a user namespace to a process whose root is not its mount
    /// namespace's), or user namespaces are off.
    NoUserNamespace,
    /// The kernel has no binfmt_misc per user namespace (before 6.7).
    NotPerNamespace,
}

impl std::fmt::Display for NoPrivateBinfmt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            NoPrivateBinfmt::NoUserNamespace => USERNS_REFUSED,
            NoPrivateBinfmt::NotPerNamespace => {
                "this kernel gives a user namespace no binfmt_misc of its own (Linux 6.7 and \
                 later do)"
            }
        })
    }
}

/// Why unshare(CLONE_NEWUSER) fails as root (user_namespaces(7)).
pub const USERNS_REFUSED: &str = "the kernel refuses rootrun a user namespace: rootrun runs in \
     a chroot (refused to chrooted processes), or user namespaces are off \
     (user.max_user_namespaces = 0)";

/// Whether this kernel gives a container's user namespace a binfmt_misc of
/// its own (Linux 6.7+: binfmt_misc became mountable in one). A child
/// unshares a user and a mount namespace and asks for a binfmt_misc
/// superblock (fsopen(2), then FSCONFIG_CMD_CREATE): older kernels refuse
/// with EPERM. Nothing is mounted anywhere.
pub fn private_binfmt_misc() -> Result<(), NoPrivateBinfmt> {
    // SAFETY: the child calls only unshare, the two syscalls and _exit,
    // all async-signal-safe.
    match unsafe { fork() } {
        Ok(ForkResult::Child) => {
            let code = if unshare(CloneFlags::CLONE_NEWUSER | CloneFlags::CLONE_NEWNS).is_err() {
                2
            } else if superblock_of("binfmt_misc") {
                0
            } else {
                1
            };
            // SAFETY: _exit ends the child without the parent's cleanup.
            unsafe { libc::_exit(code) }
        }
        Ok(ForkResult::Parent { child }) => match waitpid(child, None) {
            Ok(nix::sys::wait::WaitStatus::Exited(_, 0)) => Ok(()),
            Ok(nix::sys::wait::WaitStatus::Exited(_, 2)) => Err(NoPrivateBinfmt::NoUserNamespace),
            _ => Err(NoPrivateBinfmt::NotPerNamespace),
        },
        Err(_) => Err(NoPrivateBinfmt::NoUserNamespace),
    }
}

/// fsopen(2) + FSCONFIG_CMD_CREATE for `fstype`, in the caller's
/// namespaces; the context is closed again.
fn superblock_of(fstype: &str) -> bool {
    let Ok(name) = std::ffi::CString::new(fstype) else {
        return false;
    };
    // SAFETY: fsopen reads the NUL-terminated name during the call.
    let fd = unsafe { libc::syscall(libc::SYS_fsopen, name.as_ptr(), 0) };
    let Ok(fd) = i32::try_from(fd) else {
        return false;
    };
    if fd < 0 {
        return false;
    }
    const FSCONFIG_CMD_CREATE: libc::c_uint = 6;
    // SAFETY: fd is the context just opened; CMD_CREATE takes no key or value.
    let created = unsafe {
        libc::syscall(
            libc::SYS_fsconfig,
            fd,
            FSCONFIG_CMD_CREATE,
            std::ptr::null::<libc::c_char>(),
            std::ptr::null::<libc::c_void>(),
            0,
        )
    };
    // SAFETY: fd is ours and closed once.
    unsafe { libc::close(fd) };
    created == 0
}

fn write_maps_and_open(pid: i32, map: &IdMap) -> Result<OwnedFd, SysError> {
    let dir = Path::new("/proc").join(pid.to_string());
    let (uid_map, gid_map) = map.map_lines();
    for (file, text) in [("uid_map", uid_map), ("gid_map", gid_map)] {
        let path = dir.join(file);
        fs::write(&path, text).map_err(|e| SysError::io("write", &path, e))?;
    }
    let path = dir.join("ns/user");
    let file = fs::File::open(&path).map_err(|e| SysError::io("open", &path, e))?;
    Ok(file.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subuid_ranges_are_roots_first_large_enough_one() {
        let text = "alice:100000:65536\nroot:200000:1000\nroot:300000:65536\n";
        assert_eq!(first_range(text, "root", "0"), Some(300000));
        assert_eq!(first_range("0:400000:70000\n", "root", "0"), Some(400000));
        assert_eq!(first_range("root:4294967295:65536\n", "root", "0"), None);
        assert_eq!(first_range("root:x:65536\nroot:5\n", "root", "0"), None);
        assert_eq!(first_range("", "root", "0"), None);
    }

    #[test]
    fn ids_outside_the_range_map_to_nothing() {
        let map = IdMap {
            uid_first: 1_000_000,
            gid_first: 2_000_000,
            count: RANGE,
            from_subid: false,
        };
        assert_eq!(map.host_uid(0), Some(1_000_000));
        assert_eq!(map.host_gid(5), Some(2_000_005));
        assert_eq!(map.host_uid(RANGE), None);
        assert_eq!(
            map.lxc_items(),
            [
                "u 0 1000000 65536".to_owned(),
                "g 0 2000000 65536".to_owned()
            ]
        );
    }
}
