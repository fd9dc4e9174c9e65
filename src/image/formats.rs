//! What a file is when it is not a SquashFS image: one phrase for the
//! message, and what to do with it. Firmware and build systems ship roots
//! as file systems, archives and disk images; rootrun boots SquashFS
//! images and extracted trees, and says which of the others it found.

/// How much of the file `identify` looks at.
pub const HEAD: usize = 4096;

/// A recognised format: what it is, and how to get a root rootrun boots.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Found {
    pub what: &'static str,
    pub hint: &'static str,
}

const EXTRACT: &str = "extract it into a directory and boot that with --rootfs DIR \
                       (or make a SquashFS image of it: mksquashfs DIR IMAGE)";

/// The format of a file from its first bytes (`HEAD` of them, fewer when
/// the file is shorter).
pub fn identify(head: &[u8]) -> Option<Found> {
    let at = |offset: usize, magic: &[u8]| head.get(offset..offset + magic.len()) == Some(magic);
    let found = |what, hint| Some(Found { what, hint });
    if at(1080, &[0x53, 0xEF]) {
        return found(
            "an ext2/ext3/ext4 file system",
            "mount it read-only (mount -o ro,loop,noload IMAGE DIR) and boot DIR with --rootfs",
        );
    }
    if at(1024, &[0xE2, 0xE1, 0xF5, 0xE0]) {
        return found(
            "an EROFS file system",
            "mount it (mount -t erofs -o ro,loop IMAGE DIR) and boot DIR with --rootfs",
        );
    }
    if at(0, b"sqsh") {
        return found(
            "a big-endian SquashFS (version 3 or older)",
            "unsquashfs it with a tool that reads the old format and boot the tree with --rootfs",
        );
    }
    if at(257, b"ustar") {
        return found("a tar archive", EXTRACT);
    }
    if at(0, b"070701") || at(0, b"070702") || at(0, &[0xC7, 0x71]) || at(0, &[0x71, 0xC7]) {
        return found("a cpio archive (an initramfs?)", EXTRACT);
    }
    let compressed = [
        (
            &[0x1F, 0x8B][..],
            "gzip-compressed data (a .tar.gz or .cpio.gz?)",
        ),
        (
            &[0xFD, b'7', b'z', b'X', b'Z', 0x00][..],
            "xz-compressed data (a .tar.xz?)",
        ),
        (
            &[0x28, 0xB5, 0x2F, 0xFD][..],
            "zstd-compressed data (a .tar.zst?)",
        ),
        (&b"BZh"[..], "bzip2-compressed data (a .tar.bz2?)"),
        (&[0x04, 0x22, 0x4D, 0x18][..], "lz4-compressed data"),
    ];
    for (magic, what) in compressed {
        if at(0, magic) {
            return found(what, EXTRACT);
        }
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
            what(&with(1080, &[0x53, 0xEF])),
            Some("an ext2/ext3/ext4 file system")
        );
        assert_eq!(
            what(&with(1024, &[0xE2, 0xE1, 0xF5, 0xE0])),
            Some("an EROFS file system")
        );
        assert_eq!(what(&with(257, b"ustar")), Some("a tar archive"));
        assert_eq!(
            what(&with(0, b"070701")),
            Some("a cpio archive (an initramfs?)")
        );
        assert!(what(&with(0, &[0x1F, 0x8B])).unwrap().starts_with("gzip"));
        assert!(what(&with(0, &[0xFD, b'7', b'z', b'X', b'Z', 0]))
            .unwrap()
            .starts_with("xz"));
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
