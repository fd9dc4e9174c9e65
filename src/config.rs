//! One immutable run configuration, built from the command line (a per-image
//! YAML file will feed the same structure), and the validators clap calls
//! for single values.

use std::path::PathBuf;
use std::time::Duration;

use crate::arch::Arch;
use crate::cli::RunArgs;
use crate::error::Error;

/// Where the container's read-only lower layer comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Lower {
    /// The SquashFS file, loop-mounted read-only.
    Squashfs,
    /// An already extracted tree (`--rootfs DIR`), bind-mounted read-only.
    Directory,
    /// The SquashFS extracted with backhand into the private tmpfs
    /// (`--unpack`: no loop device, no squashfs kernel module needed).
    Unpacked,
    /// An ext2/3/4 file system image, loop-mounted read-only (decided when
    /// the image is opened, from its superblock).
    Ext4,
    /// An EROFS image, loop-mounted read-only.
    Erofs,
    /// A tar or cpio archive, unpacked into a tmpfs of its own.
    Archive,
}

impl Lower {
    /// Whether the image file stays open under the container (a loop
    /// device reads it while the container runs).
    pub fn reads_image_file(self) -> bool {
        matches!(self, Lower::Squashfs | Lower::Ext4 | Lower::Erofs)
    }
}

/// Who guest root is on the host.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Privilege {
    /// Host root, confined (the default).
    #[default]
    Privileged,
    /// An unprivileged host id range (`sys::userns::IdMap`).
    Unprivileged,
}

/// How much rootrun says on stderr besides errors and warnings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Verbosity {
    /// Nothing (`-q`).
    Quiet,
    /// The start banner in boot mode; nothing in command mode, as
    /// `docker run` and `lxc-execute` print nothing.
    Normal,
    /// The banner in every mode and rootrun's steps with timings (`-v`,
    /// through `logging`).
    Verbose,
    /// `-vv`: more detail, and liblxc's log at DEBUG unless `--log-level`.
    Debug,
}

/// What `rootrun run` was asked to do.
#[derive(Debug, Clone)]
pub struct RunConfig {
    /// The SquashFS file, or the directory with `Lower::Directory`.
    pub image: PathBuf,
    pub lower: Lower,
    /// Run this instead of init (command mode) when not empty.
    pub command: Vec<String>,
    pub hostname: Option<String>,
    /// `--metadata FILE`: a split image's metadata tarball.
    pub metadata: Option<PathBuf>,
    /// `--name`: None takes a name from the image.
    pub name: Option<String>,
    /// `-d`: start in the background, return once init runs.
    pub detach: bool,
    /// `-e KEY=VALUE`, in order.
    pub env: Vec<(String, String)>,
    /// `-u USER` (command mode), as given.
    pub user: Option<String>,
    /// `-w DIR` (command mode).
    pub workdir: Option<String>,
    /// `--bind`, in order.
    pub binds: Vec<Bind>,
    /// `--persist DIR` or `--keep-upper DIR`: the writable layer on the
    /// host instead of rootrun's tmpfs.
    pub upper_dir: Option<UpperDir>,
    /// `--tmpfs-size`: tmpfs's `size=` for rootrun's private tmpfs.
    pub tmpfs_size: Option<String>,
    /// Boot checks: `--expect`, `--timeout`, `--console-log`.
    pub expect: Option<String>,
    pub timeout: Option<Duration>,
    pub console_log: Option<PathBuf>,
    pub stop_on_eof: bool,
    /// `--lxc KEY=VALUE`, in order.
    pub lxc_extra: Vec<(String, String)>,
    /// `--net MODE`.
    pub net: Net,
    pub init: String,
    pub escape: u8,
    /// `--stop-timeout`; None: the plan's default for the emulation.
    pub stop_timeout: Option<Duration>,
    pub arch: Option<Arch>,
    /// `--halt-signal`: overrides the init flavour's (and the emulator's) choice.
    pub halt_signal: Option<&'static str>,
    pub register_binfmt: bool,
    /// `--unprivileged` / `--privileged`.
    pub privilege: Privilege,
    pub dry_run: Option<DryRun>,
    pub verbosity: Verbosity,
    /// `--log-level`, `--keep-logs`, `--qemu-*`, `--strace`, `--gdb`.
    pub debug: crate::debug::DebugConfig,
}

