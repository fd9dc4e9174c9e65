//! What a file is when it is none of the images and archives rootrun
//! reads (SquashFS, ext2/3/4, EROFS, tar, cpio newc): one phrase for the
//! message, and what to do with it. Firmware and build systems also ship
//! disk images, flash images and boot images; rootrun says which it found.

/// How much of the file `identify` looks at.
pub const HEAD: usize = 4096;

/// A recognised format: what it is, and how to get a root rootrun boots.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Found {
    pub what: &'static str,
    pub hint: &'static str,
}

/// The format of a file from its first bytes (`HEAD` of them, fewer when
/// the file is shorter).
pub fn identify(head: &[u8]) -> Option<Found> {
    let at = |offset: usize, magic: &[u8]| head.get(offset..offset + magic.len()) == Some(magic);
    let found = |what, hint| Some(Found { what, hint });
    if at(0, b"sqsh") {
        return found(
            "a big-endian SquashFS (version 3 or older)",
            "unsquashfs it with a tool that reads the old format and boot the tree with --rootfs",
        );
    }
    if at(0, b"070707") || at(0, &[0xC7, 0x71]) || at(0, &[0x71, 0xC7]) {
        return found(
            "an old-format cpio archive",
            "re-create it in the newc format (cpio -o -H newc), which rootrun reads",
        );
    }
    if at(0, &[0x04, 0x22, 0x4D, 0x18]) {
        return found(
            "lz4-compressed data",
            "decompress it (lz4 -d), or recompress it with gzip, xz, zstd or bzip2",
        );
    }
    if at(512, b"EFI PART")
        || (at(510, &[0x55, 0xAA])
            && head
                .get(446..510)
                .is_some_and(|t| t.iter().any(|&b| b != 0)))
    {
        return found(
            "a disk image with a partition table",
            "attach it with its partitions (losetup -r -P -f --show IMAGE), mount the root \
             partition read-only and boot it with --rootfs",
        );
    }
    if at(0, b"UBI#") {
        return found(
            "a UBI image (NAND flash)",
            "not supported: extract its UBIFS volume on a device or with ubireader",
        );
    }
    if at(0, &[0x85, 0x19]) || at(0, &[0x19, 0x85]) {
        return found(
            "a JFFS2 image",
            "not supported: extract it (jefferson) and boot the tree with --rootfs",
        );
    }
    if at(0, &[0x27, 0x05, 0x19, 0x56]) {
        return found(
            "a U-Boot image (uImage), not a root file system",
            "look for the root file system image beside it",
        );
    }
    if at(0, &[0xD0, 0x0D, 0xFE, 0xED]) {
        return found(
            "a device tree or FIT image, not a root file system",
            "look for the root file system image beside it",
        );
    }
    if at(0, b"\x7fELF") {
        return found(
            "an ELF program, not an image",
            "give the root file system image",
        );
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(offset: usize, magic: &[u8]) -> Vec<u8> {
        let mut head = vec![0u8; HEAD];
        head[offset..offset + magic.len()].copy_from_slice(magic);
        head
    }

    #[test]
    fn file_systems_archives_and_disks_are_named() {
        let what = |head: &[u8]| identify(head).map(|f| f.what);
        assert_eq!(
            what(&with(0, b"070707")),
            Some("an old-format cpio archive")
        );
        assert_eq!(
            what(&with(0, &[0x04, 0x22, 0x4D, 0x18])),
            Some("lz4-compressed data")
        );
        assert_eq!(
            what(&with(512, b"EFI PART")),
            Some("a disk image with a partition table")
        );
        let mut mbr = with(510, &[0x55, 0xAA]);
        mbr[446 + 4] = 0x83;
        assert_eq!(what(&mbr), Some("a disk image with a partition table"));
        assert_eq!(
            what(&with(0, b"\x7fELF")),
            Some("an ELF program, not an image")
        );
        // A boot sector without partitions, zeros, short input: nothing.
        assert_eq!(what(&with(510, &[0x55, 0xAA])), None);
        assert_eq!(what(&[0u8; HEAD]), None);
        assert_eq!(what(b"x"), None);
    }
}
