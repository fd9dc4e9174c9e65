//! `rootrun doctor`: is this host ready to run containers, each check one
//! line with the command that fixes it. The checks read the host (/proc,
//! /sys, binfmt_misc, the emulators' `--version`); how a reading is judged
//! is pure and unit-tested on texts.

use std::path::Path;

use serde::Serialize;

use crate::arch::{self, Arch, Binfmt, Entry, InterpreterFacts, BINFMT_DIR};
use crate::sys::userns::NoPrivateBinfmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Ok,
    /// Works, but something is missing or risky.
    Warn,
    /// rootrun cannot run (this kind of image) here.
    Fail,
    /// A fact, nothing to judge.
    Info,
}

impl Status {
    pub fn word(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Warn => "warn",
            Status::Fail => "FAIL",
            Status::Info => "info",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Check {
    /// What was checked (`root`, `liblxc`, `binfmt aarch64`, ...).
    pub check: String,
    pub status: Status,
    pub detail: String,
    /// The command or step that fixes it.
    pub fix: Option<String>,
}

fn check(name: &str, status: Status, detail: impl Into<String>, fix: Option<&str>) -> Check {
    Check {
        check: name.to_owned(),
        status,
        detail: detail.into(),
        fix: fix.map(str::to_owned),
    }
}

/// Every host check, in the order a reader fixes them.
pub fn host_checks() -> Vec<Check> {
    let mut checks = vec![privileges(), liblxc()];
    let filesystems = std::fs::read_to_string("/proc/filesystems").unwrap_or_default();
    let release = crate::sys::proc::kernel_release();
    let config = kernel_config(release.trim());
    checks.extend(file_systems(&filesystems, config.as_deref()));
    checks.push(loop_devices(Path::new("/dev/loop-control").exists()));
    checks.push(namespaces());
    checks.push(user_namespaces(
        std::fs::read_to_string("/proc/sys/user/max_user_namespaces")
            .ok()
            .as_deref(),
    ));
    checks.push(sandboxed_binfmt(
        release.trim(),
        crate::sys::userns::private_binfmt_misc(),
    ));
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    checks.push(cgroups(&mountinfo));
    let dir = Path::new(BINFMT_DIR);
    let (binfmt, mounted) = match arch::read_binfmt(dir) {
        // Entries live while binfmt_misc is mounted anywhere, and a run
        // mounts its own: look through a throwaway mount, as a run would.
        Ok(Binfmt::NotMounted) => (
            crate::sys::binfmt_probe::list_unmounted(dir)
                .and_then(|listing| arch::binfmt_from_listing(&listing).ok())
                .unwrap_or(Binfmt::NotMounted),
            false,
        ),
        Ok(binfmt) => (binfmt, true),
        Err(e) => {
            checks.push(check("binfmt_misc", Status::Fail, e.to_string(), None));
            return checks;
        }
    };
    checks.push(binfmt_mounted(&binfmt, mounted));
    checks.extend(handlers(&binfmt, &arch::inspect_interpreter, &|path| {
        arch::probe_version(path)
    }));
    checks
}

/// Ready: no check failed.
pub fn ready(checks: &[Check]) -> bool {
    checks.iter().all(|c| c.status != Status::Fail)
}

fn privileges() -> Check {
    let missing = crate::sys::privileges::missing();
    if missing.is_empty() {
        check("root", Status::Ok, "every capability rootrun needs", None)
    } else {
        let names: Vec<String> = missing.iter().map(ToString::to_string).collect();
        check(
            "root",
            Status::Fail,
            format!("missing {}", names.join(", ")),
            Some("run rootrun as root: sudo rootrun ..."),
        )
    }
}

fn liblxc() -> Check {
    match crate::lxc::library::load() {
        Ok(library) => check(
            "liblxc",
            Status::Ok,
            format!("liblxc {} loaded", library.version),
            None,
        ),
        Err(e) => check(
            "liblxc",
            Status::Fail,
            e.to_string(),
            Some("apt-get install liblxc1 (Debian 13: liblxc1t64)"),
        ),
    }
}

/// The kernel's build configuration, where the distribution keeps it.
fn kernel_config(release: &str) -> Option<String> {
    std::fs::read_to_string(format!("/boot/config-{release}")).ok()
}

/// squashfs (and its decompressors), overlay, tmpfs from /proc/filesystems
/// and, when readable, the kernel's configuration (a module not loaded yet
/// is not listed in /proc/filesystems, but mount(2) loads it).
fn file_systems(filesystems: &str, config: Option<&str>) -> Vec<Check> {
    let listed = |fs: &str| {
        filesystems
            .lines()
            .any(|l| l.split_whitespace().last() == Some(fs))
    };
    let configured = |option: &str| {
        config.and_then(|c| {
            c.lines()
                .find_map(|l| l.strip_prefix(&format!("{option}=")))
                .map(|v| v == "y" || v == "m")
        })
    };
    let mut checks = Vec::new();
    for (fs, option, status, fix, what) in [
        (
            "squashfs",
            "CONFIG_SQUASHFS",
            Status::Warn,
            "modprobe squashfs; or boot images with --unpack",
            "mounting SquashFS images",
        ),
        (
            "overlay",
            "CONFIG_OVERLAY_FS",
            Status::Fail,
            "modprobe overlay",
            "the container's writable layer",
        ),
    ] {
        let detail = match (listed(fs), configured(option)) {
            (true, _) => format!("{fs}: in the kernel ({what})"),
            (false, Some(true)) => format!("{fs}: a module, loaded on first mount ({what})"),
            (false, _) => format!("{fs}: not in /proc/filesystems ({what})"),
        };
        let ok = listed(fs) || configured(option) == Some(true);
        checks.push(check(
            fs,
            if ok { Status::Ok } else { status },
            detail,
            (!ok).then_some(fix),
        ));
    }
    if let Some(config) = config {
        let compressors: Vec<&str> = ["GZIP", "LZ4", "LZO", "XZ", "ZSTD"]
            .into_iter()
            .filter(|c| {
                let key = format!("CONFIG_SQUASHFS_{c}=y");
                c == &"GZIP" && config.contains("CONFIG_SQUASHFS_ZLIB=y") || config.contains(&key)
            })
            .collect();
        checks.push(check(
            "squashfs compressors",
            Status::Info,
            format!(
                "the kernel reads {} SquashFS images; others: --unpack (backhand reads them all)",
                if compressors.is_empty() {
                    "no compressed".to_owned()
                } else {
                    compressors.join(", ").to_lowercase()
                }
            ),
            None,
        ));
    }
    checks
}

fn loop_devices(control: bool) -> Check {
    if control {
        check("loop", Status::Ok, "/dev/loop-control exists", None)
    } else {
        check(
            "loop",
            Status::Warn,
            "no /dev/loop-control: images cannot be loop-mounted",
            Some("modprobe loop; or boot images with --unpack"),
        )
    }
}

fn namespaces() -> Check {
    let kinds = ["mnt", "pid", "net", "uts", "ipc", "cgroup"];
    let missing: Vec<&str> = kinds
        .into_iter()
        .filter(|k| !Path::new("/proc/self/ns").join(k).exists())
        .collect();
    if missing.is_empty() {
        check("namespaces", Status::Ok, kinds.join(", "), None)
    } else {
        check(
            "namespaces",
            Status::Fail,
            format!("the kernel lacks {} namespaces", missing.join(", ")),
            Some("a kernel built with CONFIG_NAMESPACES and each namespace type"),
        )
    }
}

fn user_namespaces(max: Option<&str>) -> Check {
    match max.and_then(|m| m.trim().parse::<u64>().ok()) {
        Some(0) => check(
            "user namespaces",
            Status::Info,
            "disabled (user.max_user_namespaces = 0): --unprivileged cannot work; the default \
             (privileged) containers do not need them",
            None,
        ),
        Some(n) => check(
            "user namespaces",
            Status::Info,
            format!("available (up to {n})"),
            None,
        ),
        None => check(
            "user namespaces",
            Status::Info,
            "not available: --unprivileged cannot work; the default (privileged) containers do \
             not need them",
            None,
        ),
    }
}

/// binfmt_misc instances per user namespace came with Linux 6.7.
fn sandboxed_binfmt(release: &str, private: Result<(), NoPrivateBinfmt>) -> Check {
    check(
        "sandboxed binfmt_misc",
        Status::Info,
        match private {
            Ok(()) => format!(
                "Linux {release} gives a user namespace a binfmt_misc of its own: \
                 --unprivileged runs foreign images without the host's handlers"
            ),
            Err(why) => format!("{why}: --unprivileged runs native images only"),
        },
        None,
    )
}

/// The cgroup layout from mountinfo: unified (v2 only), hybrid or v1.
fn cgroups(mountinfo: &str) -> Check {
    let mut v1 = false;
    let mut v2 = false;
    for line in mountinfo.lines() {
        let Some((_, after)) = line.split_once(" - ") else {
            continue;
        };
        match after.split_whitespace().next() {
            Some("cgroup2") => v2 = true,
            Some("cgroup") => v1 = true,
            _ => {}
        }
    }
    match (v1, v2) {
        (false, true) => check("cgroups", Status::Ok, "unified (cgroup v2 only)", None),
        (true, true) => check("cgroups", Status::Ok, "hybrid (v1 and v2)", None),
        (true, false) => check("cgroups", Status::Ok, "v1 only", None),
        (false, false) => check(
            "cgroups",
            Status::Fail,
            "no cgroup file system is mounted",
            Some("mount -t cgroup2 cgroup2 /sys/fs/cgroup"),
        ),
    }
}

/// `mounted`: on BINFMT_DIR in rootrun's view; else `binfmt` is what a
/// mount of its own shows.
fn binfmt_mounted(binfmt: &Binfmt, mounted: bool) -> Check {
    let mount = format!("mount -t binfmt_misc binfmt_misc {BINFMT_DIR}");
    match (binfmt, mounted) {
        (Binfmt::Mounted { enabled: false, .. }, _) => check(
            "binfmt_misc",
            Status::Fail,
            "disabled: no foreign image runs",
            Some(&format!("echo 1 > {BINFMT_DIR}/status")),
        ),
        (Binfmt::Mounted { .. }, true) => check(
            "binfmt_misc",
            Status::Ok,
            format!("mounted on {BINFMT_DIR}, enabled"),
            None,
        ),
        (Binfmt::Mounted { entries, .. }, false) if !entries.is_empty() => check(
            "binfmt_misc",
            Status::Warn,
            format!(
                "not mounted on {BINFMT_DIR}; its {} handlers still work (rootrun mounts it in \
                 its own namespace)",
                entries.len()
            ),
            Some(&mount),
        ),
        _ => check(
            "binfmt_misc",
            Status::Warn,
            "not mounted and no handler registered: only native images run",
            Some(&format!(
                "{mount} && /lib/systemd/systemd-binfmt (or rootrun --register-binfmt)"
            )),
        ),
    }
}

/// Per foreign architecture: the handler the kernel would use for its ELF
/// files (the newest enabled match), its flags, its interpreter, QEMU's
/// version and real-time signal mapping, and the entries it shadows.
fn handlers(
    binfmt: &Binfmt,
    interpreter: &dyn Fn(&Path) -> InterpreterFacts,
    version: &dyn Fn(&Path) -> Option<arch::QemuVersion>,
) -> Vec<Check> {
    let Binfmt::Mounted {
        enabled: true,
        entries,
    } = binfmt
    else {
        return Vec::new();
    };
    let mut checks = Vec::new();
    let mut without = Vec::new();
    let mut seen: Vec<&str> = Vec::new();
    for arch in Arch::all().filter(|a| !a.runs_natively(Arch::host())) {
        // armhf and armel share qemu-arm's entry: one line.
        if seen.contains(&arch.qemu()) {
            continue;
        }
        seen.push(arch.qemu());
        let head = arch::qemu_pattern(arch).magic;
        let mut candidates: Vec<Entry> = entries.clone();
        let Some(chosen) = arch::select(&candidates, &head, "").cloned() else {
            without.push(arch.qemu());
            continue;
        };
        candidates.retain(|e| e.name != chosen.name);
        let mut shadowed = Vec::new();
        while let Some(next) = arch::select(&candidates, &head, "").cloned() {
            candidates.retain(|e| e.name != next.name);
            shadowed.push(next.name);
        }
        checks.push(handler_check(
            arch,
            &chosen,
            &shadowed,
            interpreter(&chosen.interpreter),
            version(&chosen.interpreter),
        ));
    }
    if !without.is_empty() {
        checks.push(check(
            "binfmt (no handler)",
            Status::Info,
            format!(
                "no handler for {}: images of these architectures cannot run",
                without.join(", ")
            ),
            Some("apt-get install qemu-user-static (Debian 13: qemu-user qemu-user-binfmt), or rootrun --register-binfmt"),
        ));
    }
    checks
}

fn handler_check(
    arch: Arch,
    entry: &Entry,
    shadowed: &[String],
    facts: InterpreterFacts,
    version: Option<arch::QemuVersion>,
) -> Check {
    let name = format!("binfmt {}", arch.qemu());
    let flags = entry.flags.letters();
    let interpreter = entry.interpreter.display();
    let mut detail = format!("{} -> {interpreter} flags {flags:?}", entry.name);
    let (mut status, mut fix) = (Status::Ok, None);
    match (&facts, entry.flags.fix_binary) {
        (InterpreterFacts::Dynamic { loader }, _) => {
            status = Status::Fail;
            detail += &format!(
                ", dynamically linked (needs {} inside the image)",
                loader.display()
            );
            fix = Some(
                "install the static emulator (qemu-user-static; Debian 13: qemu-user) and \
                 register it with the F flag (rootrun --register-binfmt)"
                    .to_owned(),
            );
        }
        (InterpreterFacts::Missing, false) => {
            status = Status::Fail;
            detail += ", interpreter missing";
            fix = Some(format!(
                "apt-get install qemu-user-static, or echo -1 > {BINFMT_DIR}/{}",
                entry.name
            ));
        }
        (InterpreterFacts::Missing, true) => {
            detail += ", static (opened at registration; the path is gone since)";
        }
        (InterpreterFacts::Static { .. }, true) => detail += ", static, preloaded (F)",
        (InterpreterFacts::Static { .. }, false) => {
            detail += ", static, bind-mounted into each container (no F)"
        }
    }
    match version {
        Some(v) => {
            detail += &format!(", QEMU {v}");
            if let Some(shift) = arch::rt_signal_shift(v) {
                detail += &format!(", host SIGRTMIN+n arrives as SIGRTMIN+(n-{shift})");
            }
        }
        None => detail += ", QEMU version unknown",
    }
    if entry.flags.credentials {
        if status == Status::Ok {
            status = Status::Warn;
        }
        detail += "; flag C: setuid guest programs run the emulator with their credentials";
        fix.get_or_insert_with(|| {
            "register the handler without C (Debian's qemu-user-static uses POF)".to_owned()
        });
    }
    if !shadowed.is_empty() {
        detail += &format!("; shadows {}", shadowed.join(", "));
    }
    Check {
        check: name,
        status,
        detail,
        fix,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cgroup_layouts_are_told_apart_from_mountinfo() {
        let v2 = "35 1 0:30 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n";
        let v1 = "36 1 0:31 / /sys/fs/cgroup/cpu rw - cgroup cgroup rw,cpu\n";
        assert_eq!(cgroups(v2).detail, "unified (cgroup v2 only)");
        assert_eq!(cgroups(&format!("{v1}{v2}")).detail, "hybrid (v1 and v2)");
        assert_eq!(cgroups("").status, Status::Fail);
    }

    #[test]
    fn a_missing_overlay_fails_a_missing_squashfs_only_warns() {
        let checks = file_systems("nodev\ttmpfs\n", None);
        assert_eq!(checks[0].status, Status::Warn);
        assert!(checks[0].fix.as_deref().unwrap().contains("--unpack"));
        assert_eq!(checks[1].status, Status::Fail);
        let modules = file_systems("", Some("CONFIG_OVERLAY_FS=m\nCONFIG_SQUASHFS=m\n"));
        assert!(modules.iter().take(2).all(|c| c.status == Status::Ok));
        assert!(ready(&modules));
    }

    #[test]
    fn handlers_name_the_kernels_choice_its_flags_and_what_it_shadows() {
        let entry = |name: &str, flags: &str, rank: u64| Entry {
            name: name.into(),
            enabled: true,
            kind: arch::qemu_pattern(Arch::Aarch64).kind(),
            interpreter: format!("/usr/bin/{name}").into(),
            flags: arch::Flags::from_letters(flags).unwrap(),
            order_key: arch::OrderKey { rank },
        };
        let binfmt = Binfmt::Mounted {
            enabled: true,
            entries: vec![entry("qemu-aarch64", "POF", 1), entry("late", "OC", 2)],
        };
        let checks = handlers(
            &binfmt,
            &|path| InterpreterFacts::Static {
                host_file: path.to_path_buf(),
            },
            &|_| arch::parse_version("qemu-aarch64 version 7.2.22"),
        );
        let aarch64 = checks
            .iter()
            .find(|c| c.check == "binfmt aarch64")
            .expect("aarch64");
        assert_eq!(aarch64.status, Status::Warn, "{aarch64:?}");
        assert!(aarch64
            .detail
            .starts_with("late -> /usr/bin/late flags \"OC\""));
        assert!(aarch64.detail.contains("QEMU 7.2.22"), "{}", aarch64.detail);
        assert!(aarch64.detail.contains("SIGRTMIN+(n-2)"));
        assert!(aarch64.detail.contains("shadows qemu-aarch64"));
        assert!(checks.iter().any(|c| c.check == "binfmt (no handler)"));
    }

    #[test]
    fn binfmt_not_mounted_warns_with_the_mount_command() {
        let c = binfmt_mounted(&Binfmt::NotMounted, false);
        assert_eq!(c.status, Status::Warn);
        assert!(c.fix.unwrap().starts_with("mount -t binfmt_misc"));
    }
}
