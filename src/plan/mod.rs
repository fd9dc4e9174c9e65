//! Plan, then apply: everything rootrun decides about a launch, as data.
//!
//! `plan()` is pure: the run configuration, the image's facts and the
//! host's emulation decision -> a `LaunchPlan` whose `steps` `launch`
//! executes one by one, `--dry-run` prints (as text or JSON) and `-v`
//! reports as they run. Unit tests check it without privileges.

mod debug;
mod lxc_config;
mod render;
mod step;
mod systemd;

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Serialize;

use crate::arch::{Arch, Emulation};
use crate::config::RunConfig;
use crate::image::{console_ttys, HaltMethod, ImageFacts, InitFlavor};
use crate::sys::lsm::Lsm;

pub use crate::config::{Lower, Net};
pub use debug::{gdb_architecture, strace_wrapper, DebugPlan, GUEST_DIR, STRACE_PREFIX};
pub use lxc_config::{ConsolePath, SECCOMP_POLICY};
pub use step::Step;
pub use systemd::{drop_in_path, emulated_systemd, EmulatedSystemd, DROP_IN};

/// Where rootrun keeps its state. A private tmpfs is mounted here inside
/// rootrun's own mount namespace, so the host only ever sees an empty
/// directory, whatever happens to rootrun.
pub const STATE_DIR: &str = "/run/rootrun";

/// liblxc's run directory: its lock files go under `lock/<lxcpath>/`.
pub const LXC_RUN_DIR: &str = "/run/lxc";

/// `--net nat`: rootrun's bridge, its nftables table (`table ip rootrun`)
/// and the shared state on the host (not on the private tmpfs: every
/// rootrun must see it, and the last one to leave takes the network down).
pub const NAT_BRIDGE: &str = "rootrun0";
pub const NAT_TABLE: &str = "rootrun";
pub const NAT_STATE_DIR: &str = "/run/rootrun/.net";
/// The bridge's subnet: the first of these that no host route or address
/// overlaps (private ranges a home or office network rarely uses).
pub const NAT_SUBNETS: [&str; 4] = [
    "10.213.87.0/24",
    "10.213.88.0/24",
    "172.29.87.0/24",
    "192.168.213.0/24",
];

/// Container names are this prefix and rootrun's PID (see `sys::cgroup`).
pub const CONTAINER_PREFIX: &str = "rootrun-";

/// The directories of one run, all inside the private tmpfs at `STATE_DIR`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Layout {
    pub base: PathBuf,
    /// The SquashFS, read-only.
    pub lower: PathBuf,
    /// Overlay upper and work directories (on the tmpfs: nothing persists).
    pub upper: PathBuf,
    pub work: PathBuf,
    /// The overlay: the container's root.
    pub rootfs: PathBuf,
    /// Where liblxc mounts the root before pivot_root (`lxc.rootfs.mount`).
    /// Its default, /usr/lib/<triplet>/lxc/rootfs, comes with Debian's
    /// liblxc-common, on which the library package (liblxc1, liblxc1t64)
    /// does not depend: without it every start fails.
    pub rootfs_mount: PathBuf,
    /// liblxc's lxcpath; the container's config is `lxcpath/NAME/config`.
    pub lxcpath: PathBuf,
    /// The run's log directory (`--keep-logs DIR` puts it on the host):
    /// liblxc's log, the console log, and `emulator/`, the emulator's
    /// own (trace files, gdb socket).
    pub logs: PathBuf,
    pub emulator: PathBuf,
    /// liblxc's log, in `logs`.
    pub log: PathBuf,
    /// liblxc seccomp policy (`SECCOMP_POLICY`), written at start.
    pub seccomp: PathBuf,
}

impl Layout {
    pub fn under(base: &Path) -> Self {
        Layout {
            base: base.to_path_buf(),
            lower: base.join("lower"),
            upper: base.join("upper"),
            work: base.join("work"),
            rootfs: base.join("rootfs"),
            rootfs_mount: base.join("rootfs-mount"),
            lxcpath: base.join("lxc"),
            logs: base.join("logs"),
            emulator: base.join("logs").join("emulator"),
            log: base.join("logs").join("lxc.log"),
            seccomp: base.join("seccomp"),
        }
    }
}

