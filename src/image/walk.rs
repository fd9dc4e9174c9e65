//! Path resolution inside an image, the same for a SquashFS and a directory source.
//!
//! The rules are those of path_resolution(7) under chroot(2): an absolute symlink target starts
//! again at the image root, a relative one at the link's directory, and `..` at the root stays
//! at the root. Nothing here touches the host's file system; the sources only answer "what is
//! this entry" and "what is in this directory", so a hostile image cannot steer a lookup out.

use std::collections::VecDeque;
use std::path::Path;

use serde::Serialize;

use super::ImageError;

/// The kernel's limit on symlinks followed in one lookup (MAXSYMLINKS, path_resolution(7)).
pub const MAX_SYMLINK_HOPS: usize = 40;

/// A symlink target longer than this cannot be created by the kernel (PATH_MAX, including NUL).
const MAX_LINK_TARGET: usize = 4095;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FileKind {
    File,
    Dir,
    Symlink,
    Char,
    Block,
    Fifo,
    Socket,
}

impl std::fmt::Display for FileKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let name = match self {
            FileKind::File => "regular file",
            FileKind::Dir => "directory",
            FileKind::Symlink => "symbolic link",
            FileKind::Char => "character device",
            FileKind::Block => "block device",
            FileKind::Fifo => "fifo",
            FileKind::Socket => "socket",
        };
        f.write_str(name)
    }
}

/// What a source knows about one entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NodeInfo {
    pub kind: FileKind,
    /// Permission bits only (`mode & 0o7777`): the file type is in `kind`.
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub size: u64,
}

/// The outcome of [`super::Image::resolve`]: the final in-image path after following symlinks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Resolved {
    /// Absolute, normalized, symlink-free path inside the image. Names that are not UTF-8 are
    /// shown lossily, so this is for display; resolving it again may fail for such names.
    pub path: String,
    pub kind: FileKind,
    /// Permission bits; `inspect --json` shows them as octal text ("0755").
    #[serde(serialize_with = "octal")]
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub size: u64,
}

fn octal<S: serde::Serializer>(mode: &u32, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(&format_args!("{:04o}", mode & 0o7777))
}

/// One directory tree the resolver can walk: a SquashFS image or a host directory.
pub trait Tree {
    type Node;

    fn root(&self) -> Result<(Self::Node, NodeInfo), ImageError>;

    /// The entry `name` of directory `dir` (shown as `dir_path` in errors), or None when absent.
    /// `name` is a single component: never empty, `.`, `..`, and without `/` or NUL.
    fn child(
        &self,
        dir: &Self::Node,
        dir_path: &str,
        name: &[u8],
    ) -> Result<Option<(Self::Node, NodeInfo)>, ImageError>;

    fn link_target(&self, link: &Self::Node, link_path: &str) -> Result<Vec<u8>, ImageError>;
}

struct Step<N> {
    name: Vec<u8>,
    node: N,
    info: NodeInfo,
}

/// Follows `path` (absolute, inside the image) to the entry it names.
pub fn resolve<T: Tree>(
    tree: &T,
    image: &Path,
    path: &str,
) -> Result<(Resolved, T::Node), ImageError> {
    let bad_path = |why| ImageError::BadPath {
        image: image.to_path_buf(),
        path: path.to_string(),
        why,
    };
    if !path.starts_with('/') {
        return Err(bad_path("not absolute"));
    }
    if path.contains('\0') {
        return Err(bad_path("contains a NUL byte"));
    }

    let (root, root_info) = tree.root()?;
    let mut stack: Vec<Step<T::Node>> = Vec::new();
    let mut pending: VecDeque<Vec<u8>> = split(path.as_bytes()).collect();
    let mut hops = 0;

    while let Some(name) = pending.pop_front() {
        match name.as_slice() {
            b"" | b"." => continue,
            b".." => {
                // At the root, `..` is the root itself, as under chroot(2).
                stack.pop();
                continue;
            }
            _ => {}
        }
        let dir_path = display(&stack);
        let (dir, dir_info) = match stack.last() {
            Some(step) => (&step.node, step.info),
            None => (&root, root_info),
        };
        if dir_info.kind != FileKind::Dir {
            return Err(ImageError::NotADirectory {
                image: image.to_path_buf(),
                path: dir_path,
            });
        }
        let Some((node, info)) = tree.child(dir, &dir_path, &name)? else {
            return Err(ImageError::NotFound {
                image: image.to_path_buf(),
                path: join(&dir_path, &name),
            });
        };
        if info.kind != FileKind::Symlink {
            stack.push(Step { name, node, info });
            continue;
        }
        hops += 1;
        if hops > MAX_SYMLINK_HOPS {
            return Err(ImageError::TooManyLinks {
                image: image.to_path_buf(),
                path: path.to_string(),
                max: MAX_SYMLINK_HOPS,
            });
        }
        let link_path = join(&dir_path, &name);
        let target = tree.link_target(&node, &link_path)?;
        check_target(&target).map_err(|what| ImageError::Corrupt {
            image: image.to_path_buf(),
            path: link_path,
            what: what.to_string(),
        })?;
        if target.starts_with(b"/") {
            stack.clear();
        }
        for component in split(&target).rev() {
            pending.push_front(component);
        }
    }

    let info = stack.last().map_or(root_info, |step| step.info);
    let resolved = Resolved {
        path: display(&stack),
        kind: info.kind,
        mode: info.mode,
        uid: info.uid,
        gid: info.gid,
        size: info.size,
    };
    let node = match stack.pop() {
        Some(step) => step.node,
        None => root,
    };
    Ok((resolved, node))
}

pub(super) fn check_target(target: &[u8]) -> Result<(), &'static str> {
    if target.is_empty() {
        return Err("empty symlink target");
    }
    if target.len() > MAX_LINK_TARGET {
        return Err("symlink target longer than PATH_MAX");
    }
    if target.contains(&0) {
        return Err("symlink target contains a NUL byte");
    }
    Ok(())
}

fn split(path: &[u8]) -> impl DoubleEndedIterator<Item = Vec<u8>> + '_ {
    path.split(|&b| b == b'/')
        .filter(|c| !c.is_empty())
        .map(<[u8]>::to_vec)
}

fn display<N>(stack: &[Step<N>]) -> String {
    if stack.is_empty() {
        return "/".to_string();
    }
    stack
        .iter()
        .map(|step| format!("/{}", String::from_utf8_lossy(&step.name)))
        .collect()
}

fn join(dir: &str, name: &[u8]) -> String {
    let name = String::from_utf8_lossy(name);
    if dir == "/" {
        format!("/{name}")
    } else {
        format!("{dir}/{name}")
    }
}

/// Whether a name read from the image is one component that a lookup may match.
pub fn is_valid_name(name: &[u8]) -> bool {
    !name.is_empty() && name != b"." && name != b".." && !name.contains(&b'/') && !name.contains(&0)
}
