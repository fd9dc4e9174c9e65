//! Read-only, auto-clearing loop devices (loop(4)).
//!
//! The image is opened `O_RDONLY` and must be a regular file; the device is
//! configured in one `LOOP_CONFIGURE` call with `LO_FLAGS_READ_ONLY |
//! LO_FLAGS_AUTOCLEAR`, so there is no window in which a SIGKILL leaves a
//! bound device behind: until something mounts it, the device clears when the
//! fd held here closes; once mounted, when the last mount goes.

use std::fs::{File, OpenOptions};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use nix::errno::Errno;

use super::SysError;

// Neither libc nor nix 0.32 define loop(4)'s ioctls and structures: from
// <linux/loop.h>.
const LOOP_CTL_GET_FREE: libc::c_ulong = 0x4C82;
const LOOP_CONFIGURE: libc::c_ulong = 0x4C0A;
const LO_FLAGS_READ_ONLY: u32 = 1;
const LO_FLAGS_AUTOCLEAR: u32 = 4;
const LO_NAME_SIZE: usize = 64;
/// LOOP_CTL_GET_FREE and LOOP_CONFIGURE race with other users of loop
/// devices; EBUSY means someone else took the free device first.
const ATTEMPTS: usize = 16;

/// `struct loop_info64` from <linux/loop.h>.
#[repr(C)]
struct LoopInfo64 {
    lo_device: u64,
    lo_inode: u64,
    lo_rdevice: u64,
    lo_offset: u64,
    lo_sizelimit: u64,
    lo_number: u32,
    lo_encrypt_type: u32,
    lo_encrypt_key_size: u32,
    lo_flags: u32,
    lo_file_name: [u8; LO_NAME_SIZE],
    lo_crypt_name: [u8; LO_NAME_SIZE],
    lo_encrypt_key: [u8; 32],
    lo_init: [u64; 2],
}

/// `struct loop_config` from <linux/loop.h> (Linux 5.8+).
#[repr(C)]
struct LoopConfig {
    fd: u32,
    block_size: u32,
    info: LoopInfo64,
    reserved: [u64; 8],
}

/// A configured loop device. Keep it until the device is mounted, then drop
/// it: autoclear detaches the device when the mount goes away.
#[derive(Debug)]
pub struct LoopDevice {
    path: PathBuf,
    _fd: OwnedFd,
}

impl LoopDevice {
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Opens `image` read-only (it must be a regular file) and binds it to a free
/// loop device, read-only with autoclear.
pub fn attach_read_only(image: &Path) -> Result<LoopDevice, SysError> {
    let backing = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_CLOEXEC | libc::O_NOCTTY)
        .open(image)
        .map_err(|e| SysError::io("open image", image, e))?;
    let meta = backing
        .metadata()
        .map_err(|e| SysError::io("stat image", image, e))?;
    if !meta.file_type().is_file() {
        return Err(SysError::new(
            "loop-mount image (not a regular file)",
            image,
            Errno::EINVAL,
        ));
    }
    let control = OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_CLOEXEC)
        .open("/dev/loop-control")
        .map_err(|e| SysError::io("open", "/dev/loop-control", e))?;

    let mut last = Errno::EBUSY;
    for _ in 0..ATTEMPTS {
        // SAFETY: LOOP_CTL_GET_FREE takes no argument and returns a device
        // number or -1 with errno.
        let number = unsafe { libc::ioctl(control.as_raw_fd(), LOOP_CTL_GET_FREE) };
        let number = Errno::result(number)
            .map_err(|e| SysError::new("LOOP_CTL_GET_FREE on", "/dev/loop-control", e))?;
        let path = PathBuf::from(format!("/dev/loop{number}"));
        let device = match open_device(&path) {
            Ok(device) => device,
            Err(Errno::ENOENT) => {
                // udev has not made the node yet; someone else's race too.
                last = Errno::ENOENT;
                continue;
            }
            Err(e) => return Err(SysError::new("open loop device", &path, e)),
        };
        match configure(&device, &backing, image) {
            Ok(()) => {
                return Ok(LoopDevice {
                    path,
                    _fd: device.into(),
                })
            }
            Err(Errno::EBUSY) => last = Errno::EBUSY,
            Err(e) => return Err(SysError::new("LOOP_CONFIGURE", &path, e)),
        }
    }
    Err(SysError::new("find a free loop device for", image, last))
}

fn open_device(path: &Path) -> Result<File, Errno> {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_CLOEXEC)
        .open(path)
        .map_err(|e| Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)))?;
    let is_block = file
        .metadata()
        .map(|m| m.file_type().is_block_device())
        .unwrap_or(false);
    if is_block {
        Ok(file)
    } else {
        Err(Errno::ENOTBLK)
    }
}

fn configure(device: &File, backing: &File, image: &Path) -> Result<(), Errno> {
    let mut info = LoopInfo64 {
        lo_device: 0,
        lo_inode: 0,
        lo_rdevice: 0,
        lo_offset: 0,
        lo_sizelimit: 0,
        lo_number: 0,
        lo_encrypt_type: 0,
        lo_encrypt_key_size: 0,
        lo_flags: LO_FLAGS_READ_ONLY | LO_FLAGS_AUTOCLEAR,
        lo_file_name: [0; LO_NAME_SIZE],
        lo_crypt_name: [0; LO_NAME_SIZE],
        lo_encrypt_key: [0; 32],
        lo_init: [0; 2],
    };
    // The name is informational (losetup -l shows it); truncate, keep a NUL.
    let name = image.as_os_str().as_encoded_bytes();
    let len = name.len().min(LO_NAME_SIZE - 1);
    info.lo_file_name[..len].copy_from_slice(&name[..len]);
    let fd = u32::try_from(backing.as_raw_fd()).map_err(|_| Errno::EBADF)?;
    let config = LoopConfig {
        fd,
        block_size: 0,
        info,
        reserved: [0; 8],
    };
    // SAFETY: LOOP_CONFIGURE reads a `struct loop_config` that lives for the
    // duration of the call; both fds are open.
    let ret = unsafe {
        libc::ioctl(
            device.as_raw_fd(),
            LOOP_CONFIGURE,
            &config as *const LoopConfig,
        )
    };
    Errno::result(ret).map(drop)
}