/// What runs as the container's first process.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Boot the image's init with the console attached.
    Boot { init: String },
    /// Run one command under liblxc's minimal init (as lxc-execute does),
    /// with rootrun's stdin, stdout and stderr.
    Command { argv: Vec<String> },
}

/// A binfmt_misc handler rootrun registers before the start
/// (`--register-binfmt`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registration {
    pub name: String,
    pub interpreter: PathBuf,
    /// The line written to `register`.
    pub line: String,
}

/// What the host offers for the image's architecture, read before planning.
#[derive(Debug, Clone)]
pub struct HostPlan {
    pub emulation: Emulation,
    /// binfmt_misc is mounted on the host (else rootrun mounts its own).
    pub binfmt_mounted: bool,
    pub registration: Option<Registration>,
    /// The environment init or CMD starts with (`-e`, and TERM on a
    /// terminal).
    pub env: Vec<(String, String)>,
    /// How many numbers lower the emulator delivers a host real-time
    /// signal to the guest (`arch::rt_signal_shift`); 0 when native.
    pub rt_shift: i32,
    /// The emulator's version, when one runs init and told it (asked for
    /// systemd only).
    pub qemu: Option<crate::arch::QemuVersion>,
    /// The host's AppArmor and SELinux state.
    pub lsm: Lsm,
    /// `-u`: the command's uid and gid, resolved in the image.
    pub user: Option<(u32, u32)>,
    /// The kernel command line the container will see (the host's), for
    /// procd's `askconsole` (`ImageFacts::login_ttys`).
    pub cmdline: String,
    /// `--unprivileged`: the host ids of the container's.
    pub idmap: Option<crate::sys::userns::IdMap>,
}

/// Everything a launch will do.
#[derive(Debug, Clone, Serialize)]
pub struct LaunchPlan {
    pub image: PathBuf,
    pub lower: Lower,
    /// Unique per run: liblxc's command socket and cgroups are host-global.
    pub name: String,
    pub hostname: String,
    pub layout: Layout,
    pub mode: Mode,
    /// The signal that halts init, unless `halt` says a request does it
    /// instead. Also `lxc.signal.halt`.
    pub halt_signal: &'static str,
    /// How a stop asks init to halt first.
    pub halt: HaltMethod,
    /// The guest reads requests as its CPU's ints (the runlevel request).
    pub guest_big_endian: bool,
    /// Boot mode: the names in the container's /dev that are rootrun's
    /// console too (`/dev/tty1`, `/dev/ttyS0`), for the image's gettys.
    pub console_ttys: Vec<String>,
    #[serde(serialize_with = "seconds")]
    pub stop_timeout: Duration,
    #[serde(skip)]
    pub escape: u8,
    /// None when the image has no ELF file at all (it cannot boot anyway).
    pub arch: Option<Arch>,
    pub emulation: Emulation,
    pub lsm: Lsm,
    /// `--unprivileged`: the host ids of the container's; None when
    /// privileged.
    pub idmap: Option<crate::sys::userns::IdMap>,
    /// Boot mode, systemd under emulation: what rootrun does about it.
    pub systemd: Option<EmulatedSystemd>,
    pub env: Vec<(String, String)>,
    /// Command mode: the working directory of CMD.
    pub workdir: Option<String>,
    /// `-u`: the command's uid and gid.
    pub user: Option<(u32, u32)>,
    /// Boot checks (`--expect`, `--timeout`, `--console-log`).
    pub expect: Option<String>,
    #[serde(serialize_with = "optional_seconds")]
    pub timeout: Option<Duration>,
    pub console_log: Option<PathBuf>,
    /// `--stop-on-eof`: the end of piped input stops a boot.
    pub stop_on_eof: bool,
    /// `--lxc KEY=VALUE` items, after rootrun's own in the configuration.
    pub lxc_extra: Vec<(String, String)>,
    /// `--net`.
    pub net: crate::config::Net,
    /// `--log-level`, `--keep-logs`, `--qemu-*`, `--strace`, `--gdb`.
    pub debug: DebugPlan,
    pub steps: Vec<Step>,
}

fn seconds<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(d.as_secs())
}

fn optional_seconds<S: serde::Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
    match d {
        Some(d) => s.serialize_some(&d.as_secs()),
        None => s.serialize_none(),
    }
}