/// Where the overlay's writable layer lives when not on rootrun's tmpfs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UpperDir {
    /// Reused run after run.
    Persist(PathBuf),
    /// This run's alone (DIR empty or new), kept afterwards.
    Keep(PathBuf),
}

impl UpperDir {
    pub fn dir(&self) -> &std::path::Path {
        match self {
            UpperDir::Persist(dir) | UpperDir::Keep(dir) => dir,
        }
    }
}

/// `--bind HOST:GUEST[:ro]`: a host file or directory mounted into the
/// container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bind {
    pub host: PathBuf,
    /// An absolute path inside the container.
    pub guest: PathBuf,
    pub read_only: bool,
    /// `:idmap` (`--unprivileged` only): an idmapped mount, whose files the
    /// guest sees with their host owners and writes as them.
    pub idmap: bool,
}

/// What `--unprivileged` cannot do, and why, before anything is set up.
fn unprivileged_conflicts(args: &crate::cli::RunArgs) -> Result<(), Error> {
    if args.net == Net::Host {
        return Err(Error::Usage(
            "--net host with --unprivileged: the kernel lets a user namespace mount sysfs \
             only in a network namespace it owns, and --net host keeps the host's (liblxc \
             cannot mount the container's /sys); use another --net, or --privileged"
                .into(),
        ));
    }
    if args.register_binfmt {
        return Err(Error::Usage(
            "--register-binfmt registers in the host's binfmt_misc, which --unprivileged \
             neither needs nor uses (the container gets one of its own); drop one of them"
                .into(),
        ));
    }
    Ok(())
}

/// `HOST:GUEST[:ro|:rw]`. HOST may be relative; neither may contain `:`.
pub fn parse_bind(text: &str) -> Result<Bind, String> {
    let (rest, read_only, idmap) = match text.rsplit_once(':') {
        Some((rest, options)) if is_bind_options(options) => {
            let has = |word| options.split(',').any(|o| o == word);
            (rest, has("ro"), has("idmap"))
        }
        _ => (text, false, false),
    };
    let (host, guest) = rest
        .split_once(':')
        .ok_or_else(|| format!("{text:?}: give HOST:GUEST[:ro|:idmap|:ro,idmap]"))?;
    if host.is_empty() || guest.contains(':') {
        return Err(format!(
            "{text:?}: give HOST:GUEST[:ro|:idmap|:ro,idmap] (paths with ':' are not supported)"
        ));
    }
    if !guest.starts_with('/') || guest.chars().any(char::is_control) {
        return Err(format!("{guest:?}: the path inside must be absolute"));
    }
    Ok(Bind {
        host: PathBuf::from(host),
        guest: PathBuf::from(guest),
        read_only,
        idmap,
    })
}

/// `ro`, `rw`, `idmap`, comma-separated, not both `ro` and `rw`.
fn is_bind_options(text: &str) -> bool {
    let words: Vec<&str> = text.split(',').collect();
    words.iter().all(|w| ["ro", "rw", "idmap"].contains(w))
        && !(words.contains(&"ro") && words.contains(&"rw"))
}

/// `--net MODE`: the container's network.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize)]
#[serde(tag = "mode", content = "bridge", rename_all = "snake_case")]
pub enum Net {
    /// A network namespace of its own with loopback only.
    #[default]
    None,
    /// The host's network namespace: all its interfaces, addresses, routes
    /// and ports.
    Host,
    /// A veth pair whose host end joins this existing bridge.
    Bridge(String),
    /// A veth pair into rootrun's own bridge, with DHCP (dnsmasq) and
    /// masquerading (nftables), shared by every container using it.
    Nat,
}

/// `none`, `host`, `bridge=BR` or `nat`.
pub fn parse_net(text: &str) -> Result<Net, String> {
    match text {
        "none" => Ok(Net::None),
        "host" => Ok(Net::Host),
        "nat" => Ok(Net::Nat),
        _ => match text.strip_prefix("bridge=") {
            Some(name) => parse_interface_name(name).map(Net::Bridge),
            None => Err(format!("{text:?}: give none, host, bridge=BRIDGE or nat")),
        },
    }
}

/// A Linux interface name (at most 15 bytes, IFNAMSIZ - 1), limited to
/// letters, digits, '-', '_' and '.' (it goes into the liblxc configuration
/// as one word).
fn parse_interface_name(name: &str) -> Result<String, String> {
    let ok = !name.is_empty()
        && name.len() <= 15
        && name != "."
        && name != ".."
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok {
        Ok(name.to_owned())
    } else {
        Err(format!(
            "{name:?} is not an interface name (1 to 15 letters, digits, '-', '_', '.')"
        ))
    }
}

