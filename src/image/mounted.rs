//! ext2/ext3/ext4 and EROFS images: the superblock is checked here, then the
//! kernel mounts the file system read-only from an autoclear loop device as a
//! *detached* mount (`sys::detached`): it is in no mount table while rootrun
//! reads the image's facts through it, and the same mount becomes the
//! container's lower layer (`launch`, `Step::AttachLower`). Closing it on
//! any error path unmounts it and frees the loop device.
//!
//! Lookups go through `DirSource` at the mount's `/proc/self/fd/N` path,
//! one component at a time with lstat, symlinks resolved by `walk` inside
//! the image: nothing follows a link out of the tree.

use std::path::Path;

use super::dir_source::DirSource;
use super::ImageError;
use crate::sys::detached::{self, Detached, MountFailure};
use crate::sys::loopdev;

/// The file systems rootrun mounts from an image file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlockFs {
    Ext4,
    Erofs,
}

impl BlockFs {
    pub fn name(self) -> &'static str {
        match self {
            BlockFs::Ext4 => "ext4",
            BlockFs::Erofs => "erofs",
        }
    }

    fn describe(self) -> &'static str {
        match self {
            BlockFs::Ext4 => "ext2/ext3/ext4 file system",
            BlockFs::Erofs => "EROFS file system",
        }
    }
}

pub struct MountedSource {
    pub fs: BlockFs,
    pub tree: Detached,
    pub dir: DirSource,
}

/// Where the ext2/3/4 superblock starts, and fields of `struct ext4_super_block`
/// (fs/ext4/ext4.h) as offsets into it.
const EXT4_SB: usize = 1024;
const EXT4_BLOCKS_LO: usize = 0x04;
const EXT4_LOG_BLOCK_SIZE: usize = 0x18;
const EXT4_INCOMPAT: usize = 0x60;
const EXT4_BLOCKS_HI: usize = 0x150;
const INCOMPAT_RECOVER: u32 = 0x4;
const INCOMPAT_JOURNAL_DEV: u32 = 0x8;
const INCOMPAT_64BIT: u32 = 0x80;
/// The incompatible features Linux 6.x mounts (EXT4_FEATURE_INCOMPAT_SUPP):
/// filetype, recover, meta_bg, extents, 64bit, mmp, flex_bg, ea_inode,
/// csum_seed, largedir, inline_data, encrypt, casefold.
const INCOMPAT_KNOWN: u32 = 0x2
    | 0x4
    | 0x10
    | 0x40
    | 0x80
    | 0x100
    | 0x200
    | 0x400
    | 0x2000
    | 0x4000
    | 0x8000
    | 0x10000
    | 0x20000;

/// Checks what the superblock says before anything is attached, so a
/// truncated or damaged image gets a line naming the problem rather than
/// the kernel's EINVAL. Returns the mount options to use.
fn check_ext4(head: &[u8], file_size: u64) -> Result<Vec<&'static str>, String> {
    let u32_at = |offset: usize| {
        head.get(EXT4_SB + offset..EXT4_SB + offset + 4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .unwrap_or(0)
    };
    let incompat = u32_at(EXT4_INCOMPAT);
    if incompat & INCOMPAT_JOURNAL_DEV != 0 {
        return Err("an external ext3/ext4 journal device, not a file system".into());
    }
    let unknown = incompat & !INCOMPAT_KNOWN;
    if unknown != 0 {
        return Err(format!(
            "the superblock asks for incompatible features {unknown:#x} that Linux cannot \
             mount (a damaged image, or made by a newer mkfs)"
        ));
    }
    let log = u32_at(EXT4_LOG_BLOCK_SIZE);
    if log > 6 {
        return Err(format!(
            "damaged superblock: block size 2^{} is not one ext4 has",
            u64::from(log) + 10
        ));
    }
    let mut blocks = u64::from(u32_at(EXT4_BLOCKS_LO));
    if incompat & INCOMPAT_64BIT != 0 {
        blocks |= u64::from(u32_at(EXT4_BLOCKS_HI)) << 32;
    }
    let Some(size) = blocks.checked_mul(1024 << log).filter(|_| blocks > 0) else {
        return Err(format!("damaged superblock: it counts {blocks} blocks"));
    };
    if size > file_size {
        return Err(format!(
            "truncated: the file system is {size} bytes, the file {file_size}"
        ));
    }
    // A journal that was not replayed (the file system was not unmounted
    // cleanly) cannot be replayed on a read-only device: mount without it,
    // as `mount -o ro,noload` would (ext4(5)).
    Ok(if incompat & INCOMPAT_RECOVER != 0 {
        vec!["norecovery"]
    } else {
        Vec::new()
    })
}