/// How long init has to halt when `--stop-timeout` does not say.
pub const STOP_TIMEOUT: Duration = Duration::from_secs(10);
/// The same under emulation, where an init's shutdown scripts run several
/// times slower: Debian 12 arm64 with OpenRC took 11-20 s under QEMU 7.2
/// here (tests/bench/inits.sh), and 10 s killed it half-way. lxc-stop's
/// own default is 60 s.
pub const EMULATED_STOP_TIMEOUT: Duration = Duration::from_secs(60);

pub fn plan(config: &RunConfig, facts: &ImageFacts, host: HostPlan, pid: u32) -> LaunchPlan {
    let mode = if config.command.is_empty() {
        Mode::Boot {
            init: config.init.clone(),
        }
    } else {
        Mode::Command {
            argv: config.command.clone(),
        }
    };
    // liblxc's minimal init forwards the halt signal to the command; SIGTERM
    // is what a command expects when asked to stop.
    let halt_signal = match mode {
        Mode::Boot { .. } => config
            .halt_signal
            .unwrap_or_else(|| halt_signal(facts.init_flavor, host.rt_shift)),
        Mode::Command { .. } => "SIGTERM",
    };
    // --halt-signal means that signal, and nothing else; a flavour's own
    // signal is the one shifted for the emulator above, not its raw name.
    let halt = match (&mode, facts.init_flavor.halt_method()) {
        (Mode::Boot { .. }, HaltMethod::Runlevel0) if config.halt_signal.is_none() => {
            HaltMethod::Runlevel0
        }
        _ => HaltMethod::Signal(halt_signal),
    };
    let guest_big_endian = facts
        .evidence
        .as_ref()
        .is_some_and(|evidence| evidence.elf.big_endian);
    let console_ttys = match mode {
        // An image whose /dev is a symlink gets no bind into it: see
        // `lxc_config`, the target must be in autodev's fresh tmpfs.
        Mode::Boot { .. } if facts.dev_link.is_none() => {
            console_ttys(&facts.login_ttys(&host.cmdline))
        }
        _ => Vec::new(),
    };
    let name = format!("{CONTAINER_PREFIX}{pid}");
    let mut layout = Layout::under(Path::new(STATE_DIR));
    if let Some(upper) = &config.upper_dir {
        // Upper and work directories must be on one file system (overlayfs).
        layout.upper = upper.dir().join("upper");
        layout.work = upper.dir().join("work");
    }
    if let Some(dir) = &config.debug.keep_logs {
        debug::keep_logs_in(&mut layout, dir);
    }
    let systemd = match mode {
        Mode::Boot { .. } => emulated_systemd(
            facts.systemd_version,
            host.emulation != Emulation::Native,
            host.qemu,
        ),
        Mode::Command { .. } => None,
    };
    let steps = steps(
        config,
        facts,
        &layout,
        &name,
        &mode,
        &host,
        systemd.as_ref(),
    );
    let console_log = console_log(config, &mode);
    LaunchPlan {
        image: config.image.clone(),
        lower: config.lower,
        name,
        hostname: config
            .hostname
            .clone()
            .unwrap_or_else(|| default_hostname(&config.image)),
        layout,
        mode,
        halt_signal,
        halt,
        guest_big_endian,
        console_ttys,
        stop_timeout: config.stop_timeout.unwrap_or(match host.emulation {
            Emulation::Native => STOP_TIMEOUT,
            _ => EMULATED_STOP_TIMEOUT,
        }),
        escape: config.escape,
        arch: facts.arch,
        emulation: host.emulation,
        lsm: host.lsm,
        idmap: host.idmap,
        systemd,
        env: host.env,
        workdir: config.workdir.clone(),
        user: host.user,
        expect: config.expect.clone(),
        timeout: config.timeout,
        console_log,
        stop_on_eof: config.stop_on_eof,
        lxc_extra: config.lxc_extra.clone(),
        net: config.net.clone(),
        debug: DebugPlan::new(&config.debug),
        steps,
    }
}

