//! The debugging side of a launch (`crate::debug`): liblxc's log level,
//! where the run's logs go, and what the emulator of the container's first
//! process is told through its environment.
//!
//! qemu-user reads `QEMU_*` variables from its environment and hands its
//! whole environment to the guest program, so every process the guest
//! starts runs its own qemu with the same variables (qemu-user -h: "-U var
//! QEMU_UNSET_ENV unsets targets environment variable"). `--qemu-cpu` and
//! `--qemu-env` are meant for every process and stay; `--strace` and
//! `--gdb` are for the first process only: `QEMU_UNSET_ENV` names them (and
//! itself), so the first qemu takes them out of what its guest, and every
//! child of it, sees.

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::debug::{DebugConfig, GdbTarget};

use super::Layout;

/// The emulator's directory as the container sees it: a bind mount of the
/// run's `emulator` log directory into the fresh tmpfs liblxc mounts on
/// the container's /dev (`lxc.autodev`), so nothing is created in the
/// image's tree, and it is there before init's first instruction.
pub const GUEST_DIR: &str = "/dev/.rootrun-debug";

/// The gdbstub's Unix socket in the emulator directory (QEMU_GDB takes a
/// path as well as a port; a port would be in the container's network
/// namespace, out of the host's reach).
pub const GDB_SOCKET: &str = "gdb.sock";

/// `--strace=PATH`: where the container sees the copy of the program the
/// wrapper bound over PATH runs (a read-only bind into autodev's /dev, as
/// `GUEST_DIR`; not noexec: it is executed).
pub const GUEST_PROGRAM_DIR: &str = "/dev/.rootrun-strace";

/// The trace files' prefix; qemu puts its PID (as the container sees it)
/// where `%d` is (QEMU's `-D` file name).
pub const STRACE_PREFIX: &str = "strace.";

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DebugPlan {
    /// `lxc.log.level`.
    pub log_level: &'static str,
    /// `--keep-logs DIR`.
    pub kept: Option<PathBuf>,
    pub strace: bool,
    /// `--strace=PATH`.
    pub strace_program: Option<String>,
    /// `--gdb`: where gdb reaches the stub from the host.
    pub gdb: Option<GdbTarget>,
    /// Added to init's (or CMD's) environment for its emulator.
    pub emulator_env: Vec<(String, String)>,
}

impl DebugPlan {
    pub fn new(config: &DebugConfig) -> Self {
        DebugPlan {
            log_level: config.log_level.lxc_name(),
            kept: config.keep_logs.clone(),
            strace: config.strace,
            strace_program: config.strace_program.clone(),
            gdb: config.gdb.clone(),
            emulator_env: emulator_env(config),
        }
    }

    /// The emulator needs its directory inside the container.
    pub fn emulator_dir(&self) -> bool {
        self.strace || self.strace_program.is_some() || self.gdb.is_some()
    }

    /// liblxc keys: the emulator directory's bind mount. Its target is in
    /// autodev's fresh tmpfs, so liblxc's `create=dir` makes it there
    /// following nothing of the image's (as the console's entries;
    /// `lxc_config`). nosuid, nodev, noexec: the guest writes there.
    pub fn lxc_items(&self, layout: &Layout) -> Vec<(&'static str, String)> {
        let mut items = Vec::new();
        if self.emulator_dir() {
            items.push((
                "lxc.mount.entry",
                format!(
                    "{} {} none bind,nosuid,nodev,noexec,create=dir 0 0",
                    layout.emulator.display(),
                    GUEST_DIR.trim_start_matches('/')
                ),
            ));
        }
        if self.strace_program.is_some() {
            items.push((
                "lxc.mount.entry",
                format!(
                    "{} {} none bind,ro,nosuid,nodev,create=dir 0 0",
                    program_copy_dir(layout).display(),
                    GUEST_PROGRAM_DIR.trim_start_matches('/')
                ),
            ));
        }
        items
    }

    /// The gdbstub's socket as rootrun (its mount namespace) sees it.
    pub fn gdb_socket(layout: &Layout) -> PathBuf {
        layout.emulator.join(GDB_SOCKET)
    }
}

/// `--strace=PATH`: where rootrun copies the program (on its tmpfs).
pub fn program_copy_dir(layout: &Layout) -> PathBuf {
    layout.base.join("strace-program")
}

/// `--strace=PATH`: the script bound over PATH. It runs the copy of the
/// program with QEMU_STRACE for that one process (QEMU_UNSET_ENV keeps its
/// children untraced), its trace in its own file. The script has no argv[0]
/// of its own to hand on (`exec -a` is not POSIX), so a program reached
/// through a link of another name (BusyBox's applets) gets that name as its
/// first argument, which multi-call programs take as the applet's.
pub fn strace_wrapper(program: &str) -> String {
    let name = Path::new(program)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    format!(
        "#!/bin/sh\n\
         # rootrun --strace={program}: QEMU's syscall trace of each run\n\
         export QEMU_STRACE=1 QEMU_LOG_FILENAME={GUEST_DIR}/{STRACE_PREFIX}%d \
         QEMU_UNSET_ENV=QEMU_STRACE,QEMU_LOG_FILENAME,QEMU_UNSET_ENV\n\
         case \"${{0##*/}}\" in\n\
         '{name}') exec '{GUEST_PROGRAM_DIR}/{name}' \"$@\" ;;\n\
         *) exec '{GUEST_PROGRAM_DIR}/{name}' \"${{0##*/}}\" \"$@\" ;;\n\
         esac\n"
    )
}

