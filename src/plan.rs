//! Plan, then apply: everything rootrun decides about a launch, as data.
//!
//! `plan()` is pure: options + image facts -> `LaunchPlan`. Unit tests check
//! it without privileges and `--dry-run` prints it; `launch` only executes it.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::arch::{Arch, Emulation};
use crate::detect::ImageFacts;
use crate::image::InitFlavor;

/// Where rootrun keeps its state. A private tmpfs is mounted here inside
/// rootrun's own mount namespace, so the host only ever sees an empty
/// directory, whatever happens to rootrun.
pub const STATE_DIR: &str = "/run/rootrun";

/// liblxc's run directory: its lock files go under `lock/<lxcpath>/`.
pub const LXC_RUN_DIR: &str = "/run/lxc";

/// Container names are this prefix and rootrun's PID (see `sys::cgroup`).
pub const CONTAINER_PREFIX: &str = "rootrun-";

/// The directories of one run, all inside the private tmpfs at `STATE_DIR`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    pub base: PathBuf,
    /// The SquashFS, read-only.
    pub lower: PathBuf,
    /// Overlay upper and work directories (on the tmpfs: nothing persists).
    pub upper: PathBuf,
    pub work: PathBuf,
    /// The overlay: the container's root.
    pub rootfs: PathBuf,
    /// liblxc's lxcpath; the container's config is `lxcpath/NAME/config`.
    pub lxcpath: PathBuf,
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
            lxcpath: base.join("lxc"),
            log: base.join("lxc.log"),
            seccomp: base.join("seccomp"),
        }
    }
}

/// Where the container's read-only lower layer comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lower {
    /// The SquashFS file, loop-mounted read-only.
    Squashfs,
    /// An already extracted tree (`--rootfs DIR`), bind-mounted read-only.
    Directory,
    /// The SquashFS extracted with backhand into the private tmpfs
    /// (`--unpack`: no loop device, no squashfs kernel module needed).
    Unpacked,
}

/// What runs as the container's first process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    /// Boot the image's init with the console attached.
    Boot { init: String },
    /// Run one command under liblxc's minimal init (as lxc-execute does),
    /// with rootrun's stdin, stdout and stderr.
    Command { argv: Vec<String> },
}

/// Options that shape a launch (from the command line).
#[derive(Debug, Clone)]
pub struct Options {
    /// The SquashFS file, or the directory with `Lower::Directory`.
    pub image: PathBuf,
    pub lower: Lower,
    pub command: Vec<String>,
    pub hostname: Option<String>,
    pub init: String,
    pub escape: u8,
    pub stop_timeout: Duration,
}

/// Everything a launch will do.
#[derive(Debug, Clone)]
pub struct LaunchPlan {
    pub image: PathBuf,
    pub lower: Lower,
    /// Unique per run: liblxc's command socket and cgroups are host-global.
    pub name: String,
    pub hostname: String,
    pub layout: Layout,
    pub mode: Mode,
    pub halt_signal: &'static str,
    pub stop_timeout: Duration,
    pub escape: u8,
    /// None when the image has no ELF file at all (it cannot boot anyway).
    pub arch: Option<Arch>,
    pub emulation: Emulation,
}

/// Devices the guest may use: creating any node (m) but reading and writing
/// only null, zero, full, random, urandom, tty, console, ptmx, the ptys and
/// fuse (liblxc's common.conf list).
const ALLOWED_DEVICES: [&str; 12] = [
    "c *:* m",
    "b *:* m",
    "c 1:3 rwm",
    "c 1:5 rwm",
    "c 1:7 rwm",
    "c 1:8 rwm",
    "c 1:9 rwm",
    "c 5:0 rwm",
    "c 5:1 rwm",
    "c 5:2 rwm",
    "c 136:* rwm",
    "c 10:229 rwm",
];

/// The seccomp policy (liblxc's format, lxc.container.conf(5)): no kernel
/// modules, no kexec, and no open_by_handle_at, the classic escape from a
/// container's root to any file of the host.
pub const SECCOMP_POLICY: &str = "2
denylist
reject_force_umount
[all]
kexec_load errno 1
open_by_handle_at errno 1
init_module errno 1
finit_module errno 1
delete_module errno 1
";

/// How the console reaches the container.
#[derive(Debug, Clone, Copy)]
pub enum ConsolePath<'a> {
    /// A pty slave allocated at start (boot mode).
    Pty(&'a Path),
    /// Not known yet (dry run).
    Planned,
}

