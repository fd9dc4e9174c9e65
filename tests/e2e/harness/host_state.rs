//! What a test made and must not leave behind, and only that: loop devices
//! whose backing file is one of its paths (its images are hard links in its
//! own work directory, never the shared cache entry), mounts of its paths,
//! of those loop devices or naming its containers, and entries under
//! /run/rootrun and /run/lxc and cgroups in every hierarchy named for its
//! containers (`lxc.monitor.NAME`, `lxc.payload.NAME`, NAME being
//! `rootrun-<PID>` of a rootrun the test spawned), and network interfaces
//! of that name (the host end of a veth pair). Another rootrun on the
//! machine, from another suite or a user, owns none of these, so it cannot
//! fail the test; the test's own rootrun leaving any of them does.

use std::fs;
use std::path::{Path, PathBuf};

/// rootrun's state directory and liblxc's run directory (README: "Nothing
/// is left behind"). Spelled out here rather than taken from rootrun's
/// code: the harness checks rootrun, it does not trust it.
const RUN_DIRS: [&str; 2] = ["/run/rootrun", "/run/lxc"];

/// Whose leftovers to look for.
pub struct Owner<'a> {
    /// Directories and files of the test: its work directory, its images.
    pub paths: &'a [PathBuf],
    /// Names of its containers.
    pub containers: &'a [String],
}

/// The resources of `owner` that exist now, one line each, sorted.
pub fn leftovers(owner: &Owner) -> Vec<String> {
    let loops = loop_devices(owner);
    let mut found: Vec<String> = loops
        .iter()
        .map(|(device, file)| format!("loop device /dev/{device} on {file}"))
        .collect();
    let devices: Vec<String> = loops.iter().map(|(d, _)| format!("/dev/{d}")).collect();
    let mountinfo = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    found.extend(
        mountinfo
            .lines()
            .filter(|line| own_mount(line, owner, &devices))
            .map(|line| format!("mount {line}")),
    );
    for dir in RUN_DIRS {
        found.extend(
            named_entries(Path::new(dir), owner.containers, 8)
                .into_iter()
                .map(|path| format!("run-time entry {}", path.display())),
        );
    }
    // The host end of a container's veth pair is named after it (README,
    // Networking).
    for name in owner.containers {
        let link = Path::new("/sys/class/net").join(name);
        if link.exists() {
            found.push(format!("network interface {name}"));
        }
    }
    for hierarchy in cgroup_hierarchies(&mountinfo) {
        found.extend(
            named_entries(&hierarchy, owner.containers, 8)
                .into_iter()
                .map(|path| format!("cgroup {}", path.display())),
        );
    }
    found.sort();
    found
}

/// `(loopN, backing file)` of the loop devices set up on the owner's paths
/// (`/sys/block/loopN/loop/backing_file` is the path the file was opened by).
fn loop_devices(owner: &Owner) -> Vec<(String, String)> {
    let mut found = Vec::new();
    for entry in fs::read_dir("/sys/block").into_iter().flatten().flatten() {
        let Ok(file) = fs::read_to_string(entry.path().join("loop/backing_file")) else {
            continue;
        };
        let file = file.trim_end_matches('\n');
        let path = file.strip_suffix(" (deleted)").unwrap_or(file);
        if under_any(Path::new(path), owner.paths) {
            found.push((
                entry.file_name().to_string_lossy().into_owned(),
                file.into(),
            ));
        }
    }
    found
}

/// Whether a /proc/self/mountinfo line (proc_pid_mountinfo(5)) is a mount of
/// the owner's: its root, mount point or source under one of its paths, its
/// source one of its loop devices, its options naming one of its paths
/// (overlay `lowerdir=`), or any field naming one of its containers.
pub fn own_mount(line: &str, owner: &Owner, loop_devices: &[String]) -> bool {
    let Some((left, right)) = line.split_once(" - ") else {
        return false;
    };
    let left: Vec<&str> = left.split(' ').collect();
    let right: Vec<&str> = right.split(' ').collect();
    let (root, mount_point) = (left.get(3), left.get(4));
    let (source, options) = (right.get(1), right.get(2));
    let paths = [root, mount_point, source]
        .into_iter()
        .flatten()
        .map(|field| unescape(field));
    for field in paths {
        if under_any(Path::new(&field), owner.paths) || loop_devices.contains(&field) {
            return true;
        }
    }
    let options = unescape(options.unwrap_or(&""));
    if owner
        .paths
        .iter()
        .any(|p| names_path(&options, &p.to_string_lossy()))
    {
        return true;
    }
    let line = unescape(line);
    owner.containers.iter().any(|c| names_container(&line, c))
}

