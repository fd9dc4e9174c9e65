//! Per-image defaults: `IMAGE.rootrun.yaml` beside the image (or the
//! directory given to `--rootfs`), or the file named by `--config`.
//!
//! The file holds the same settings as the command-line options, under
//! their long names (`stop-timeout` or `stop_timeout`). It becomes
//! command-line arguments placed *before* the real ones, so it is checked by
//! exactly the same parsers, and an option given on the command line wins
//! (a single value replaces the file's; lists such as `env` and `bind`
//! add to them, the command line's `env` coming last). Relative host paths
//! in the file are taken relative to the file's directory. Unknown keys and
//! wrong types are errors with the file's line and column; a bad value is
//! an error naming its key and line.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::error::Error;

/// The file's contents. Every key is a command-line option's long name.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct FileConfig {
    name: Option<String>,
    detach: Option<bool>,
    unpack: Option<bool>,
    init: Option<String>,
    hostname: Option<String>,
    arch: Option<String>,
    /// A map (`DEBUG: "1"`) or a list of `KEY=VALUE`.
    env: Option<Env>,
    /// `HOST:GUEST[:ro]` items.
    bind: Option<Vec<String>>,
    /// `lxc.KEY=VALUE` items.
    lxc: Option<Vec<String>>,
    net: Option<String>,
    workdir: Option<String>,
    user: Option<Scalar>,
    persist: Option<PathBuf>,
    #[serde(alias = "keep_upper")]
    keep_upper: Option<PathBuf>,
    expect: Option<String>,
    timeout: Option<u64>,
    #[serde(alias = "stop_timeout")]
    stop_timeout: Option<u64>,
    #[serde(alias = "console_log")]
    console_log: Option<PathBuf>,
    #[serde(alias = "stop_on_eof")]
    stop_on_eof: Option<bool>,
    #[serde(alias = "halt_signal")]
    halt_signal: Option<String>,
    #[serde(alias = "register_binfmt")]
    register_binfmt: Option<bool>,
    /// `true`: `--unprivileged`; `false`: `--privileged`.
    unprivileged: Option<bool>,
    escape: Option<String>,
    /// Emulator options: `--qemu-cpu`, `--qemu-env` (a map or a list of
    /// `QEMU_K=V`), and the kept logs.
    #[serde(alias = "qemu_cpu")]
    qemu_cpu: Option<String>,
    #[serde(alias = "qemu_env")]
    qemu_env: Option<Env>,
    #[serde(alias = "keep_logs")]
    keep_logs: Option<PathBuf>,
    #[serde(alias = "log_level")]
    log_level: Option<String>,
    #[serde(alias = "tmpfs_size")]
    tmpfs_size: Option<Scalar>,
    /// The command to run instead of init, when the command line has none.
    command: Option<Vec<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Env {
    Map(BTreeMap<String, Scalar>),
    List(Vec<String>),
}

/// A YAML scalar taken as text (`user: 1000`, `DEBUG: 1`).
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Scalar {
    Text(String),
    Number(i64),
    Bool(bool),
}

impl Scalar {
    fn text(&self) -> String {
        match self {
            Scalar::Text(text) => text.clone(),
            Scalar::Number(n) => n.to_string(),
            Scalar::Bool(b) => b.to_string(),
        }
    }
}

/// What the file adds to the command line.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct FileArgs {
    /// `(key, argument words)`, in the file's key order of this struct.
    pub options: Vec<(&'static str, Vec<OsString>)>,
    pub command: Vec<String>,
}

/// The configuration file for a run of `image`: `--config`'s, else
/// `IMAGE.rootrun.yaml` when it exists.
pub fn path_for(given: Option<&Path>, image: &Path) -> Option<PathBuf> {
    if let Some(path) = given {
        return Some(path.to_path_buf());
    }
    let mut beside = image.as_os_str().to_owned();
    // `--rootfs dir/` names the same directory as `--rootfs dir`.
    while beside.to_string_lossy().ends_with('/') && beside.len() > 1 {
        let text = beside.to_string_lossy().trim_end_matches('/').to_owned();
        beside = text.into();
    }
    beside.push(".rootrun.yaml");
    let beside = PathBuf::from(beside);
    beside.is_file().then_some(beside)
}