/// `head`: the file's first bytes (at least 2 KiB when it is this big).
pub fn open(
    path: &Path,
    fs: BlockFs,
    head: &[u8],
    file_size: u64,
) -> Result<MountedSource, ImageError> {
    let refused = |why: String| ImageError::Format {
        path: path.to_path_buf(),
        what: format!("{}: {why}", fs.describe()),
    };
    let options = match fs {
        BlockFs::Ext4 => check_ext4(head, file_size).map_err(refused)?,
        BlockFs::Erofs => Vec::new(),
    };
    if !options.is_empty() {
        crate::notice::warning(&format!(
            "{}: the ext4 journal has changes that were never written (not unmounted \
             cleanly); booting without them (norecovery)",
            path.display()
        ));
    }
    let device = loopdev::attach_read_only(path).map_err(|e| {
        refused(format!(
            "cannot attach a loop device ({e}); these images are loop-mounted, which needs root"
        ))
    })?;
    tracing::debug!(
        "loop device {} (read-only, autoclear) <- {}",
        device.path().display(),
        path.display()
    );
    let tree = detached::block_fs(fs.name(), device.path(), &options)
        .map_err(|failure| refused(mount_failure(fs, failure)))?;
    tracing::debug!(
        "{} mounted read-only, nodev, nosuid as a detached mount (in no mount table)",
        fs.name()
    );
    // The mount holds the device now; autoclear frees it with the mount.
    drop(device);
    let dir = DirSource::shown_as(&tree.proc_path(), path);
    Ok(MountedSource { fs, tree, dir })
}

fn mount_failure(fs: BlockFs, failure: MountFailure) -> String {
    let why = match failure.message {
        Some(message) => format!("{message} ({})", failure.error.errno.desc()),
        None => failure.error.errno.desc().to_owned(),
    };
    format!(
        "the kernel refused to mount it as {}: {why} (a damaged image, or a feature this \
         kernel lacks)",
        fs.name()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn superblock(blocks: u32, log: u32, incompat: u32) -> Vec<u8> {
        let mut head = vec![0u8; 4096];
        let put = |head: &mut Vec<u8>, at: usize, v: u32| {
            head[EXT4_SB + at..EXT4_SB + at + 4].copy_from_slice(&v.to_le_bytes())
        };
        put(&mut head, EXT4_BLOCKS_LO, blocks);
        put(&mut head, EXT4_LOG_BLOCK_SIZE, log);
        put(&mut head, EXT4_INCOMPAT, incompat);
        head
    }

    #[test]
    fn ext4_superblocks_are_checked_before_mounting() {
        assert_eq!(check_ext4(&superblock(1024, 2, 0x2c2), 4 << 20), Ok(vec![]));
        assert_eq!(
            check_ext4(&superblock(1024, 2, 0x2c6), 4 << 20),
            Ok(vec!["norecovery"])
        );
        let err = check_ext4(&superblock(1024, 2, 0x2c2), 1 << 20).unwrap_err();
        assert!(err.starts_with("truncated"), "{err}");
        let err = check_ext4(&superblock(1024, 9, 0x2c2), 1 << 30).unwrap_err();
        assert!(err.contains("block size"), "{err}");
        let err = check_ext4(&superblock(1024, 2, 0x8), 4 << 20).unwrap_err();
        assert!(err.contains("journal device"), "{err}");
        let err = check_ext4(&superblock(1024, 2, 0x1000), 4 << 20).unwrap_err();
        assert!(err.contains("0x1000"), "{err}");
        let err = check_ext4(&superblock(0, 2, 0x2), 4 << 20).unwrap_err();
        assert!(err.contains("counts 0 blocks"), "{err}");
    }
}