/// The ordered steps of a launch.
fn steps(
    config: &RunConfig,
    facts: &ImageFacts,
    layout: &Layout,
    name: &str,
    mode: &Mode,
    host: &HostPlan,
    systemd: Option<&EmulatedSystemd>,
) -> Vec<Step> {
    let foreign = facts.arch.is_some_and(|a| !a.runs_natively(Arch::host()));
    let mut steps = vec![
        Step::SweepStaleCgroups {
            prefix: CONTAINER_PREFIX.into(),
        },
        Step::SweepStaleNat {
            state: NAT_STATE_DIR.into(),
        },
    ];
    // In the host's mount namespace: the shared state is on the host's
    // /run/rootrun (which rootrun's own tmpfs hides later), and dnsmasq must
    // not keep rootrun's namespace, with its mounts, alive after rootrun.
    // Before anything is mounted: a bad bridge is refused first.
    match &config.net {
        Net::None | Net::Host => {}
        Net::Bridge(bridge) => steps.push(Step::CheckBridge {
            bridge: bridge.clone(),
        }),
        Net::Nat => steps.push(Step::JoinNat {
            bridge: NAT_BRIDGE.into(),
            table: NAT_TABLE.into(),
            state: NAT_STATE_DIR.into(),
            candidates: NAT_SUBNETS.iter().map(|s| (*s).to_owned()).collect(),
        }),
    }
    // Before anything mounts, and before any thread exists.
    steps.push(Step::PrivateMountNamespace);
    if foreign && !host.binfmt_mounted && host.idmap.is_none() {
        steps.push(Step::MountBinfmtMisc {
            target: crate::arch::BINFMT_DIR.into(),
        });
    }
    if let Some(reg) = &host.registration {
        steps.push(Step::RegisterBinfmt {
            name: reg.name.clone(),
            interpreter: reg.interpreter.clone(),
            line: reg.line.clone(),
            stays: host.binfmt_mounted,
        });
    }
    if let Emulation::Preloaded { entry, .. } | Emulation::BindMount { entry, .. } = &host.emulation
    {
        steps.push(Step::CheckHandler {
            entry: entry.clone(),
            head: facts.head.clone(),
            file_name: facts.init.clone(),
        });
    }
    // An unprivileged container's root must reach liblxc's directories
    // (liblxc checks); the tmpfs is in rootrun's mount namespace alone.
    let state_mode = match host.idmap {
        Some(_) => 0o711,
        None => 0o700,
    };
    steps.push(Step::Tmpfs {
        target: LXC_RUN_DIR.into(),
        // As liblxc itself creates it.
        dir_mode: 0o755,
        mode: 0o700,
        why: "liblxc's lock files".into(),
        size: None,
    });
    steps.push(Step::Tmpfs {
        target: layout.base.clone(),
        dir_mode: 0o700,
        mode: state_mode,
        why: "rootrun's state: overlay upper layer, liblxc configuration and log".into(),
        size: config.tmpfs_size.clone(),
    });
    steps.push(Step::MakeDirs {
        paths: vec![
            layout.lower.clone(),
            layout.upper.clone(),
            layout.work.clone(),
            layout.rootfs.clone(),
            layout.rootfs_mount.clone(),
            layout.lxcpath.join(name),
            layout.logs.clone(),
        ],
        mode: state_mode,
        owner: None,
    });
    if config.debug.needs_emulator_dir() {
        steps.push(Step::MakeDirs {
            paths: vec![layout.emulator.clone()],
            mode: state_mode,
            // QEMU writes its traces and makes gdb's socket there as the
            // guest's root.
            owner: host.idmap.map(|map| (map.uid_first, map.gid_first)),
        });
    }
    match config.lower {
        Lower::Squashfs => {
            steps.push(Step::AttachLoop {
                image: config.image.clone(),
            });
            steps.push(Step::MountSquashfs {
                target: layout.lower.clone(),
            });
        }
        Lower::Directory => steps.push(Step::BindReadOnly {
            source: config.image.clone(),
            target: layout.lower.clone(),
        }),
        Lower::Unpacked => steps.push(Step::Unpack {
            image: config.image.clone(),
            target: layout.lower.clone(),
        }),
        Lower::Ext4 | Lower::Erofs | Lower::Archive => steps.push(Step::AttachLower {
            what: match config.lower {
                Lower::Ext4 => {
                    "the ext4 file system (read-only, nodev, nosuid, from a \
                                read-only autoclear loop device)"
                }
                Lower::Erofs => {
                    "the EROFS file system (read-only, nodev, nosuid, from a \
                                 read-only autoclear loop device)"
                }
                _ => "the tmpfs the archive was unpacked into (nodev, nosuid)",
            }
            .into(),
            target: layout.lower.clone(),
        }),
    }
    if let Some(map) = host.idmap {
        steps.push(Step::Idmap {
            target: layout.lower.clone(),
            map,
        });
        // Not the --persist/--keep-upper directory: overlayfs makes its
        // work directory with the mounter's credentials, host root, whom
        // the idmapping cannot represent (EOVERFLOW, and the overlay falls
        // back to read-only). What the guest writes there keeps host ids.
    }
    steps.push(Step::Overlay {
        lower: layout.lower.clone(),
        upper: layout.upper.clone(),
        work: layout.work.clone(),
        target: layout.rootfs.clone(),
    });
    steps.push(Step::CheckProgram {
        program: entry_program(mode).to_owned(),
    });
    if let Emulation::BindMount {
        interpreter,
        host_file,
        ..
    } = &host.emulation
    {
        steps.push(Step::BindInterpreter {
            host_file: host_file.clone(),
            interpreter: interpreter.clone(),
        });
    }
    for bind in &config.binds {
        steps.push(Step::BindHost {
            source: bind.host.clone(),
            target: bind.guest.clone(),
            read_only: bind.read_only,
            idmap: bind.idmap,
        });
    }
    if let Some(program) = &config.debug.strace_program {
        steps.push(Step::TraceProgram {
            program: program.clone(),
            copy_dir: debug::program_copy_dir(layout),
        });
    }
    if let Some(systemd) = systemd.filter(|s| !s.drop_ins.is_empty()) {
        steps.push(Step::WriteDropIns {
            units: systemd.drop_ins.clone(),
        });
    }
    steps.push(Step::WriteSeccompPolicy {
        path: layout.seccomp.clone(),
    });
    if matches!(mode, Mode::Boot { .. }) {
        steps.push(Step::AllocateConsole);
        if let Some(path) = console_log(config, mode) {
            steps.push(Step::OpenConsoleLog { path });
        }
    }
    steps.push(Step::WriteLxcConfig {
        path: layout.lxcpath.join(name).join("config"),
    });
    steps.push(Step::Start {
        name: name.to_owned(),
        lxcpath: layout.lxcpath.clone(),
    });
    steps
}