/// Reads and checks `path` and turns it into arguments.
pub fn load(path: &Path) -> Result<FileArgs, Error> {
    let text = std::fs::read(path)
        .map_err(|e| Error::Usage(format!("configuration {}: {e}", path.display())))?;
    let parsed: FileConfig = if text.iter().all(u8::is_ascii_whitespace) {
        FileConfig::default()
    } else {
        crate::yaml::from_slice(&text).map_err(|e| {
            // The YAML library leaves out a location at the very start.
            let message = e.to_string();
            let at = match message.contains(" line ") {
                true => String::new(),
                false => unknown_key(&message)
                    .and_then(|key| line_of(&String::from_utf8_lossy(&text), key))
                    .map(|n| format!(", line {n}"))
                    .unwrap_or_default(),
            };
            Error::Usage(format!("configuration {}{at}: {message}", path.display()))
        })?
    };
    let base = path.parent().unwrap_or(Path::new("."));
    Ok(parsed.to_args(base))
}

/// The key of an "unknown field `KEY`" message.
fn unknown_key(message: &str) -> Option<&str> {
    message.strip_prefix("unknown field `")?.split('`').next()
}

/// The line of `key:` in the file's text, for messages.
pub fn line_of(text: &str, key: &str) -> Option<usize> {
    let underscored = key.replace('-', "_");
    text.lines()
        .position(|line| {
            let line = line.trim_start();
            [key, underscored.as_str()].iter().any(|k| {
                line.strip_prefix(k)
                    .is_some_and(|rest| rest.trim_start().starts_with(':'))
            })
        })
        .map(|at| at + 1)
}

