//! Debugging options of a run (`--log-level`, `--keep-logs`, `--qemu-cpu`,
//! `--qemu-env`, `--strace`, `--gdb`) as one configuration, and the
//! validators clap calls for their values. The plan turns them into keys,
//! mounts and the emulator's environment (`plan::debug`).

use std::path::PathBuf;

use crate::cli::DebugArgs;
use crate::error::Error;

/// liblxc's log levels (lxc.container.conf(5), `lxc.log.level`), most
/// verbose first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogLevel {
    Trace,
    Debug,
    Info,
    Notice,
    Warn,
    #[default]
    Error,
    Crit,
    Alert,
    Fatal,
}

const LEVELS: [(LogLevel, &str); 9] = [
    (LogLevel::Trace, "TRACE"),
    (LogLevel::Debug, "DEBUG"),
    (LogLevel::Info, "INFO"),
    (LogLevel::Notice, "NOTICE"),
    (LogLevel::Warn, "WARN"),
    (LogLevel::Error, "ERROR"),
    (LogLevel::Crit, "CRIT"),
    (LogLevel::Alert, "ALERT"),
    (LogLevel::Fatal, "FATAL"),
];

impl LogLevel {
    /// The value of `lxc.log.level`.
    pub fn lxc_name(self) -> &'static str {
        LEVELS
            .iter()
            .find(|(level, _)| *level == self)
            .map_or("ERROR", |(_, name)| name)
    }
}

/// `--log-level`: a liblxc level name, any case (`WARNING` for `WARN`).
pub fn parse_log_level(text: &str) -> Result<LogLevel, String> {
    let upper = text.trim().to_ascii_uppercase();
    let upper = if upper == "WARNING" {
        "WARN".into()
    } else {
        upper
    };
    LEVELS
        .iter()
        .find(|(_, name)| *name == upper)
        .map(|(level, _)| *level)
        .ok_or_else(|| {
            format!(
                "{text:?}: give one of liblxc's levels: trace, debug, info, notice, warn, \
                 error, crit, alert, fatal"
            )
        })
}

/// The QEMU variables rootrun sets itself for `--strace` and `--gdb`, and
/// the one that keeps them to one process: `--qemu-env` may not take them.
const RESERVED: [&str; 4] = [
    "QEMU_GDB",
    "QEMU_STRACE",
    "QEMU_UNSET_ENV",
    "QEMU_LOG_FILENAME",
];

/// `--qemu-env K=V`: one of qemu-user's `QEMU_*` variables (qemu-user
/// `-h` lists them).
pub fn parse_qemu_env(text: &str) -> Result<(String, String), String> {
    let (key, value) = crate::config::parse_env(text)?;
    let key_ok = key.len() > "QEMU_".len()
        && key.starts_with("QEMU_")
        && key
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_');
    if !key_ok {
        return Err(format!(
            "{key:?}: --qemu-env takes qemu-user's QEMU_* variables (QEMU_CPU, QEMU_LOG, \
             QEMU_RESERVED_VA, ...); -e sets the guest's environment"
        ));
    }
    if RESERVED.contains(&key.as_str()) {
        return Err(format!(
            "{key} is rootrun's to set (--strace, --gdb keep it to one process)"
        ));
    }
    Ok((key, value))
}

/// `--qemu-cpu MODEL`: a CPU model name (`qemu-ARCH -cpu help` lists them).
pub fn parse_qemu_cpu(text: &str) -> Result<String, String> {
    let ok = !text.is_empty()
        && text.len() <= 64
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '+'));
    if ok {
        Ok(text.to_owned())
    } else {
        Err(format!(
            "{text:?} is not a CPU model name (`qemu-aarch64-static -cpu help` lists them)"
        ))
    }
}

/// `--gdb`: where gdb reaches the gdbstub from the host.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum GdbTarget {
    /// 127.0.0.1:PORT.
    Port(u16),
    /// A Unix socket rootrun creates at this host path (and removes).
    Socket(PathBuf),
}

impl std::fmt::Display for GdbTarget {
    /// What gdb's `target remote` takes.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            GdbTarget::Port(port) => write!(f, "127.0.0.1:{port}"),
            GdbTarget::Socket(path) => write!(f, "{}", path.display()),
        }
    }
}