/// `--keep-logs DIR` moves the whole log directory to the host.
pub fn keep_logs_in(layout: &mut Layout, dir: &Path) {
    layout.logs = dir.to_path_buf();
    layout.emulator = dir.join("emulator");
    layout.log = dir.join("lxc.log");
}

fn emulator_env(config: &DebugConfig) -> Vec<(String, String)> {
    let mut env = Vec::new();
    if let Some(cpu) = &config.qemu_cpu {
        env.push(("QEMU_CPU".to_owned(), cpu.clone()));
    }
    env.extend(config.qemu_env.iter().cloned());
    let mut first_only: Vec<&str> = Vec::new();
    if config.strace {
        env.push(("QEMU_STRACE".into(), "1".into()));
        env.push((
            "QEMU_LOG_FILENAME".into(),
            format!("{GUEST_DIR}/{STRACE_PREFIX}%d"),
        ));
        first_only.extend(["QEMU_STRACE", "QEMU_LOG_FILENAME"]);
    }
    if config.gdb.is_some() {
        env.push(("QEMU_GDB".into(), format!("{GUEST_DIR}/{GDB_SOCKET}")));
        first_only.push("QEMU_GDB");
    }
    if !first_only.is_empty() {
        first_only.push("QEMU_UNSET_ENV");
        env.push(("QEMU_UNSET_ENV".into(), first_only.join(",")));
    }
    env
}

/// gdb's name for the architecture (`set architecture`), where it differs
/// from nothing: gdb reads it from the ELF file too, so this only makes the
/// command line say what it debugs.
pub fn gdb_architecture(qemu: &str) -> Option<&'static str> {
    Some(match qemu {
        "aarch64" => "aarch64",
        "arm" => "arm",
        "i386" => "i386",
        "x86_64" => "i386:x86-64",
        "mips" | "mipsel" => "mips",
        "mips64" | "mips64el" => "mips:isa64",
        "ppc" => "powerpc:common",
        "ppc64" | "ppc64le" => "powerpc:common64",
        "riscv64" => "riscv:rv64",
        "riscv32" => "riscv:rv32",
        "s390x" => "s390:64-bit",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strace_and_gdb_are_for_the_first_process_only_cpu_for_all() {
        let config = DebugConfig {
            qemu_cpu: Some("cortex-a53".into()),
            strace: true,
            gdb: Some(GdbTarget::Port(1234)),
            ..Default::default()
        };
        let env = emulator_env(&config);
        let get = |k: &str| {
            env.iter()
                .find(|(key, _)| key == k)
                .map(|(_, v)| v.as_str())
        };
        assert_eq!(get("QEMU_CPU"), Some("cortex-a53"));
        assert_eq!(get("QEMU_GDB"), Some("/dev/.rootrun-debug/gdb.sock"));
        assert_eq!(
            get("QEMU_LOG_FILENAME"),
            Some("/dev/.rootrun-debug/strace.%d")
        );
        assert_eq!(
            get("QEMU_UNSET_ENV"),
            Some("QEMU_STRACE,QEMU_LOG_FILENAME,QEMU_GDB,QEMU_UNSET_ENV")
        );
    }

    #[test]
    fn the_strace_wrapper_runs_the_copy_traced_and_keeps_a_links_name() {
        let script = strace_wrapper("/usr/bin/prog");
        assert!(script.starts_with("#!/bin/sh\n"));
        assert!(script.contains(
            "export QEMU_STRACE=1 QEMU_LOG_FILENAME=/dev/.rootrun-debug/strace.%d \
             QEMU_UNSET_ENV=QEMU_STRACE,QEMU_LOG_FILENAME,QEMU_UNSET_ENV\n"
        ));
        assert!(script.contains("'prog') exec '/dev/.rootrun-strace/prog' \"$@\" ;;"));
        assert!(script.contains("*) exec '/dev/.rootrun-strace/prog' \"${0##*/}\" \"$@\" ;;"));
    }

    #[test]
    fn cpu_alone_unsets_nothing_and_mounts_nothing() {
        let config = DebugConfig {
            qemu_cpu: Some("max".into()),
            ..Default::default()
        };
        let plan = DebugPlan::new(&config);
        assert_eq!(plan.emulator_env, [("QEMU_CPU".into(), "max".into())]);
        assert!(plan
            .lxc_items(&Layout::under(Path::new("/run/rootrun")))
            .is_empty());
    }

    #[test]
    fn kept_logs_move_the_whole_log_directory() {
        let mut layout = Layout::under(Path::new("/run/rootrun"));
        assert_eq!(layout.log, Path::new("/run/rootrun/logs/lxc.log"));
        keep_logs_in(&mut layout, Path::new("/tmp/logs"));
        assert_eq!(layout.log, Path::new("/tmp/logs/lxc.log"));
        assert_eq!(layout.emulator, Path::new("/tmp/logs/emulator"));
    }
}