impl FileConfig {
    fn to_args(&self, base: &Path) -> FileArgs {
        let mut options: Vec<(&'static str, Vec<OsString>)> = Vec::new();
        let mut value = |key: &'static str, text: Option<String>| {
            if let Some(text) = text {
                options.push((key, vec![format!("--{key}").into(), text.into()]));
            }
        };
        value("name", self.name.clone());
        value("init", self.init.clone());
        value("hostname", self.hostname.clone());
        value("arch", self.arch.clone());
        value("net", self.net.clone());
        value("workdir", self.workdir.clone());
        value("user", self.user.as_ref().map(Scalar::text));
        value("expect", self.expect.clone());
        value("timeout", self.timeout.map(|t| t.to_string()));
        value("stop-timeout", self.stop_timeout.map(|t| t.to_string()));
        value("halt-signal", self.halt_signal.clone());
        value("escape", self.escape.clone());
        value("qemu-cpu", self.qemu_cpu.clone());
        value("log-level", self.log_level.clone());
        value("tmpfs-size", self.tmpfs_size.as_ref().map(Scalar::text));
        let host = |path: &PathBuf| base.join(path).into_os_string().into_string().ok();
        value("persist", self.persist.as_ref().and_then(host));
        value("keep-upper", self.keep_upper.as_ref().and_then(host));
        value("console-log", self.console_log.as_ref().and_then(host));
        value("keep-logs", self.keep_logs.as_ref().and_then(host));
        match &self.env {
            Some(Env::Map(map)) => {
                for (key, val) in map {
                    value("env", Some(format!("{key}={}", val.text())));
                }
            }
            Some(Env::List(items)) => {
                for item in items {
                    value("env", Some(item.clone()));
                }
            }
            None => {}
        }
        match &self.qemu_env {
            Some(Env::Map(map)) => {
                for (key, val) in map {
                    value("qemu-env", Some(format!("{key}={}", val.text())));
                }
            }
            Some(Env::List(items)) => {
                for item in items {
                    value("qemu-env", Some(item.clone()));
                }
            }
            None => {}
        }
        for bind in self.bind.iter().flatten() {
            // HOST relative to the file; GUEST as given.
            let text = match bind.split_once(':') {
                Some((host_part, rest)) if !host_part.starts_with('/') => {
                    format!("{}:{rest}", base.join(host_part).display())
                }
                _ => bind.clone(),
            };
            value("bind", Some(text));
        }
        for item in self.lxc.iter().flatten() {
            value("lxc", Some(item.clone()));
        }
        let mut flag = |key: &'static str, on: Option<bool>| {
            if on == Some(true) {
                options.push((key, vec![format!("--{key}").into()]));
            }
        };
        flag("detach", self.detach);
        flag("unpack", self.unpack);
        flag("stop-on-eof", self.stop_on_eof);
        flag("register-binfmt", self.register_binfmt);
        match self.unprivileged {
            Some(true) => options.push(("unprivileged", vec!["--unprivileged".into()])),
            Some(false) => options.push(("privileged", vec!["--privileged".into()])),
            None => {}
        }
        FileArgs {
            options,
            command: self.command.clone().unwrap_or_default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(yaml: &str) -> Result<FileArgs, String> {
        let parsed: FileConfig =
            crate::yaml::from_slice(yaml.as_bytes()).map_err(|e| e.to_string())?;
        Ok(parsed.to_args(Path::new("/srv/fw")))
    }

    fn words(file: &FileArgs) -> Vec<String> {
        file.options
            .iter()
            .flat_map(|(_, w)| w.iter().map(|w| w.to_string_lossy().into_owned()))
            .collect()
    }

    #[test]
    fn unprivileged_picks_the_mode_either_way() {
        assert_eq!(
            words(&args("unprivileged: true\n").unwrap()),
            ["--unprivileged"]
        );
        assert_eq!(
            words(&args("unprivileged: false\n").unwrap()),
            ["--privileged"]
        );
        assert!(args("unprivileged: maybe\n").is_err());
    }

    #[test]
    fn keys_become_options_with_host_paths_relative_to_the_file() {
        let file = args(
            "net: nat\nstop-timeout: 30\nenv: {DEBUG: 1, MODE: test}\nbind: [data:/data:ro, /abs:/abs]\n\
             persist: state\nstop_on_eof: true\ncommand: [/bin/sh, -c, 'uname -m']\n",
        )
        .unwrap();
        assert_eq!(
            words(&file),
            [
                "--net",
                "nat",
                "--stop-timeout",
                "30",
                "--persist",
                "/srv/fw/state",
                "--env",
                "DEBUG=1",
                "--env",
                "MODE=test",
                "--bind",
                "/srv/fw/data:/data:ro",
                "--bind",
                "/abs:/abs",
                "--stop-on-eof"
            ]
        );
        assert_eq!(file.command, ["/bin/sh", "-c", "uname -m"]);
    }

    #[test]
    fn unknown_keys_and_wrong_types_name_their_line() {
        let err = args("net: nat\nnetwork: host\n").unwrap_err();
        assert!(
            err.contains("unknown field `network`") && err.contains("line 2"),
            "{err}"
        );
        let err = args("timeout: soon\n").unwrap_err();
        assert!(err.contains("line 1"), "{err}");
        let err = args("bind: /a:/b\n").unwrap_err();
        assert!(err.contains("line 1"), "{err}");
    }

    #[test]
    fn the_line_of_a_key_is_found_in_either_spelling() {
        let text = "# fw\nnet: nat\nstop_timeout: 5\n";
        assert_eq!(line_of(text, "net"), Some(2));
        assert_eq!(line_of(text, "stop-timeout"), Some(3));
        assert_eq!(line_of(text, "env"), None);
    }
}