/// `--lxc lxc.KEY=VALUE`: one liblxc configuration line
/// (lxc.container.conf(5)); a newline would smuggle in another.
pub fn parse_lxc_item(text: &str) -> Result<(String, String), String> {
    let (key, value) = text
        .split_once('=')
        .ok_or_else(|| format!("{text:?}: give lxc.KEY=VALUE"))?;
    let key = key.trim();
    let key_ok = key.starts_with("lxc.")
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if !key_ok {
        return Err(format!(
            "{key:?} is not a liblxc key (lxc.container.conf(5))"
        ));
    }
    if value.contains(['\n', '\r', '\0']) {
        return Err(format!("the value of {key} must not hold a newline or NUL"));
    }
    Ok((key.to_owned(), value.trim().to_owned()))
}

/// A container's name (`--name`, and the NAME of `exec`, `stop`, ...): it
/// names a directory under /run/rootrun, so a letter or digit first, then
/// letters, digits, `-`, `_` and `.`, at most 64 in all.
/// `--tmpfs-size`: what tmpfs(5) takes for `size=`, a number of bytes with
/// an optional k, m or g suffix, or a percentage of RAM; at least 1 MiB, so
/// liblxc's configuration and log still fit.
pub fn parse_tmpfs_size(text: &str) -> Result<String, String> {
    let bad = || format!("{text:?}: a size such as 64m, 2g or 10% (tmpfs's size=)");
    let (digits, unit) = match text.char_indices().last() {
        Some((at, c)) if "kKmMgG%".contains(c) => (&text[..at], Some(c.to_ascii_lowercase())),
        _ => (text, None),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let number: u64 = digits.parse().map_err(|_| bad())?;
    let bytes = match unit {
        Some('%') if (1..=100).contains(&number) => return Ok(format!("{number}%")),
        Some('%') => return Err(format!("{text:?}: a percentage from 1% to 100%")),
        Some('k') => number.checked_mul(1 << 10),
        Some('m') => number.checked_mul(1 << 20),
        Some('g') => number.checked_mul(1 << 30),
        _ => Some(number),
    }
    .ok_or_else(bad)?;
    if bytes < 1 << 20 {
        return Err(format!(
            "{text:?}: at least 1m (liblxc's configuration and log live there too)"
        ));
    }
    Ok(bytes.to_string())
}

pub fn parse_name(text: &str) -> Result<String, String> {
    let mut chars = text.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphanumeric());
    let rest_ok = chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if first_ok && rest_ok && text.len() <= 64 {
        Ok(text.to_owned())
    } else {
        Err(format!(
            "{text:?}: a name is 1-64 letters, digits, '-', '_' or '.', starting with a \
             letter or digit"
        ))
    }
}

/// `--expect REGEX`: must compile (the session compiles it again).
pub fn parse_expect(text: &str) -> Result<String, String> {
    regex::bytes::Regex::new(text)
        .map(|_| text.to_owned())
        .map_err(|e| format!("not a regular expression: {e}"))
}

/// `--dry-run`, as text or JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DryRun {
    Text,
    Json,
}

