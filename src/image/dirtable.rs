//! Parsing one directory's listing from the SquashFS directory table.
//!
//! backhand keeps its own listing parser crate-private, so the on-disk format is read here. It
//! is small (squashfs-tools `squashfs_fs.h`, and the kernel's fs/squashfs/namei.c): a run of
//! headers `{count-1: u32, start: u32, inode_number: u32}`, each followed by `count` entries
//! `{offset: u16, inode_offset: i16, type: u16, name_size-1: u16, name}`, all little-endian.

/// One directory entry, borrowed from the listing bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RawEntry<'a> {
    pub inode_number: u32,
    /// Where the inode is: its metadata block's position from the inode table's start, and
    /// its offset in that block.
    pub inode_block: u32,
    pub inode_offset: u16,
    /// The basic inode type (1 directory ... 7 socket), even for extended inodes.
    pub kind: u16,
    pub name: &'a [u8],
}

/// The kernel rejects headers announcing more than 256 entries (SQUASHFS_DIR_COUNT).
const MAX_ENTRIES_PER_HEADER: u32 = 256;

/// Splits a listing into entries, failing on anything truncated or out of range.
pub fn parse_listing(mut bytes: &[u8]) -> Result<Vec<RawEntry<'_>>, String> {
    let mut entries = Vec::new();
    while !bytes.is_empty() {
        let count = u32::from_le_bytes(take(&mut bytes, 4)?.try_into().map_err(|_| "header")?)
            .checked_add(1)
            .filter(|&c| c <= MAX_ENTRIES_PER_HEADER)
            .ok_or("directory header with more than 256 entries")?;
        let start = u32::from_le_bytes(take(&mut bytes, 4)?.try_into().map_err(|_| "header")?);
        let base = u32::from_le_bytes(take(&mut bytes, 4)?.try_into().map_err(|_| "header")?);
        for _ in 0..count {
            let fixed = take(&mut bytes, 8)?;
            let offset = u16::from_le_bytes([fixed[0], fixed[1]]);
            let inode_offset = i16::from_le_bytes([fixed[2], fixed[3]]);
            let kind = u16::from_le_bytes([fixed[4], fixed[5]]);
            let name_len = usize::from(u16::from_le_bytes([fixed[6], fixed[7]])) + 1;
            let name = take(&mut bytes, name_len)?;
            let inode_number = u32::try_from(i64::from(base) + i64::from(inode_offset))
                .map_err(|_| format!("entry inode number {base}{inode_offset:+} out of range"))?;
            entries.push(RawEntry {
                inode_number,
                inode_block: start,
                inode_offset: offset,
                kind,
                name,
            });
        }
    }
    Ok(entries)
}

fn take<'a>(bytes: &mut &'a [u8], n: usize) -> Result<&'a [u8], String> {
    if bytes.len() < n {
        return Err(format!(
            "directory listing truncated ({} bytes left, {n} needed)",
            bytes.len()
        ));
    }
    let (head, rest) = bytes.split_at(n);
    *bytes = rest;
    Ok(head)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(count: u32, base: u32) -> Vec<u8> {
        let mut v = (count - 1).to_le_bytes().to_vec();
        v.extend(0u32.to_le_bytes());
        v.extend(base.to_le_bytes());
        v
    }

    fn entry(inode_offset: i16, kind: u16, name: &[u8]) -> Vec<u8> {
        let mut v = 0u16.to_le_bytes().to_vec();
        v.extend(inode_offset.to_le_bytes());
        v.extend(kind.to_le_bytes());
        v.extend(u16::try_from(name.len() - 1).unwrap_or(0).to_le_bytes());
        v.extend(name);
        v
    }

    #[test]
    fn parses_entries() {
        let mut bytes = header(2, 10);
        bytes.extend(entry(0, 1, b"bin"));
        bytes.extend(entry(-3, 3, b"sbin"));
        let entries = parse_listing(&bytes);
        assert_eq!(
            entries,
            Ok(vec![
                RawEntry {
                    inode_number: 10,
                    inode_block: 0,
                    inode_offset: 0,
                    kind: 1,
                    name: b"bin"
                },
                RawEntry {
                    inode_number: 7,
                    inode_block: 0,
                    inode_offset: 0,
                    kind: 3,
                    name: b"sbin"
                },
            ])
        );
    }

    #[test]
    fn rejects_truncated_and_oversized() {
        let mut bytes = header(2, 10);
        bytes.extend(entry(0, 1, b"bin"));
        assert!(parse_listing(&bytes).is_err());
        assert!(parse_listing(&header(300, 1)).is_err());
        let mut negative = header(1, 0);
        negative.extend(entry(-1, 2, b"x"));
        assert!(parse_listing(&negative).is_err());
    }
}
