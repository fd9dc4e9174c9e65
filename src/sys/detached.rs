//! Detached mounts: a file system mounted with the new mount API
//! (fsopen(2), fsconfig(2), fsmount(2); Linux 5.2+) and held by an fd, not
//! attached anywhere. Nothing appears in any mount table while rootrun reads
//! the tree through the fd; closing the fd unmounts it (and an autoclear loop
//! device under it detaches). `mount::attach` puts one in place later.

use std::ffi::CString;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use libc::{
    FSCONFIG_CMD_CREATE, FSCONFIG_SET_FLAG, FSCONFIG_SET_STRING, FSMOUNT_CLOEXEC, FSOPEN_CLOEXEC,
    MOUNT_ATTR_NODEV, MOUNT_ATTR_NOSUID, MOUNT_ATTR_RDONLY,
};
use nix::errno::Errno;

use super::SysError;

/// A file system mounted nowhere, and where its root can be reached by
/// path while the fd is open (`/proc/self/fd/N`, a magic link to the
/// mount's root: proc(5)).
#[derive(Debug)]
pub struct Detached {
    tree: OwnedFd,
}

impl Detached {
    pub fn fd(&self) -> &OwnedFd {
        &self.tree
    }

    /// The mount's root as a path this process can walk.
    pub fn proc_path(&self) -> PathBuf {
        PathBuf::from(format!("/proc/self/fd/{}", self.tree.as_raw_fd()))
    }

    pub fn into_fd(self) -> OwnedFd {
        self.tree
    }
}

/// Why the kernel refused a mount: the errno, and the message the file
/// system left in the context's log (fsopen(2): "e ..." lines), if any.
#[derive(Debug)]
pub struct MountFailure {
    pub error: SysError,
    pub message: Option<String>,
}

impl From<SysError> for MountFailure {
    fn from(error: SysError) -> Self {
        MountFailure {
            error,
            message: None,
        }
    }
}

/// `fstype` (ext4, erofs) from the block device `device`, read-only,
/// `nodev,nosuid`, with the extra string `options` (`key=value` or flags).
pub fn block_fs(fstype: &str, device: &Path, options: &[&str]) -> Result<Detached, MountFailure> {
    let context = fs_open(fstype)?;
    let op = "mount (fsconfig)";
    set_string(&context, "source", &device.to_string_lossy(), device, op)?;
    set_flag(&context, "ro", device, op)?;
    for option in options {
        match option.split_once('=') {
            Some((key, value)) => set_string(&context, key, value, device, op)?,
            None => set_flag(&context, option, device, op)?,
        }
    }
    create_and_mount(
        &context,
        device,
        MOUNT_ATTR_RDONLY | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOSUID,
    )
}

/// A writable tmpfs (`mode=0755`, `nodev,nosuid`), of at most `size` (tmpfs's
/// `size=`) and `nr_inodes` inodes.
pub fn tmpfs(size: Option<&str>, nr_inodes: u64) -> Result<Detached, MountFailure> {
    let context = fs_open("tmpfs")?;
    let op = "mount tmpfs (fsconfig)";
    let what = Path::new("tmpfs");
    set_string(&context, "mode", "0755", what, op)?;
    set_string(&context, "nr_inodes", &nr_inodes.to_string(), what, op)?;
    if let Some(size) = size {
        set_string(&context, "size", size, what, op)?;
    }
    create_and_mount(&context, what, MOUNT_ATTR_NODEV | MOUNT_ATTR_NOSUID)
}

fn fs_open(fstype: &str) -> Result<OwnedFd, SysError> {
    let name = CString::new(fstype).map_err(|_| SysError::new("fsopen", fstype, Errno::EINVAL))?;
    // SAFETY: fsopen reads the NUL-terminated name during the call and
    // returns a new fd or -1.
    let fd = unsafe { libc::syscall(libc::SYS_fsopen, name.as_ptr(), FSOPEN_CLOEXEC) };
    owned(fd).map_err(|e| SysError::new("fsopen", fstype, e))
}

fn owned(ret: libc::c_long) -> Result<OwnedFd, Errno> {
    let fd = Errno::result(ret)?;
    let fd = i32::try_from(fd).map_err(|_| Errno::EBADF)?;
    // SAFETY: a successful fsopen/fsmount returned a fresh fd nobody else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn set_string(
    context: &OwnedFd,
    key: &str,
    value: &str,
    what: &Path,
    op: &'static str,
) -> Result<(), MountFailure> {
    let bad = || SysError::new(op, what, Errno::EINVAL);
    let key = CString::new(key).map_err(|_| bad())?;
    let value = CString::new(value).map_err(|_| bad())?;
    // SAFETY: both strings are NUL-terminated and read during the call only.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_fsconfig,
            context.as_raw_fd(),
            FSCONFIG_SET_STRING,
            key.as_ptr(),
            value.as_ptr(),
            0,
        )
    };
    Errno::result(ret)
        .map(drop)
        .map_err(|e| failure(context, SysError::new(op, what, e)))
}

fn set_flag(
    context: &OwnedFd,
    key: &str,
    what: &Path,
    op: &'static str,
) -> Result<(), MountFailure> {
    let key = CString::new(key).map_err(|_| SysError::new(op, what, Errno::EINVAL))?;
    // SAFETY: the key is NUL-terminated; a flag takes a null value.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_fsconfig,
            context.as_raw_fd(),
            FSCONFIG_SET_FLAG,
            key.as_ptr(),
            std::ptr::null::<libc::c_char>(),
            0,
        )
    };
    Errno::result(ret)
        .map(drop)
        .map_err(|e| failure(context, SysError::new(op, what, e)))
}

fn create_and_mount(context: &OwnedFd, what: &Path, attrs: u64) -> Result<Detached, MountFailure> {
    // SAFETY: FSCONFIG_CMD_CREATE takes no key or value.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_fsconfig,
            context.as_raw_fd(),
            FSCONFIG_CMD_CREATE,
            std::ptr::null::<libc::c_char>(),
            std::ptr::null::<libc::c_void>(),
            0,
        )
    };
    Errno::result(ret).map_err(|e| failure(context, SysError::new("mount", what, e)))?;
    // SAFETY: fsmount takes the configured context fd and returns a new fd
    // of the detached mount, or -1.
    let tree = unsafe {
        libc::syscall(
            libc::SYS_fsmount,
            context.as_raw_fd(),
            FSMOUNT_CLOEXEC,
            attrs as libc::c_uint,
        )
    };
    let tree = owned(tree).map_err(|e| failure(context, SysError::new("fsmount", what, e)))?;
    Ok(Detached { tree })
}

/// The error, with the last error line the file system logged on the
/// context (read(2) on an fsopen fd returns one message per call).
fn failure(context: &OwnedFd, error: SysError) -> MountFailure {
    let mut message = None;
    let mut buf = [0u8; 512];
    for _ in 0..16 {
        match nix::unistd::read(context, &mut buf) {
            Ok(n) if n > 0 => {
                let line = String::from_utf8_lossy(&buf[..n]).trim().to_owned();
                if let Some(text) = line.strip_prefix("e ") {
                    message = Some(text.to_owned());
                }
            }
            _ => break,
        }
    }
    MountFailure { error, message }
}