pub fn plan(opts: &Options, facts: &ImageFacts, emulation: Emulation, pid: u32) -> LaunchPlan {
    let mode = if opts.command.is_empty() {
        Mode::Boot {
            init: opts.init.clone(),
        }
    } else {
        Mode::Command {
            argv: opts.command.clone(),
        }
    };
    // liblxc's minimal init forwards the halt signal to the command; SIGTERM
    // is what a command expects when asked to stop.
    let halt_signal = match mode {
        Mode::Boot { .. } => halt_signal(facts.init_flavor, &emulation),
        Mode::Command { .. } => "SIGTERM",
    };
    LaunchPlan {
        image: opts.image.clone(),
        lower: opts.lower,
        name: format!("{CONTAINER_PREFIX}{pid}"),
        hostname: opts
            .hostname
            .clone()
            .unwrap_or_else(|| default_hostname(&opts.image)),
        layout: Layout::under(Path::new(STATE_DIR)),
        mode,
        halt_signal,
        stop_timeout: opts.stop_timeout,
        escape: opts.escape,
        arch: facts.arch,
        emulation,
    }
}

/// The host signal that halts `flavor`'s init. Under qemu-user 7.2 a host
/// real-time signal N reaches the guest as N-2 (measured here: liblxc's
/// SIGRTMIN+3 arrived as SIGRTMIN+1 and systemd isolated rescue.target, while
/// host SIGRTMIN+5 halted it), so systemd's SIGRTMIN+4 (poweroff) is sent
/// as SIGRTMIN+6 when emulated. Other signals map one to one.
fn halt_signal(flavor: InitFlavor, emulation: &Emulation) -> &'static str {
    match (flavor, emulation) {
        (InitFlavor::Systemd, Emulation::Preloaded { .. } | Emulation::BindMount { .. }) => {
            "SIGRTMIN+6"
        }
        _ => flavor.halt_signal(),
    }
}

/// The image's file name without extension, reduced to a valid host name
/// (RFC 1123 label: letters, digits and '-', at most 63 characters).
fn default_hostname(image: &Path) -> String {
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
        .collect();
    if label.is_empty() {
        "rootrun".into()
    } else {
        label
    }
}

impl LaunchPlan {
    /// The liblxc configuration, as `(key, value)` pairs in file order.
    pub fn lxc_config(&self, console: ConsolePath<'_>) -> Vec<(&'static str, String)> {
        let layout = &self.layout;
        let mut items = vec![
            ("lxc.uts.name", self.hostname.clone()),
            (
                "lxc.rootfs.path",
                format!("dir:{}", layout.rootfs.display()),
            ),
            ("lxc.mount.auto", "proc:mixed sys:mixed cgroup:mixed".into()),
            ("lxc.autodev", "1".into()),
            // No gettys on /dev/ttyN: the console is the only terminal.
            ("lxc.tty.max", "0".into()),
            ("lxc.pty.max", "64".into()),
            // A network namespace with loopback only.
            ("lxc.net.0.type", "empty".into()),
            (
                "lxc.cap.drop",
                "mac_admin mac_override sys_module sys_rawio sys_time".into(),
            ),
            ("lxc.seccomp.profile", layout.seccomp.display().to_string()),
            ("lxc.signal.halt", self.halt_signal.into()),
            ("lxc.log.file", layout.log.display().to_string()),
            ("lxc.log.level", "ERROR".into()),
        ];
        // Guest root may create device nodes (autodev /dev is not nodev) or
        // mount devtmpfs; the devices controller keeps it off the host's
        // disks either way. Both spellings, as liblxc's common.conf does: the
        // one for the host's cgroup layout applies.
        for key in ["lxc.cgroup.devices.deny", "lxc.cgroup2.devices.deny"] {
            items.push((key, "a".into()));
        }
        for key in ["lxc.cgroup.devices.allow", "lxc.cgroup2.devices.allow"] {
            items.extend(ALLOWED_DEVICES.iter().map(|rule| (key, (*rule).to_owned())));
        }
        if let Some(personality) = self.personality() {
            items.push(("lxc.arch", personality.into()));
        }
        match &self.mode {
            Mode::Boot { init } => {
                items.push(("lxc.init.cmd", init.clone()));
                let path = match console {
                    ConsolePath::Pty(path) => path.display().to_string(),
                    ConsolePath::Planned => "<pty allocated at start>".into(),
                };
                items.push(("lxc.console.path", path));
            }
            // The command keeps rootrun's own stdin/stdout/stderr.
            Mode::Command { .. } => items.push(("lxc.console.path", "none".into())),
        }
        items
    }

