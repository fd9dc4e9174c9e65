//! Sweeping cgroups that a killed rootrun left behind.
//!
//! liblxc removes its `lxc.monitor.NAME` and `lxc.payload.NAME` cgroups when
//! a container stops normally, but a SIGKILLed monitor leaves them, empty, in
//! every hierarchy. rootrun's container names carry the launching process's
//! PID, so a cgroup whose rootrun no longer runs is stale. Only empty cgroups
//! can be removed (rmdir(2) on a cgroup with tasks fails with EBUSY), so a
//! sweep can never disturb a running container.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// How long to wait for the tasks of a just-killed container to be reaped
/// (a SIGKILLed PID namespace empties its cgroup asynchronously).
const DRAIN_WAIT: Duration = Duration::from_secs(3);

/// Removes stale `lxc.{monitor,payload}.rootrun-PID` cgroups; returns how
/// many were removed. Errors are ignored: the sweep is housekeeping.
pub fn sweep_stale(name_prefix: &str) -> usize {
    remove_all(find(|name| {
        stale_owner(name, name_prefix).is_some_and(|pid| !rootrun_alive(pid))
    }))
}

/// Removes the cgroups of container `name` that liblxc's own teardown left
/// (it logs a failed rmdir and goes on); returns how many were removed.
/// Called once the container's monitor has exited.
pub fn remove_leftovers(name: &str) -> usize {
    remove_all(find(|found| container_of(found) == Some(name)))
}