fn under_any(path: &Path, paths: &[PathBuf]) -> bool {
    paths.iter().any(|own| path.starts_with(own))
}

/// Whether `text` holds `path` as a whole path or a prefix of one: preceded
/// by its start or a separator of mount options (`=`, `:`, `,`), followed by
/// its end, `/` or such a separator.
pub fn names_path(text: &str, path: &str) -> bool {
    occurrences(text, path).any(|(before, after)| {
        matches!(before, None | Some('=' | ':' | ',' | ' '))
            && matches!(after, None | Some('/' | ':' | ',' | ' '))
    })
}

/// Whether `text` names container `name` (`rootrun-12`, not in
/// `rootrun-123` nor in `xrootrun-12`).
pub fn names_container(text: &str, name: &str) -> bool {
    occurrences(text, name).any(|(before, after)| {
        !before.is_some_and(|c| c.is_ascii_alphanumeric())
            && !after.is_some_and(|c| c.is_ascii_digit())
    })
}

/// The characters before and after each occurrence of `needle` in `text`.
fn occurrences<'t>(
    text: &'t str,
    needle: &'t str,
) -> impl Iterator<Item = (Option<char>, Option<char>)> + 't {
    text.match_indices(needle).map(move |(at, _)| {
        (
            text[..at].chars().next_back(),
            text[at + needle.len()..].chars().next(),
        )
    })
}

/// Entries under `dir` (down to `depth` levels) whose name names one of
/// `containers`; a match is not descended into.
fn named_entries(dir: &Path, containers: &[String], depth: usize) -> Vec<PathBuf> {
    let mut found = Vec::new();
    if containers.is_empty() {
        return found;
    }
    let mut stack = vec![(dir.to_path_buf(), 0)];
    let mut visited = 0usize;
    while let Some((dir, level)) = stack.pop() {
        for entry in fs::read_dir(&dir).into_iter().flatten().flatten() {
            visited += 1;
            let name = entry.file_name().to_string_lossy().into_owned();
            if containers.iter().any(|c| names_container(&name, c)) {
                found.push(entry.path());
            } else if level < depth
                && visited < 100_000
                && entry.file_type().is_ok_and(|t| t.is_dir())
            {
                stack.push((entry.path(), level + 1));
            }
        }
    }
    found
}

/// Mount points of the cgroup and cgroup2 hierarchies (v1, v2 or hybrid).
pub fn cgroup_hierarchies(mountinfo: &str) -> Vec<PathBuf> {
    mountinfo
        .lines()
        .filter_map(|line| {
            let (left, right) = line.split_once(" - ")?;
            let fstype = right.split(' ').next()?;
            let mount_point = left.split(' ').nth(4)?;
            matches!(fstype, "cgroup" | "cgroup2").then(|| PathBuf::from(unescape(mount_point)))
        })
        .collect()
}

/// The paths that are mount points at or below `dir` (a work directory
/// must not be removed through a mount).
pub fn mounts_below(dir: &Path) -> Vec<PathBuf> {
    fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .filter_map(|line| line.split(' ').nth(4))
        .map(|field| PathBuf::from(unescape(field)))
        .filter(|point| point.starts_with(dir))
        .collect()
}

/// mountinfo escapes space, tab, newline and backslash as octal.
fn unescape(field: &str) -> String {
    field
        .replace("\\040", " ")
        .replace("\\011", "\t")
        .replace("\\012", "\n")
        .replace("\\134", "\\")
}

/// A host disk, as "major minor" (the first non-loop, non-ram block device).
pub fn host_disk() -> Option<(String, String)> {
    let mut disks: Vec<_> = fs::read_dir("/sys/block")
        .ok()?
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    disks.sort();
    let disk = disks
        .into_iter()
        .find(|d| !d.starts_with("loop") && !d.starts_with("ram"))?;
    let dev = fs::read_to_string(format!("/sys/block/{disk}/dev")).ok()?;
    let (major, minor) = dev.trim().split_once(':')?;
    Some((major.to_owned(), minor.to_owned()))
}

/// The host's binfmt_misc entries, by name, with what each file says:
/// compared before, during and after a run that must not touch them.
pub fn binfmt_table() -> Vec<(String, String)> {
    let dir = Path::new("/proc/sys/fs/binfmt_misc");
    let mut entries: Vec<(String, String)> = fs::read_dir(dir)
        .map(|list| {
            list.flatten()
                .map(|e| {
                    let name = e.file_name().to_string_lossy().into_owned();
                    let text = fs::read_to_string(e.path()).unwrap_or_default();
                    (name, text)
                })
                .filter(|(name, _)| name != "register")
                .collect()
        })
        .unwrap_or_default();
    entries.sort();
    entries
}