impl RunConfig {
    pub fn from_args(args: &RunArgs) -> Result<Self, Error> {
        let (image, lower) = match (&args.rootfs, &args.image) {
            (Some(dir), _) => (dir.clone(), Lower::Directory),
            (None, Some(image)) if args.unpack => (image.clone(), Lower::Unpacked),
            (None, Some(image)) => (image.clone(), Lower::Squashfs),
            (None, None) => {
                return Err(Error::Usage("an IMAGE or --rootfs DIR is required".into()))
            }
        };
        if args.json && !args.dry_run {
            return Err(Error::Usage(
                "--json goes with --dry-run (or use `rootrun inspect --json`)".into(),
            ));
        }
        if args.unprivileged {
            unprivileged_conflicts(args)?;
        } else if let Some(bind) = args.binds.iter().find(|b| b.idmap) {
            return Err(Error::Usage(format!(
                "--bind {}:{}:idmap goes with --unprivileged (a privileged guest's ids are \
                 the host's already)",
                bind.host.display(),
                bind.guest.display()
            )));
        }
        let verbosity = match (args.quiet, args.verbose) {
            (true, 1..) => return Err(Error::Usage("-q and -v contradict each other".into())),
            (true, 0) => Verbosity::Quiet,
            (false, 0) => Verbosity::Normal,
            (false, 1) => Verbosity::Verbose,
            (false, 2..) => Verbosity::Debug,
        };
        let mut debug = crate::debug::DebugConfig::from_args(&args.debug)?;
        if verbosity == Verbosity::Debug && args.debug.log_level.is_none() {
            debug.log_level = crate::debug::LogLevel::Debug;
        }
        Ok(RunConfig {
            image,
            lower,
            command: args.command.clone(),
            hostname: args.hostname.clone(),
            metadata: args.metadata.clone(),
            name: args.name.clone(),
            detach: args.detach,
            env: args.env.clone(),
            user: args.user.clone(),
            workdir: args.workdir.clone(),
            binds: args.binds.clone(),
            upper_dir: match (&args.persist, &args.keep_upper) {
                (Some(dir), _) => Some(UpperDir::Persist(dir.clone())),
                (None, Some(dir)) => Some(UpperDir::Keep(dir.clone())),
                (None, None) => None,
            },
            tmpfs_size: args.tmpfs_size.clone(),
            expect: args.expect.clone(),
            timeout: args.timeout.map(Duration::from_secs),
            console_log: args.console_log.clone(),
            stop_on_eof: args.stop_on_eof,
            lxc_extra: args.lxc.clone(),
            net: args.net.clone(),
            init: args.init.clone(),
            escape: args.escape,
            stop_timeout: args.stop_timeout.map(Duration::from_secs),
            arch: args.arch,
            halt_signal: args.halt_signal,
            register_binfmt: args.register_binfmt,
            privilege: if args.unprivileged {
                Privilege::Unprivileged
            } else {
                Privilege::Privileged
            },
            dry_run: args.dry_run.then_some(if args.json {
                DryRun::Json
            } else {
                DryRun::Text
            }),
            verbosity,
            debug,
        })
    }

    pub fn is_command(&self) -> bool {
        !self.command.is_empty()
    }
}

/// RFC 1123 host names: dot-separated labels of letters, digits and '-'.
/// Anything else could also break the liblxc config file it goes into.
pub fn parse_hostname(name: &str) -> Result<String, String> {
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
    };
    if name.len() <= 253 && name.split('.').all(label_ok) {
        Ok(name.to_owned())
    } else {
        Err(
            "a host name is dot-separated labels of letters, digits and '-' \
             (not at either end of a label), each label at most 63 characters, \
             253 in all"
                .into(),
        )
    }
}

/// `KEY=VALUE`: KEY a shell variable name; VALUE without newlines (each
/// becomes one `lxc.environment` line of the liblxc configuration).
pub fn parse_env(text: &str) -> Result<(String, String), String> {
    let (key, value) = text
        .split_once('=')
        .ok_or_else(|| format!("{text:?}: give KEY=VALUE"))?;
    let key_ok = key.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
        && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !key_ok {
        return Err(format!(
            "{key:?} is not a variable name (letters, digits, '_', not starting with a digit)"
        ));
    }
    if value.contains(['\n', '\r', '\0']) {
        return Err(format!("the value of {key} must not hold a newline or NUL"));
    }
    Ok((key.to_owned(), value.to_owned()))
}

/// An absolute path without control characters (it goes into the liblxc
/// config file as `lxc.init.cmd`, which splits on spaces).
pub fn parse_init(path: &str) -> Result<String, String> {
    if !path.starts_with('/') {
        return Err("init must be an absolute path inside the image".into());
    }
    if path.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err("init must not contain spaces or control characters".into());
    }
    Ok(path.to_owned())
}

pub fn parse_arch(name: &str) -> Result<Arch, String> {
    Arch::from_name(name).ok_or_else(|| {
        format!(
            "unknown architecture {name:?}; known: {}",
            Arch::known_names().join(", ")
        )
    })
}