/// Boot mode: `--console-log FILE`, else the kept log directory's
/// `console.log` (not with `-d`: a detached console goes to the
/// container's own log, `rootrun logs NAME`).
fn console_log(config: &RunConfig, mode: &Mode) -> Option<PathBuf> {
    match mode {
        Mode::Boot { .. } => config.console_log.clone().or_else(|| {
            let kept = config.debug.keep_logs.as_ref().filter(|_| !config.detach)?;
            Some(kept.join("console.log"))
        }),
        Mode::Command { .. } => None,
    }
}

/// The program exec'd first in the container (checked before start).
fn entry_program(mode: &Mode) -> &str {
    match mode {
        Mode::Boot { init } => init,
        Mode::Command { argv } => argv.first().map(String::as_str).unwrap_or_default(),
    }
}

impl LaunchPlan {
    /// The program exec'd first in the container (checked before start).
    pub fn entry_program(&self) -> &str {
        entry_program(&self.mode)
    }
}

impl LaunchPlan {
    /// How a stop goes, for `--dry-run` and notes: "with SIGUSR2", "by
    /// runlevel 0 request on /run/initctl (...)".
    pub fn describe_halt(&self) -> String {
        match self.halt {
            HaltMethod::Signal(signal) => format!("with {signal}"),
            HaltMethod::Runlevel0 => format!("by {}", self.halt.describe()),
        }
    }
}