/// `--gdb PORT` (1-65535) or `--gdb /PATH` (a Unix socket to create; it
/// must fit in sun_path, unix(7)).
pub fn parse_gdb(text: &str) -> Result<GdbTarget, String> {
    if let Ok(port) = text.parse::<u16>() {
        return match port {
            0 => Err("--gdb 0: give a port from 1 to 65535".into()),
            port => Ok(GdbTarget::Port(port)),
        };
    }
    let ok = text.starts_with('/')
        && text.len() < 108
        && !text
            .chars()
            .any(|c| c.is_control() || c == '\'' || c == ' ');
    if ok {
        Ok(GdbTarget::Socket(PathBuf::from(text)))
    } else {
        Err(format!(
            "{text:?}: give a TCP port on 127.0.0.1 (1-65535) or an absolute path for a Unix \
             socket (at most 107 bytes, no spaces or quotes)"
        ))
    }
}

/// What a run was asked to do for debugging.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DebugConfig {
    pub log_level: LogLevel,
    /// `--keep-logs DIR`: the run's log directory on the host, kept.
    pub keep_logs: Option<PathBuf>,
    pub qemu_cpu: Option<String>,
    /// `--qemu-env`, in order.
    pub qemu_env: Vec<(String, String)>,
    /// `--strace`: QEMU's syscall trace of the container's first process.
    pub strace: bool,
    /// `--strace=PATH`: of the program at PATH, each time it runs.
    pub strace_program: Option<String>,
    /// `--gdb PORT|PATH`: the first process waits for gdb there.
    pub gdb: Option<GdbTarget>,
}

impl DebugConfig {
    pub fn from_args(args: &DebugArgs) -> Result<Self, Error> {
        let strace_program = match args.strace.as_deref() {
            None | Some("") => None,
            Some(path) if path.starts_with('/') && !path.contains(['\n', '\0']) => {
                Some(path.to_owned())
            }
            Some(path) => {
                return Err(Error::Usage(format!(
                    "--strace={path}: give the program's absolute path in the image"
                )))
            }
        };
        if args.strace.is_some() && args.keep_logs.is_none() {
            return Err(Error::Usage(
                "--strace writes one file per traced process into the run's log directory, \
                 which goes with the run: give --keep-logs DIR too"
                    .into(),
            ));
        }
        if args.log_level.is_some() && args.keep_logs.is_none() {
            return Err(Error::Usage(
                "--log-level sets what liblxc writes to the run's log, which goes with the run: \
                 give --keep-logs DIR too (a failed start shows the log's errors either way)"
                    .into(),
            ));
        }
        if let Some(dir) = &args.keep_logs {
            check_log_dir(dir)?;
        }
        Ok(DebugConfig {
            log_level: args.log_level.unwrap_or_default(),
            keep_logs: args.keep_logs.as_ref().map(|dir| absolute(dir)),
            qemu_cpu: args.qemu_cpu.clone(),
            qemu_env: args.qemu_env.clone(),
            strace: args.strace.as_deref() == Some(""),
            strace_program,
            gdb: args.gdb.clone(),
        })
    }

    /// The first option given that only an emulator can honour.
    pub fn emulator_option(&self) -> Option<&'static str> {
        if self.gdb.is_some() {
            Some("--gdb")
        } else if self.strace || self.strace_program.is_some() {
            Some("--strace")
        } else if self.qemu_cpu.is_some() {
            Some("--qemu-cpu")
        } else if !self.qemu_env.is_empty() {
            Some("--qemu-env")
        } else {
            None
        }
    }

    /// The emulator needs a directory of rootrun's inside the container
    /// (its trace files, its gdb socket).
    pub fn needs_emulator_dir(&self) -> bool {
        self.strace || self.strace_program.is_some() || self.gdb.is_some()
    }
}