/// `a` -> Ctrl-a (0x01). Ctrl-h, -i, -j and -m are the bytes of Backspace,
/// Tab, Line Feed and Enter: as the escape, every such key would be held
/// back until the next one.
pub fn parse_escape(text: &str) -> Result<u8, String> {
    let letter = match text.as_bytes() {
        [c @ (b'a'..=b'z' | b'A'..=b'Z')] => c.to_ascii_lowercase(),
        _ => {
            return Err(format!(
                "escape key must be one letter (Ctrl-<letter>), not {text:?}"
            ))
        }
    };
    if matches!(letter, b'h' | b'i' | b'j' | b'm') {
        return Err(format!(
            "Ctrl-{} is the same byte as Backspace, Tab or Enter; choose another letter",
            letter as char
        ));
    }
    Ok(letter - b'a' + 1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::Cli;
    use clap::Parser;

    #[test]
    fn escape_letters_become_control_bytes_except_those_of_other_keys() {
        assert_eq!(parse_escape("a"), Ok(1));
        assert_eq!(parse_escape("Q"), Ok(17));
        assert_eq!(
            parse_escape("]"),
            Err("escape key must be one letter (Ctrl-<letter>), not \"]\"".into())
        );
        for key in ["h", "i", "j", "m", "M"] {
            let err = parse_escape(key).unwrap_err();
            assert!(err.contains("Backspace, Tab or Enter"), "{key}: {err}");
        }
        assert!(parse_escape("ab").is_err());
    }

    #[test]
    fn tmpfs_sizes_are_tmpfs_syntax_and_at_least_a_mebibyte() {
        assert_eq!(parse_tmpfs_size("8m"), Ok("8388608".into()));
        assert_eq!(parse_tmpfs_size("2G"), Ok("2147483648".into()));
        assert_eq!(parse_tmpfs_size("4096k"), Ok("4194304".into()));
        assert_eq!(parse_tmpfs_size("1048576"), Ok("1048576".into()));
        assert_eq!(parse_tmpfs_size("10%"), Ok("10%".into()));
        for bad in [
            "",
            "m",
            "-1m",
            "1.5g",
            "8mb",
            "8m,nr_inodes=1",
            "0%",
            "101%",
            "512k",
        ] {
            assert!(parse_tmpfs_size(bad).is_err(), "{bad:?} accepted");
        }
        assert!(parse_tmpfs_size("99999999999999999999g").is_err());
    }

    #[test]
    fn usage_errors_are_reported_by_clap() {
        assert!(Cli::try_parse_from(["rootrun", "--escape", "m", "img"]).is_err());
        assert!(Cli::try_parse_from(["rootrun", "--escape", "b", "img"]).is_ok());
    }

    #[test]
    fn binds_are_host_guest_and_an_optional_mode() {
        let b = parse_bind("./data:/srv/data:ro").unwrap();
        assert_eq!(
            (b.host, b.guest, b.read_only),
            ("./data".into(), "/srv/data".into(), true)
        );
        assert!(!parse_bind("/a:/b").unwrap().read_only);
        assert!(!parse_bind("/a:/b:rw").unwrap().read_only);
        assert!(parse_bind("/a").is_err());
        assert!(parse_bind("/a:rel").is_err());
        assert!(parse_bind(":/b").is_err());
        assert!(parse_bind("/a:/b:/c").is_err());
        let b = parse_bind("/a:/b:ro,idmap").unwrap();
        assert!(b.read_only && b.idmap);
        let b = parse_bind("/a:/b:idmap").unwrap();
        assert!(!b.read_only && b.idmap);
        assert!(!parse_bind("/a:/b:ro").unwrap().idmap);
        assert!(parse_bind("/a:/b:ro,rw").is_err());
    }

    #[test]
    fn network_modes_parse_and_bad_ones_say_what_to_give() {
        assert_eq!(parse_net("none"), Ok(Net::None));
        assert_eq!(parse_net("host"), Ok(Net::Host));
        assert_eq!(parse_net("nat"), Ok(Net::Nat));
        assert_eq!(parse_net("bridge=br0"), Ok(Net::Bridge("br0".into())));
        let err = parse_net("foo").unwrap_err();
        assert!(err.contains("bridge=BRIDGE"), "{err}");
        assert!(parse_net("bridge=").is_err());
        assert!(parse_net("bridge=a-very-long-bridge").is_err());
        assert!(parse_net("bridge=br 0").is_err());
        assert!(parse_net("bridge=../x").is_err());
        let c = config(&["rootrun", "img"]).unwrap();
        assert_eq!(c.net, Net::None);
        let c = config(&["rootrun", "--net", "bridge=lxcbr0", "img"]).unwrap();
        assert_eq!(c.net, Net::Bridge("lxcbr0".into()));
        assert!(config(&["rootrun", "--net", "foo", "img"]).is_err());
    }

    #[test]
    fn environment_items_are_key_value_with_a_proper_name() {
        assert_eq!(parse_env("FOO=a b=c"), Ok(("FOO".into(), "a b=c".into())));
        assert_eq!(parse_env("_X="), Ok(("_X".into(), String::new())));
        assert!(parse_env("FOO").is_err());
        assert!(parse_env("1X=y").is_err());
        assert!(parse_env("A-B=y").is_err());
        assert!(parse_env("A=line\nnext").is_err());
    }

    #[test]
    fn the_hostname_error_is_a_whole_sentence() {
        let err = parse_hostname("-bad").unwrap_err();
        assert!(err.ends_with("253 in all"), "{err}");
        assert!(err.contains("at most 63 characters"), "{err}");
        assert_eq!(parse_hostname("my-fw.local"), Ok("my-fw.local".into()));
    }

    #[test]
    fn unknown_arch_lists_each_name_once() {
        let err = parse_arch("vax").unwrap_err();
        let list = err.split("known: ").nth(1).unwrap_or_default();
        let names: Vec<&str> = list.split(", ").collect();
        let mut unique = names.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(names.len(), unique.len(), "{err}");
        assert!(
            names.contains(&"arm") && names.contains(&"aarch64"),
            "{err}"
        );
    }

    fn config(args: &[&str]) -> Result<RunConfig, Error> {
        let cli = Cli::try_parse_from(args).map_err(|e| Error::Usage(e.to_string()))?;
        RunConfig::from_args(&cli.run)
    }

    #[test]
    fn unprivileged_refuses_what_it_cannot_do_and_the_last_mode_flag_wins() {
        let c = config(&["rootrun", "--unprivileged", "img"]).unwrap();
        assert_eq!(c.privilege, Privilege::Unprivileged);
        let c = config(&["rootrun", "--unprivileged", "--privileged", "img"]).unwrap();
        assert_eq!(c.privilege, Privilege::Privileged);
        let c = config(&["rootrun", "img"]).unwrap();
        assert_eq!(c.privilege, Privilege::Privileged);
        let err = config(&["rootrun", "--bind", "/a:/b:idmap", "img"]).unwrap_err();
        assert!(
            err.to_string().contains("goes with --unprivileged"),
            "{err}"
        );
        assert!(config(&["rootrun", "--unprivileged", "--bind", "/a:/b:idmap", "img"]).is_ok());
        for (extra, needle) in [
            ("--net=host", "--net host"),
            ("--register-binfmt", "drop one"),
        ] {
            let err = config(&["rootrun", "--unprivileged", extra, "img"]).unwrap_err();
            assert!(err.to_string().contains(needle), "{err}");
        }
    }

    #[test]
    fn verbosity_and_dry_run_come_from_the_flags() {
        let c = config(&["rootrun", "img"]).unwrap();
        assert_eq!(c.verbosity, Verbosity::Normal);
        assert_eq!(c.dry_run, None);
        assert_eq!(c.lower, Lower::Squashfs);
        let c = config(&["rootrun", "-v", "--dry-run", "--json", "img"]).unwrap();
        assert_eq!(c.verbosity, Verbosity::Verbose);
        assert_eq!(c.dry_run, Some(DryRun::Json));
        assert!(config(&["rootrun", "--json", "img"]).is_err());
        assert!(config(&["rootrun", "-q", "-v", "img"]).is_err());
        // -vv: more detail, and liblxc's log at DEBUG unless --log-level.
        let c = config(&["rootrun", "-vv", "img"]).unwrap();
        assert_eq!(c.verbosity, Verbosity::Debug);
        assert_eq!(c.debug.log_level, crate::debug::LogLevel::Debug);
        let c = config(&[
            "rootrun",
            "-vv",
            "--log-level",
            "warn",
            "--keep-logs",
            "/x",
            "img",
        ]);
        assert_eq!(
            c.map(|c| c.debug.log_level).ok(),
            Some(crate::debug::LogLevel::Warn)
        );
        let c = config(&["rootrun", "--unpack", "img", "--", "true"]).unwrap();
        assert_eq!((c.lower, c.is_command()), (Lower::Unpacked, true));
    }
}
