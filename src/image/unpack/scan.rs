//! The first pass: walk the whole directory tree of the image without writing anything, and
//! turn it into a flat list of steps. Everything that can be checked from metadata alone is
//! checked here, so a hostile tree is refused before DIR is touched: names that are not single
//! components, duplicate names, entry types that disagree with their inodes, and a directory
//! reached twice. Refusing a second visit makes loops and DAGs (DESIGN.md: 2^30 paths from 62
//! inodes) an error after at most one pass over the directory table.

use std::collections::{HashMap, HashSet};
use std::ffi::CString;

use super::super::dirtable::parse_listing;
use super::super::inode::InodeRef;
use super::super::squash::{entry_type, Node, SquashSource};
use super::super::walk::{is_valid_name, FileKind};
use super::super::ImageError;

/// Directories nested deeper than this are refused: extraction keeps one fd per level open,
/// and real root filesystems stay far below it (PATH_MAX allows about 2048 levels).
pub const MAX_DEPTH: usize = 256;
/// Entries in the whole tree. Each costs a few dozen bytes of memory here.
pub const MAX_ENTRIES: usize = 8 << 20;

#[derive(Debug)]
pub enum Step {
    /// Create directory `name` in the current one and enter it.
    Dir { name: CString, at: InodeRef },
    /// Create the non-directory `name` in the current directory.
    Leaf {
        name: CString,
        inode: u32,
        at: InodeRef,
    },
    /// Leave the current directory (its contents are complete).
    Up,
}

#[derive(Debug, Default)]
pub struct Plan {
    pub steps: Vec<Step>,
    /// Directory entries, the root excluded.
    pub entries: u64,
    /// Bytes of regular file data, each inode counted once.
    pub bytes: u64,
    /// How many entries name each non-directory inode (more than one: hard links).
    pub refs: HashMap<u32, u32>,
}

struct Frame {
    entries: Vec<(CString, Node)>,
    next: usize,
    path: String,
}

pub fn scan(sq: &SquashSource) -> Result<Plan, ImageError> {
    let root = &sq.root().inode;
    let root_info = sq.info(root, "/")?;
    if root_info.kind != FileKind::Dir {
        return Err(sq.corrupt("/", "root inode is not a directory"));
    }
    let mut plan = Plan::default();
    let mut visited = HashSet::from([root.header.inode_number]);
    let mut stack = vec![Frame {
        entries: listing(sq, root, "/")?,
        next: 0,
        path: String::new(),
    }];
    while let Some(top) = stack.last_mut() {
        let Some((name, node)) = top.entries.get(top.next).cloned() else {
            stack.pop();
            if !stack.is_empty() {
                plan.steps.push(Step::Up);
            }
            continue;
        };
        top.next += 1;
        let path = format!("{}/{}", top.path, String::from_utf8_lossy(name.as_bytes()));
        let (number, at) = (node.inode.header.inode_number, node.at);
        let info = sq.info(&node.inode, &path)?;
        plan.entries += 1;
        if plan.steps.len() >= MAX_ENTRIES {
            return Err(sq.corrupt(&path, &format!("more than {MAX_ENTRIES} entries")));
        }
        if info.kind != FileKind::Dir {
            let refs = plan.refs.entry(number).or_insert(0);
            *refs += 1;
            if *refs == 1 && info.kind == FileKind::File {
                plan.bytes = plan.bytes.saturating_add(info.size);
            }
            plan.steps.push(Step::Leaf {
                name,
                inode: number,
                at,
            });
            continue;
        }
        if !visited.insert(number) {
            return Err(sq.corrupt(
                &path,
                "directory reached a second time (a directory loop or DAG)",
            ));
        }
        if stack.len() >= MAX_DEPTH {
            return Err(sq.corrupt(
                &path,
                &format!("directories nested deeper than {MAX_DEPTH}"),
            ));
        }
        let entries = listing(sq, &node.inode, &path)?;
        plan.steps.push(Step::Dir { name, at });
        stack.push(Frame {
            entries,
            next: 0,
            path,
        });
    }
    Ok(plan)
}

/// A directory's entries, checked: single-component names, no duplicates, and each entry's
/// recorded type equal to its inode's (a mismatch is how a crafted listing disguises a node).
fn listing(
    sq: &SquashSource,
    dir: &backhand::Inode,
    path: &str,
) -> Result<Vec<(CString, Node)>, ImageError> {
    let shown = if path.is_empty() { "/" } else { path };
    let bytes = sq.listing(dir, shown)?;
    let raw = parse_listing(&bytes).map_err(|what| sq.corrupt(shown, &what))?;
    let mut seen = HashSet::with_capacity(raw.len());
    let mut out = Vec::with_capacity(raw.len());
    for entry in raw {
        let lossy = || String::from_utf8_lossy(entry.name).into_owned();
        if !is_valid_name(entry.name) {
            return Err(ImageError::BadEntryName {
                image: sq.image_path().to_path_buf(),
                dir: shown.to_string(),
                name: lossy(),
            });
        }
        if !seen.insert(entry.name) {
            return Err(ImageError::DuplicateName {
                image: sq.image_path().to_path_buf(),
                dir: shown.to_string(),
                name: lossy(),
            });
        }
        let child = format!("{path}/{}", lossy());
        let node = sq.entry_node(&entry, &child)?;
        if entry_type(sq.info(&node.inode, &child)?.kind) != entry.kind {
            return Err(sq.corrupt(&child, "directory entry type differs from its inode's type"));
        }
        // is_valid_name excluded NUL, so this cannot fail; the error keeps it honest.
        let name =
            CString::new(entry.name).map_err(|_| sq.corrupt(&child, "name contains a NUL byte"))?;
        out.push((name, node));
    }
    Ok(out)
}