    /// A 32-bit image the host CPU runs natively (i386 on x86_64) needs the
    /// 32-bit personality so that `uname -m` and autoconf-style probes see
    /// the architecture the image was built for (personality(2)). This is all
    /// `lxc.arch` can do: it never makes a foreign CPU's binaries run, so it is
    /// not set for emulated images.
    fn personality(&self) -> Option<&'static str> {
        let arch = self.arch?;
        let native_32_on_64 = matches!(self.emulation, Emulation::Native)
            && arch != Arch::host()
            && matches!(
                (arch, Arch::host()),
                (Arch::I386, Arch::X86_64) | (Arch::Arm | Arch::Armel, Arch::Aarch64)
            );
        native_32_on_64.then_some("linux32")
    }

    /// The liblxc config file text.
    pub fn lxc_config_text(&self, console: ConsolePath<'_>) -> String {
        self.lxc_config(console)
            .iter()
            .map(|(k, v)| format!("{k} = {v}\n"))
            .collect()
    }

    /// The program exec'd first in the container (checked before start).
    pub fn entry_program(&self) -> &str {
        match &self.mode {
            Mode::Boot { init } => init,
            Mode::Command { argv } => argv.first().map(String::as_str).unwrap_or_default(),
        }
    }
}

impl fmt::Display for LaunchPlan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let l = &self.layout;
        writeln!(f, "# rootrun launch plan for {}", self.image.display())?;
        writeln!(
            f,
            "# sweep stale lxc.{{monitor,payload}}.{CONTAINER_PREFIX}PID cgroups of dead rootruns"
        )?;
        writeln!(
            f,
            "# private mount namespace; tmpfs on {} (state) and {LXC_RUN_DIR} (liblxc's locks)",
            l.base.display()
        )?;
        match self.lower {
            Lower::Squashfs => {
                writeln!(
                    f,
                    "# loop device: read-only, autoclear <- {}",
                    self.image.display()
                )?;
                writeln!(
                    f,
                    "# mount squashfs ro,nodev,nosuid on {}",
                    l.lower.display()
                )?;
            }
            Lower::Directory => writeln!(
                f,
                "# bind-mount {} read-only (nosuid, nodev) on {}",
                self.image.display(),
                l.lower.display()
            )?,
            Lower::Unpacked => writeln!(
                f,
                "# unpack {} with backhand into {} (on the tmpfs)",
                self.image.display(),
                l.lower.display()
            )?,
        }
        writeln!(
            f,
            "# mount overlay nodev on {} (lower {}, upper {})",
            l.rootfs.display(),
            l.lower.display(),
            l.upper.display()
        )?;
        match (self.arch, &self.emulation) {
            (Some(arch), emulation) => writeln!(f, "# runs as {}", emulation.describe(arch))?,
            (None, _) => writeln!(f, "# architecture unknown (no ELF file found)")?,
        }
        if let Emulation::BindMount {
            interpreter,
            host_file,
            ..
        } = &self.emulation
        {
            writeln!(
                f,
                "# bind-mount {} read-only at {} inside (mount point created inside the root)",
                host_file.display(),
                interpreter.display()
            )?;
        }
        match &self.mode {
            Mode::Boot { init } => writeln!(f, "# boot {init}; halt with {}", self.halt_signal)?,
            Mode::Command { argv } => writeln!(f, "# run {argv:?} under liblxc's init")?,
        }
        writeln!(f, "# container {} in {}", self.name, l.lxcpath.display())?;
        writeln!(f, "# seccomp policy written to {}:", l.seccomp.display())?;
        for line in SECCOMP_POLICY.lines() {
            writeln!(f, "#| {line}")?;
        }
        f.write_str(&self.lxc_config_text(ConsolePath::Planned))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(flavor: InitFlavor) -> ImageFacts {
        ImageFacts {
            init: "/sbin/init".into(),
            init_resolved: None,
            init_flavor: flavor,
            arch: Some(Arch::Aarch64),
            arch_overridden: false,
            evidence: None,
            probes: Vec::new(),
            metadata: None,
            metadata_mismatch: None,
            squashfs: None,
            head: Vec::new(),
        }
    }

    fn plan(opts: &Options, facts: &ImageFacts, pid: u32) -> LaunchPlan {
        super::plan(opts, facts, Emulation::Native, pid)
    }

    fn options(command: &[&str]) -> Options {
        Options {
            image: PathBuf::from("/srv/images/My_Router.v2.img"),
            lower: Lower::Squashfs,
            command: command.iter().map(|s| s.to_string()).collect(),
            hostname: None,
            init: "/sbin/init".into(),
            escape: 1,
            stop_timeout: Duration::from_secs(10),
        }
    }

    fn value<'a>(items: &'a [(&'static str, String)], key: &str) -> Vec<&'a str> {
        items
            .iter()
            .filter(|(k, _)| *k == key)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    #[test]
    fn boot_mode_runs_init_on_the_pty_console() {
        let plan = plan(&options(&[]), &facts(InitFlavor::BusyBox), 42);
        assert_eq!(plan.name, "rootrun-42");
        assert_eq!(plan.hostname, "my-router-v2");
        let items = plan.lxc_config(ConsolePath::Pty(Path::new("/dev/pts/7")));
        assert_eq!(value(&items, "lxc.init.cmd"), ["/sbin/init"]);
        assert_eq!(value(&items, "lxc.console.path"), ["/dev/pts/7"]);
        assert_eq!(value(&items, "lxc.signal.halt"), ["SIGUSR2"]);
        assert_eq!(
            value(&items, "lxc.rootfs.path"),
            ["dir:/run/rootrun/rootfs"]
        );
        assert_eq!(plan.entry_program(), "/sbin/init");
    }

    #[test]
    fn command_mode_keeps_stdio_and_has_no_console() {
        let plan = plan(
            &options(&["/bin/sh", "-c", "exit 7"]),
            &facts(InitFlavor::Other),
            1,
        );
        let items = plan.lxc_config(ConsolePath::Planned);
        assert_eq!(value(&items, "lxc.console.path"), ["none"]);
        assert!(value(&items, "lxc.init.cmd").is_empty());
        assert_eq!(value(&items, "lxc.signal.halt"), ["SIGTERM"]);
        assert_eq!(plan.entry_program(), "/bin/sh");
    }

    #[test]
    fn every_key_appears_once_and_no_lxc_loop_backend_or_create_option() {
        let plan = plan(&options(&[]), &facts(InitFlavor::Other), 1);
        let items = plan.lxc_config(ConsolePath::Planned);
        for (key, value) in &items {
            if !key.ends_with(".devices.allow") {
                assert_eq!(
                    items.iter().filter(|(k, _)| k == key).count(),
                    1,
                    "{key} twice"
                );
            }
            assert!(
                !value.contains("loop:") && !value.contains("create="),
                "{key} = {value}"
            );
        }
        assert_eq!(value(&items, "lxc.signal.halt"), ["SIGPWR"]);
        assert_eq!(value(&items, "lxc.cgroup2.devices.deny"), ["a"]);
        assert!(value(&items, "lxc.cgroup2.devices.allow").contains(&"c 1:3 rwm"));
        assert!(!value(&items, "lxc.cgroup.devices.allow")
            .iter()
            .any(|r| r.starts_with('b') && r.contains("rw")));
        assert_eq!(
            value(&items, "lxc.seccomp.profile"),
            ["/run/rootrun/seccomp"]
        );
    }

    #[test]
    fn emulated_systemd_gets_the_shifted_poweroff_signal() {
        let emulated = Emulation::Preloaded {
            entry: "qemu-aarch64".into(),
            interpreter: "/q".into(),
        };
        let p = super::plan(&options(&[]), &facts(InitFlavor::Systemd), emulated, 1);
        assert_eq!(p.halt_signal, "SIGRTMIN+6");
        assert_eq!(
            plan(&options(&[]), &facts(InitFlavor::Systemd), 1).halt_signal,
            "SIGRTMIN+4"
        );
    }

    #[test]
    fn dry_run_names_the_interpreter_bind_mount() {
        let bind = Emulation::BindMount {
            entry: "qemu-aarch64".into(),
            interpreter: "/usr/bin/qemu-aarch64-static".into(),
            host_file: "/usr/bin/qemu-aarch64-static".into(),
        };
        let text = super::plan(&options(&[]), &facts(InitFlavor::BusyBox), bind, 1).to_string();
        assert!(
            text.contains("# runs as aarch64 under /usr/bin/qemu-aarch64-static, bind-mounted"),
            "{text}"
        );
        assert!(
            text.contains("read-only at /usr/bin/qemu-aarch64-static inside"),
            "{text}"
        );
    }

    #[test]
    fn hostname_falls_back_when_the_name_has_no_usable_characters() {
        assert_eq!(default_hostname(Path::new("/x/___.img")), "rootrun");
        assert_eq!(default_hostname(Path::new(&"a".repeat(100))).len(), 63);
    }

    #[test]
    fn dry_run_text_names_the_mounts_and_the_config() {
        let text = plan(&options(&[]), &facts(InitFlavor::Other), 1).to_string();
        assert!(text.contains("squashfs ro,nodev,nosuid"), "{text}");
        assert!(
            text.contains("lxc.console.path = <pty allocated at start>"),
            "{text}"
        );
    }
}