/// Removes `dirs`, retrying while their tasks drain; errors are ignored.
fn remove_all(mut dirs: Vec<PathBuf>) -> usize {
    let mut removed = 0;
    let deadline = Instant::now() + DRAIN_WAIT;
    loop {
        dirs.retain(|dir| {
            removed += remove_tree(dir, 0);
            dir.exists()
        });
        if dirs.is_empty() || Instant::now() >= deadline {
            return removed;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// liblxc creates its cgroups in the cgroup of init (PID 1) of each
/// hierarchy (cgroups(7): /proc/PID/cgroup), so only those directories, the
/// hierarchy roots and rootrun's own cgroup are listed: a handful of
/// readdirs instead of a walk of the host's tree.
fn find(wanted: impl Fn(&str) -> bool) -> Vec<PathBuf> {
    let mut relative: Vec<String> = ["/proc/1/cgroup", "/proc/self/cgroup"]
        .iter()
        .filter_map(|file| fs::read_to_string(file).ok())
        .flat_map(|text| {
            text.lines()
                .filter_map(|l| l.splitn(3, ':').nth(2).map(str::to_owned))
                .collect::<Vec<_>>()
        })
        .collect();
    relative.push("/".into());
    relative.sort();
    relative.dedup();
    let mut found = Vec::new();
    for root in hierarchies() {
        for rel in &relative {
            let dir = root.join(rel.trim_start_matches('/'));
            let Ok(entries) = fs::read_dir(&dir) else {
                continue;
            };
            for entry in entries.flatten() {
                if wanted(&entry.file_name().to_string_lossy())
                    && entry.file_type().is_ok_and(|t| t.is_dir())
                {
                    found.push(entry.path());
                }
            }
        }
    }
    found
}

/// The PID in `lxc.monitor.rootrun-PID` / `lxc.payload.rootrun-PID`.
fn stale_owner(name: &str, prefix: &str) -> Option<u32> {
    container_of(name)?.strip_prefix(prefix)?.parse().ok()
}

/// The container a liblxc cgroup belongs to: NAME in `lxc.monitor.NAME` and
/// `lxc.payload.NAME`.
fn container_of(cgroup: &str) -> Option<&str> {
    cgroup
        .strip_prefix("lxc.monitor.")
        .or_else(|| cgroup.strip_prefix("lxc.payload."))
}

/// Any process with the owner's PID counts as the owner: a name check
/// (`comm`) would call a renamed or copied rootrun dead and strip its live
/// container's empty child cgroups. A PID reused by another program only
/// delays the sweep of an empty cgroup until that program exits. rootrun's
/// own PID counts as dead: the sweep runs before its container starts, so a
/// cgroup with its name is a previous owner's, left after PID reuse, and
/// would collide with the one liblxc is about to create.
fn rootrun_alive(pid: u32) -> bool {
    pid != std::process::id()
        && fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| running(&stat))
}

/// Whether a `/proc/PID/stat` line is of a process that has not exited
/// (a zombie, Z, or dead, X, one has: proc_pid_stat(5)).
fn running(stat: &str) -> bool {
    // The name in parentheses may itself hold spaces and parentheses.
    let state = stat
        .rsplit_once(") ")
        .and_then(|(_, rest)| rest.chars().next());
    !matches!(state, None | Some('Z' | 'X'))
}

/// Removes a cgroup and its (empty) children, deepest first.
fn remove_tree(dir: &Path, depth: usize) -> usize {
    let mut removed = 0;
    if depth < 16 {
        for entry in fs::read_dir(dir).into_iter().flatten().flatten() {
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                removed += remove_tree(&entry.path(), depth + 1);
            }
        }
    }
    if fs::remove_dir(dir).is_ok() {
        removed += 1;
    }
    removed
}

/// Mount points of cgroup and cgroup2 file systems (proc_pid_mountinfo(5)).
fn hierarchies() -> Vec<PathBuf> {
    let text = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    text.lines()
        .filter_map(|line| {
            let (left, right) = line.split_once(" - ")?;
            let fstype = right.split(' ').next()?;
            let mount_point = left.split(' ').nth(4)?;
            matches!(fstype, "cgroup" | "cgroup2").then(|| PathBuf::from(unescape(mount_point)))
        })
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_rootrun_monitor_and_payload_cgroups_have_owners() {
        assert_eq!(stale_owner("lxc.payload.rootrun-42", "rootrun-"), Some(42));
        assert_eq!(stale_owner("lxc.monitor.rootrun-7", "rootrun-"), Some(7));
        assert_eq!(stale_owner("lxc.payload.web", "rootrun-"), None);
        assert_eq!(stale_owner("lxc.payload.rootrun-x", "rootrun-"), None);
        assert_eq!(stale_owner("system.slice", "rootrun-"), None);
    }

    #[test]
    fn zombies_and_dead_processes_are_not_running() {
        assert!(running("42 (rootrun) S 1 42 42 0 -1"));
        assert!(running("42 (a) b) R 1 42"));
        assert!(!running("42 (rootrun) Z 1 42 42 0 -1"));
        assert!(!running("42 (x) Z) X 1"));
        assert!(!running("garbage"));
        assert!(rootrun_alive(1));
        assert!(!rootrun_alive(std::process::id()));
    }

    /// Removes what the test made even when an assertion fails.
    struct Made(Vec<PathBuf>);

    impl Drop for Made {
        fn drop(&mut self) {
            for dir in self.0.iter().rev() {
                let _ = fs::remove_dir(dir);
            }
        }
    }

    /// Real cgroups in every hierarchy: the container's two (with a child)
    /// go, a look-alike with a longer name stays.
    #[test]
    fn leftovers_of_one_container_are_removed_in_every_hierarchy() {
        if !nix::unistd::geteuid().is_root() {
            assert_ne!(
                std::env::var("CI").as_deref(),
                Ok("true"),
                "needs root to make cgroups"
            );
            println!("note: not run: needs root to make cgroups");
            return;
        }
        let roots = hierarchies();
        assert!(!roots.is_empty(), "no cgroup hierarchy is mounted");
        let name = format!("rootrun-unit-{}", std::process::id());
        let mut made = Made(Vec::new());
        for root in &roots {
            for dir in [
                format!("lxc.monitor.{name}"),
                format!("lxc.payload.{name}"),
                format!("lxc.payload.{name}/child"),
                format!("lxc.payload.{name}0"),
            ] {
                let path = root.join(dir);
                fs::create_dir(&path).expect("mkdir in a cgroup hierarchy");
                made.0.push(path);
            }
        }
        assert_eq!(remove_leftovers(&name), 3 * roots.len());
        for root in &roots {
            assert!(!root.join(format!("lxc.monitor.{name}")).exists());
            assert!(!root.join(format!("lxc.payload.{name}")).exists());
            assert!(root.join(format!("lxc.payload.{name}0")).exists());
        }
    }
}