/// Options this run cannot honour: the emulator's for a native image
/// (with what works instead), the emulator directory in an image whose
/// /dev is a symlink (autodev's tmpfs, where it goes, is not there).
pub fn refuse_unsupported(
    config: &DebugConfig,
    native: bool,
    dev_is_link: bool,
) -> Result<(), Error> {
    match config.emulator_option() {
        Some("--gdb") if native => Err(Error::Usage(
            "--gdb uses QEMU's gdbstub, and this image runs natively, without an emulator: \
             attach the host's gdb to the container's init instead, `gdb -p PID` with the PID \
             `rootrun ls` shows under INIT (sysroot /proc/PID/root)"
                .into(),
        )),
        Some("--strace") if native => Err(Error::Usage(
            "--strace uses QEMU's syscall trace, and this image runs natively, without an \
             emulator: run strace(1) on the host, `strace -f -p PID` with the PID `rootrun ls` \
             shows under INIT"
                .into(),
        )),
        Some(option) if native => Err(Error::Usage(format!(
            "{option} sets options of QEMU user-mode emulation, and this image runs natively \
             on this CPU, without an emulator"
        ))),
        _ if dev_is_link && config.needs_emulator_dir() => Err(Error::Usage(
            "--strace and --gdb need the emulator's directory in the container's /dev, and \
             the image's /dev is a symlink"
                .into(),
        )),
        _ => Ok(()),
    }
}

/// `--keep-logs DIR`: empty or new, and not on rootrun's private tmpfs
/// (which would hide it and take it along).
fn check_log_dir(dir: &std::path::Path) -> Result<(), Error> {
    let used = std::fs::read_dir(dir).is_ok_and(|mut entries| entries.next().is_some());
    if used || (dir.exists() && !dir.is_dir()) {
        return Err(Error::Usage(format!(
            "--keep-logs {}: give an empty directory or a new path",
            dir.display()
        )));
    }
    if absolute(dir).starts_with(crate::plan::STATE_DIR) {
        return Err(Error::Usage(format!(
            "--keep-logs {}: not under {} (rootrun's own tmpfs covers it during a run)",
            dir.display(),
            crate::plan::STATE_DIR
        )));
    }
    Ok(())
}

fn absolute(dir: &std::path::Path) -> PathBuf {
    std::path::absolute(dir).unwrap_or_else(|_| dir.to_path_buf())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_levels_parse_in_any_case_and_name_liblxcs_keys() {
        assert_eq!(parse_log_level("debug"), Ok(LogLevel::Debug));
        assert_eq!(parse_log_level("Warning"), Ok(LogLevel::Warn));
        assert_eq!(LogLevel::Trace.lxc_name(), "TRACE");
        assert_eq!(LogLevel::default().lxc_name(), "ERROR");
        assert!(parse_log_level("loud").is_err());
    }

    #[test]
    fn qemu_env_takes_qemu_variables_but_not_rootruns_own() {
        assert_eq!(
            parse_qemu_env("QEMU_RESERVED_VA=0x1000000"),
            Ok(("QEMU_RESERVED_VA".into(), "0x1000000".into()))
        );
        assert!(parse_qemu_env("LD_PRELOAD=x").is_err());
        assert!(parse_qemu_env("QEMU_=x").is_err());
        assert!(parse_qemu_env("QEMU_GDB=1234").is_err());
        assert!(parse_qemu_env("QEMU_UNSET_ENV=A").is_err());
    }

    #[test]
    fn gdb_takes_a_port_or_a_socket_path() {
        assert_eq!(parse_gdb("1234"), Ok(GdbTarget::Port(1234)));
        assert_eq!(
            parse_gdb("/tmp/fw.gdb"),
            Ok(GdbTarget::Socket("/tmp/fw.gdb".into()))
        );
        assert_eq!(GdbTarget::Port(1234).to_string(), "127.0.0.1:1234");
        assert!(parse_gdb("0").is_err());
        assert!(parse_gdb("relative.sock").is_err());
        assert!(parse_gdb("/with space").is_err());
    }

    #[test]
    fn cpu_models_are_plain_names() {
        assert_eq!(parse_qemu_cpu("cortex-a53"), Ok("cortex-a53".into()));
        assert!(parse_qemu_cpu("").is_err());
        assert!(parse_qemu_cpu("a,b=c").is_err());
    }

    #[test]
    fn only_emulated_runs_take_emulator_options() {
        let mut config = DebugConfig::default();
        assert_eq!(config.emulator_option(), None);
        config.qemu_env.push(("QEMU_LOG".into(), "unimp".into()));
        assert_eq!(config.emulator_option(), Some("--qemu-env"));
        config.gdb = Some(GdbTarget::Port(1234));
        assert_eq!(config.emulator_option(), Some("--gdb"));
        assert!(config.needs_emulator_dir());
    }
}