/// The host signal that halts `flavor`'s init. An emulator delivers a host
/// real-time signal N to the guest as N - `rt_shift` (qemu-user 7.2: N-2,
/// measured here: liblxc's SIGRTMIN+3 arrived as SIGRTMIN+1 and systemd
/// isolated rescue.target), so systemd's SIGRTMIN+4 (poweroff) is sent that
/// much higher. Other signals map one to one.
fn halt_signal(flavor: InitFlavor, rt_shift: i32) -> &'static str {
    let wanted = flavor.halt_signal();
    match wanted.strip_prefix("SIGRTMIN+") {
        Some(n) if rt_shift != 0 => n
            .parse::<i32>()
            .ok()
            .and_then(|n| rt_signal_name(n + rt_shift))
            .unwrap_or(wanted),
        _ => wanted,
    }
}

/// Names of the real-time signals SIGRTMIN+0 .. SIGRTMIN+30 (glibc's
/// SIGRTMIN is 34 and SIGRTMAX 64 on Linux).
const RT_SIGNALS: [&str; 31] = [
    "SIGRTMIN+0",
    "SIGRTMIN+1",
    "SIGRTMIN+2",
    "SIGRTMIN+3",
    "SIGRTMIN+4",
    "SIGRTMIN+5",
    "SIGRTMIN+6",
    "SIGRTMIN+7",
    "SIGRTMIN+8",
    "SIGRTMIN+9",
    "SIGRTMIN+10",
    "SIGRTMIN+11",
    "SIGRTMIN+12",
    "SIGRTMIN+13",
    "SIGRTMIN+14",
    "SIGRTMIN+15",
    "SIGRTMIN+16",
    "SIGRTMIN+17",
    "SIGRTMIN+18",
    "SIGRTMIN+19",
    "SIGRTMIN+20",
    "SIGRTMIN+21",
    "SIGRTMIN+22",
    "SIGRTMIN+23",
    "SIGRTMIN+24",
    "SIGRTMIN+25",
    "SIGRTMIN+26",
    "SIGRTMIN+27",
    "SIGRTMIN+28",
    "SIGRTMIN+29",
    "SIGRTMIN+30",
];

/// `SIGRTMIN+n`, when that is a signal.
pub fn rt_signal_name(n: i32) -> Option<&'static str> {
    RT_SIGNALS.get(usize::try_from(n).ok()?).copied()
}

/// The signal names `--halt-signal` takes.
const NAMED_SIGNALS: [&str; 11] = [
    "SIGHUP", "SIGINT", "SIGQUIT", "SIGKILL", "SIGUSR1", "SIGUSR2", "SIGTERM", "SIGCONT",
    "SIGSTOP", "SIGWINCH", "SIGPWR",
];

/// `--halt-signal`: a signal name (with or without `SIG`), `SIGRTMIN+n`,
/// or a number.
pub fn parse_signal(text: &str) -> Result<&'static str, String> {
    let upper = text.trim().to_ascii_uppercase();
    let name = if upper.starts_with("SIG") {
        upper
    } else {
        format!("SIG{upper}")
    };
    if let Some(found) = NAMED_SIGNALS.iter().find(|s| **s == name) {
        return Ok(found);
    }
    if let Some(found) = name
        .strip_prefix("SIGRTMIN+")
        .and_then(|n| n.parse::<i32>().ok())
        .and_then(rt_signal_name)
    {
        return Ok(found);
    }
    if let Ok(number) = text.trim().parse::<i32>() {
        let by_number = NAMED_SIGNALS.iter().find(|s| {
            s.parse::<nix::sys::signal::Signal>()
                .is_ok_and(|signal| signal as i32 == number)
        });
        if let Some(found) = by_number {
            return Ok(found);
        }
        if let Some(found) = rt_signal_name(number - libc::SIGRTMIN()) {
            return Ok(found);
        }
    }
    Err(format!(
        "unknown signal {text:?}: give a name (SIGPWR, SIGUSR2, SIGRTMIN+4, ...) or a number"
    ))
}

/// The image's file name without extension, reduced to a valid host name
/// (RFC 1123 label: letters, digits and '-', at most 63 characters).
pub fn default_hostname(image: &Path) -> String {
    let stem = image
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let label: String = stem
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect::<String>()
        .trim_matches('-')
        .chars()
        .take(63)
        .collect::<String>()
        // The cut may leave a '-' at the end, where a label may not have one.
        .trim_end_matches('-')
        .to_owned();
    if label.is_empty() {
        "rootrun".into()
    } else {
        label
    }
}

#[cfg(test)]
mod tests;
