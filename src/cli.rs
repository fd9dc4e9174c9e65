//! Command-line syntax (clap derive structs only).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::arch::Arch;
use crate::config::{parse_arch, parse_escape, parse_hostname, parse_init};

/// Boot a root filesystem image of any CPU architecture as a container.
///
/// `rootrun IMAGE` loop-mounts a SquashFS image read-only under a throwaway
/// writable overlay (an ext4 or EROFS image the same way; a tar or cpio
/// archive is unpacked into a tmpfs) and boots its /sbin/init through liblxc, with the console
/// on this terminal (or on stdin/stdout when they are not a terminal).
/// `rootrun IMAGE -- CMD ARGS...` runs one command instead of init and exits
/// with its status. Nothing is written to the image, and nothing is left on
/// the host when rootrun returns.
///
/// Exit status: the container's own (a signal as 128+n); 125 when rootrun
/// itself fails, 126 when the command is not executable, 127 when it is not
/// found in the image.
#[derive(Debug, Parser)]
#[command(
    after_help = "A command to run in the image goes after `--`: rootrun IMAGE -- uname -m",
    after_long_help = EXAMPLES,
    name = "rootrun",
    version,
    args_override_self = true,
    args_conflicts_with_subcommands = true,
    subcommand_negates_reqs = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub run: RunArgs,
}

const EXAMPLES: &str = "\
Exit status:
  the container's: init's in boot mode (0 after poweroff inside), CMD's in
  command mode; 128+n when it or rootrun was killed by signal n;
  125 rootrun itself failed; 126 CMD or init is not executable;
  127 CMD or init (or the loader it needs) is not in the image;
  123/124 --expect: the container ended first / --timeout passed first
  141 stdout was a pipe that closed (as a program killed by SIGPIPE)

Examples:
  sudo rootrun rootfs.img
      boot its init; the console is this terminal, Ctrl-a q stops it
  printf 'uname -m; poweroff\\n' | sudo rootrun rootfs.img
      drive a boot from a script (the console is stdin/stdout)
  sudo rootrun rootfs.img -- /bin/sh -c 'cat /etc/os-release'
      run one command and exit with its status
  sudo rootrun -d --name fw rootfs.img && sudo rootrun exec fw -- ps
      boot it in the background, then run a command in it; `rootrun ls`,
      `rootrun console fw`, `rootrun logs fw`, `rootrun stop fw`
  rootrun inspect rootfs.img
      architecture, init and binfmt handler, without root
  sudo rootrun --expect 'login:' --timeout 120 rootfs.img < /dev/null
      CI boot check: 0 when a login prompt appears, 124 on timeout
  sudo rootrun --dry-run rootfs.img
      show the mounts and the liblxc configuration, touch nothing
  sudo rootrun unpack rootfs.img ./tree && sudo rootrun --rootfs ./tree
      extract, then boot the tree (it is never written)";

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Boot IMAGE, or run a command in it (the default subcommand).
    ///
    /// `rootrun run IMAGE` is `rootrun IMAGE`: it loop-mounts a SquashFS image
    /// (or an ext4 or EROFS image; a tar or cpio archive is unpacked into a
    /// tmpfs) read-only under a throwaway writable overlay and boots its /sbin/init
    /// through liblxc, with the console on this terminal (or on stdin/stdout
    /// when they are not a terminal). `-- CMD ARGS...` runs one command
    /// instead of init and exits with its status.
    #[command(
        after_help = "A command to run in the image goes after `--`: rootrun run IMAGE -- uname -m",
        after_long_help = EXAMPLES,
        args_override_self = true
    )]
    Run(Box<RunArgs>),
    /// Show what rootrun reads from IMAGE without mounting it: the CPU
    /// architecture and its evidence, init, SquashFS facts, metadata.yaml,
    /// and the binfmt_misc handler this host would use. No root needed.
    Inspect(InspectArgs),
    /// Extract a SquashFS IMAGE into DIR (empty or not existing), safely.
    ///
    /// On failure or Ctrl-C a DIR it created is removed; a DIR you made keeps
    /// what was extracted and a note saying so.
    Unpack(UnpackArgs),
    /// List the running containers: name, state, architecture and how it
    /// is emulated, image, init's PID, uptime.
    Ls(LsArgs),
    /// Attach to a detached container's console; Ctrl-a q detaches again
    /// and leaves the container running.
    Console(ConsoleArgs),
    /// Stop a container through its init (the same init-aware,
    /// emulation-aware halt as Ctrl-a q), killing it after --timeout.
    Stop(StopArgs),
    /// Print what a detached container's console has printed so far.
    Logs(LogsArgs),
    /// Run a command in a running container (liblxc's attach), with its
    /// exit status passed through as in command mode.
    ///
    /// With stdin a (controlling) terminal the command gets a
    /// pseudo-terminal of its own. rootrun first re-executes itself from a
    /// copy nobody can write (its own file on a read-only detached mount,
    /// or a sealed memfd), so a process inside the container cannot write
    /// the rootrun binary through /proc/PID/exe (CVE-2019-5736).
    #[command(after_help = "Example: sudo rootrun exec fw -- /bin/sh -c 'ps; df -h'")]
    Exec(ExecArgs),
    /// Print a shell completion script for SHELL on stdout.
    #[command(after_help = "\
Install, for example:
  rootrun completions bash > /etc/bash_completion.d/rootrun
  rootrun completions zsh > /usr/local/share/zsh/site-functions/_rootrun
  rootrun completions fish > ~/.config/fish/completions/rootrun.fish")]
    Completions(CompletionsArgs),
    /// Print rootrun's manual page (roff) on stdout: `rootrun man | man -l -`.
    Man,
    /// Write what LXD or Incus need to import IMAGE: OUTDIR/metadata.tar.gz
    /// (metadata.yaml with the detected architecture and the image's
    /// os-release) and, when this host's handler lacks the F flag,
    /// OUTDIR/profile.yaml with the disk device for the interpreter.
    #[command(after_help = "\
Then, on a host with LXD (or incus instead of lxc):
  lxc image import OUTDIR/metadata.tar.gz IMAGE --alias fw
  lxc profile create qemu-aarch64 && lxc profile edit qemu-aarch64 < OUTDIR/profile.yaml
  lxc launch fw c1 -p default -p qemu-aarch64")]
    Export(ExportArgs),

    /// Check whether this host is ready: root, liblxc, kernel support,
    /// cgroups, binfmt_misc and the handler per architecture; with IMAGE,
    /// whether and how it runs here. Exit 0 when ready, 1 otherwise.
    Doctor(DoctorArgs),
}

/// `rootrun export IMAGE OUTDIR`.
#[derive(Debug, Args)]
pub struct ExportArgs {
    /// SquashFS image.
    #[arg(value_name = "IMAGE")]
    pub image: PathBuf,

    /// Where the files go: an empty directory, or a path to create.
    #[arg(value_name = "OUTDIR")]
    pub dir: PathBuf,

    /// Take this architecture instead of reading it from ELF headers.
    #[arg(long, value_name = "NAME", value_parser = parse_arch)]
    pub arch: Option<Arch>,
}

/// `rootrun completions SHELL`.
#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// bash, zsh, fish, elvish or powershell.
    #[arg(value_name = "SHELL")]
    pub shell: clap_complete::Shell,
}

/// `rootrun doctor [IMAGE]`.
#[derive(Debug, Args)]
pub struct DoctorArgs {
    /// An image (or extracted tree) to check too.
    #[arg(value_name = "IMAGE")]
    pub image: Option<PathBuf>,

    /// Print JSON: `ready` and `checks` (each `check`, `status`, `detail`,
    /// `fix`).
    #[arg(long)]
    pub json: bool,
}

/// `rootrun ls`.
#[derive(Debug, Args)]
pub struct LsArgs {
    /// Print JSON (an array of objects, shape: README, "JSON").
    #[arg(long)]
    pub json: bool,
}

/// `rootrun console NAME`.
#[derive(Debug, Args)]
pub struct ConsoleArgs {
    /// The container's name (`rootrun ls` lists them).
    #[arg(value_name = "NAME", value_parser = crate::config::parse_name)]
    pub name: String,

    /// Escape: Ctrl-<KEY> then `q` detaches from the console.
    #[arg(long, default_value = "a", value_name = "KEY", value_parser = parse_escape)]
    pub escape: u8,
}

/// `rootrun stop NAME`.
#[derive(Debug, Args)]
pub struct StopArgs {
    /// The container's name (`rootrun ls` lists them).
    #[arg(value_name = "NAME", value_parser = crate::config::parse_name)]
    pub name: String,

    /// Seconds init has to halt before it is killed [default: the
    /// container's --stop-timeout].
    #[arg(long, value_name = "SECS", value_parser = clap::value_parser!(u64).range(0..=86_400))]
    pub timeout: Option<u64>,

    /// Kill it now instead of asking init to halt.
    #[arg(long, conflicts_with = "timeout")]
    pub kill: bool,
}

/// `rootrun logs NAME`.
#[derive(Debug, Args)]
pub struct LogsArgs {
    /// The container's name (`rootrun ls` lists them).
    #[arg(value_name = "NAME", value_parser = crate::config::parse_name)]
    pub name: String,

    /// Keep printing what the console prints until the container stops.
    #[arg(short, long)]
    pub follow: bool,
}

/// `rootrun exec NAME -- CMD [ARG...]`.
#[derive(Debug, Args)]
pub struct ExecArgs {
    /// The container's name (`rootrun ls` lists them).
    #[arg(value_name = "NAME", value_parser = crate::config::parse_name)]
    pub name: String,

    /// The command and its arguments, after `--`.
    #[arg(last = true, required = true, value_name = "CMD")]
    pub command: Vec<String>,

    /// Set an environment variable for CMD (repeatable).
    #[arg(short = 'e', long = "env", value_name = "KEY=VALUE", value_parser = crate::config::parse_env)]
    pub env: Vec<(String, String)>,

    /// Working directory of CMD inside the container [default: /].
    #[arg(short = 'w', long, value_name = "DIR", value_parser = parse_init)]
    pub workdir: Option<String>,

    /// Run CMD as USER: a name from the container's /etc/passwd, or
    /// UID[:GID].
    #[arg(short = 'u', long, value_name = "USER")]
    pub user: Option<String>,
}

#[derive(Debug, Args)]
pub struct InspectArgs {
    /// SquashFS, ext4 or EROFS image, tar or cpio archive (ext4, EROFS and
    /// archives need root), or an extracted root filesystem directory.
    #[arg(value_name = "IMAGE")]
    pub image: PathBuf,

    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,

    /// Init to look at.
    #[arg(long, default_value = "/sbin/init", value_name = "PATH")]
    pub init: String,

    /// A split image's metadata tarball (metadata.tar.gz) to read instead
    /// of the image's own /metadata.yaml.
    #[arg(long, value_name = "FILE")]
    pub metadata: Option<PathBuf>,

    /// Take this architecture instead of reading it from ELF headers.
    #[arg(long, value_name = "NAME", value_parser = parse_arch)]
    pub arch: Option<Arch>,
}

/// `rootrun unpack IMAGE DIR`.
#[derive(Debug, Args)]
pub struct UnpackArgs {
    /// SquashFS image to extract.
    #[arg(value_name = "IMAGE")]
    pub image: PathBuf,

    /// Destination: an empty directory, or a path to create.
    #[arg(value_name = "DIR")]
    pub dir: PathBuf,

    /// No progress bar and no summary.
    #[arg(short, long)]
    pub quiet: bool,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// Root filesystem image: SquashFS, ext2/3/4 or EROFS; or a tar (plain,
    /// gzip, xz, zstd, bzip2) or cpio newc archive, unpacked into a tmpfs.
    #[arg(required_unless_present = "rootfs", value_name = "IMAGE")]
    pub image: Option<PathBuf>,

    /// Boot an already extracted root filesystem directory instead of an
    /// image (read-only under a throwaway overlay, like an image).
    #[arg(long, value_name = "DIR", conflicts_with_all = ["image", "unpack"])]
    pub rootfs: Option<PathBuf>,

    /// Extract the SquashFS image with backhand into a throwaway directory
    /// and boot that, for hosts that cannot loop-mount SquashFS.
    #[arg(long)]
    pub unpack: bool,

    /// Command to run instead of init, after `--` (e.g. `-- /bin/sh -c 'uname -m'`).
    #[arg(last = true, value_name = "CMD")]
    pub command: Vec<String>,

    /// Name the container, for `rootrun ls`, `exec`, `stop`, `console` and
    /// `logs` [default: from the image's file name, with -2, -3, ... when
    /// taken]. Two running containers cannot have the same name.
    #[arg(long, value_name = "NAME", value_parser = crate::config::parse_name)]
    pub name: Option<String>,

    /// Start in the background and return once init runs; its console
    /// goes to `rootrun logs NAME` and `rootrun console NAME`.
    #[arg(short, long, conflicts_with_all = ["command", "expect", "timeout", "stop_on_eof", "console_log"])]
    pub detach: bool,

    /// A split image's metadata tarball (metadata.tar.gz) to read instead
    /// of the image's own /metadata.yaml (checked against the ELF).
    #[arg(long, value_name = "FILE")]
    pub metadata: Option<PathBuf>,

    /// Take defaults from FILE (YAML; keys are these options' long names)
    /// [default: IMAGE.rootrun.yaml beside the image, when there is one].
    /// Options given here win over the file's.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Set an environment variable for init or CMD (repeatable).
    #[arg(short = 'e', long = "env", value_name = "KEY=VALUE", value_parser = crate::config::parse_env)]
    pub env: Vec<(String, String)>,

    /// Keep the writable layer in DIR (DIR/upper, DIR/work): a later run
    /// with the same DIR sees what this one wrote. The image is never
    /// written.
    #[arg(long, value_name = "DIR", conflicts_with = "keep_upper")]
    pub persist: Option<PathBuf>,

    /// Keep this run's changes for a post-mortem: the writable layer goes
    /// to DIR/upper (DIR must be empty or not exist) instead of a tmpfs.
    #[arg(long, value_name = "DIR")]
    pub keep_upper: Option<PathBuf>,

    /// Size limit of rootrun's private tmpfs, which holds the writable
    /// layer (and, with --unpack, the extracted image): tmpfs's `size=`,
    /// e.g. `64m`, `2g`, `10%` [default: the kernel's, half of RAM].
    #[arg(long, value_name = "SIZE", value_parser = crate::config::parse_tmpfs_size)]
    pub tmpfs_size: Option<String>,

    /// Boot check: watch the console for REGEX; when it matches, stop the
    /// container cleanly and exit 0. Exit 124 when --timeout passes first,
    /// 123 when init ends first (the last console lines go to stderr).
    #[arg(long, value_name = "REGEX", value_parser = crate::config::parse_expect, conflicts_with = "command")]
    pub expect: Option<String>,

    /// Give the boot this many seconds (with --expect: then exit 124; alone:
    /// stop the container then, exit 124).
    #[arg(long, value_name = "SECS", value_parser = clap::value_parser!(u64).range(1..=604_800), conflicts_with = "command")]
    pub timeout: Option<u64>,

    /// A raw liblxc configuration item for what rootrun has no option for
    /// (repeatable, as `lxc-execute -s`), e.g. `--lxc
    /// lxc.cgroup2.devices.allow='c 10:200 rwm'`. Keys rootrun sets itself
    /// are refused, except those that hold a list.
    #[arg(long, value_name = "lxc.KEY=VALUE", value_parser = crate::config::parse_lxc_item)]
    pub lxc: Vec<(String, String)>,

    /// The container's network: `none` (loopback only), `host` (the host's
    /// own network namespace: every host interface, address, route, port
    /// and abstract socket is the guest's to use and change), `bridge=BR`
    /// (a veth interface eth0 whose host end joins the existing bridge BR),
    /// `nat` (eth0 on rootrun's bridge rootrun0 with DHCP from dnsmasq and
    /// masquerading by nftables, shared by all nat containers and removed
    /// with the last).
    #[arg(long, value_name = "MODE", default_value = "none", value_parser = crate::config::parse_net)]
    pub net: crate::config::Net,

    /// Stop the boot when the piped input has ended and the guest has been
    /// quiet for a second since (`rootrun --stop-on-eof IMG < script`).
    #[arg(long, conflicts_with = "command")]
    pub stop_on_eof: bool,

    /// Keep everything the console printed in FILE (boot mode).
    #[arg(long, value_name = "FILE", conflicts_with = "command")]
    pub console_log: Option<PathBuf>,

    /// Mount a host file or directory into the container at GUEST
    /// (writable unless `:ro`; repeatable). The mount point is created inside
    /// the container's root without following the image's symlinks out of it.
    /// With --unprivileged the guest sees host owners through its id map
    /// (host root's files are nobody's); `:idmap` (or `:ro,idmap`) mounts it
    /// idmapped instead: host owners as they are, and guest root writes as
    /// host root there.
    #[arg(long = "bind", value_name = "HOST:GUEST[:ro|:idmap]", value_parser = crate::config::parse_bind)]
    pub binds: Vec<crate::config::Bind>,

    /// Run CMD as USER (command mode): `UID[:GID]`, or a name from the
    /// image's /etc/passwd.
    #[arg(short = 'u', long, value_name = "USER", requires = "command")]
    pub user: Option<String>,

    /// Working directory of CMD inside the container (command mode).
    #[arg(short = 'w', long, value_name = "DIR", value_parser = parse_init, requires = "command")]
    pub workdir: Option<String>,

    /// Host name inside the container [default: the image's file name
    /// without extension, made a valid host name: `My_FW.v2.img` -> `my-fw-v2`].
    #[arg(long, value_name = "NAME", value_parser = parse_hostname)]
    pub hostname: Option<String>,

    /// Init to boot when no command is given (an absolute path in the image).
    #[arg(long, default_value = "/sbin/init", value_name = "PATH", value_parser = parse_init)]
    pub init: String,

    /// Console escape: Ctrl-<KEY> then `q` stops the container (terminal only).
    #[arg(long, default_value = "a", value_name = "KEY", value_parser = parse_escape)]
    pub escape: u8,

    /// Seconds to wait for init to halt after a stop request before killing it
    /// [default: 10; 60 under emulation]
    #[arg(long, value_name = "SECS", value_parser = clap::value_parser!(u64).range(0..=86_400))]
    pub stop_timeout: Option<u64>,

    /// CPU architecture of the image, in any dialect (aarch64, arm64, armhf,
    /// ppc64el, ...), for an image whose programs rootrun cannot read
    /// [default: read from the ELF header of init; an ELF header that says
    /// otherwise wins, with a warning].
    #[arg(long, value_name = "NAME", value_parser = parse_arch)]
    pub arch: Option<Arch>,

    /// Signal that asks init to halt, instead of the one rootrun chooses for
    /// its init (BusyBox SIGUSR2, systemd SIGRTMIN+4 shifted for the
    /// emulator's real-time signal mapping, others SIGPWR). A name
    /// (SIGPWR, SIGRTMIN+6) or a number, sent as is.
    #[arg(long, value_name = "SIGNAL", value_parser = crate::plan::parse_signal)]
    pub halt_signal: Option<&'static str>,

    /// Run the container unprivileged: guest root and the guest's ids are
    /// an unused host range (root's in /etc/subuid and /etc/subgid, else
    /// 1000000-1065535), the image's files keep their owners inside through
    /// idmapped mounts (nothing is chowned), and a foreign image runs through
    /// a binfmt_misc private to the container: the host's emulation table is
    /// neither needed nor touched. Needs Linux 6.7+.
    #[arg(long, overrides_with = "privileged")]
    pub unprivileged: bool,

    /// Run the container privileged (the default): guest root is host root,
    /// confined by capabilities, seccomp, the devices controller and AppArmor.
    #[arg(long, overrides_with = "unprivileged")]
    pub privileged: bool,

    /// If no binfmt_misc handler runs the image's architecture, register one
    /// (with the F flag) for the installed static emulator
    /// (/usr/bin/qemu-ARCH-static, or /usr/bin/qemu-ARCH on Debian 13). It
    /// stays registered after rootrun returns while binfmt_misc is mounted on
    /// the host.
    #[arg(long)]
    pub register_binfmt: bool,

    /// Print the launch plan (its steps, the seccomp policy and the liblxc
    /// configuration) and exit; touches nothing. Fails as the run would when
    /// init or CMD cannot be executed.
    #[arg(long)]
    pub dry_run: bool,

    /// With --dry-run: print the plan as JSON (shape: README, "JSON").
    #[arg(long, requires = "dry_run")]
    pub json: bool,

    /// Do not print the start banner.
    #[arg(short, long)]
    pub quiet: bool,

    /// Say more on stderr: the banner in command mode too, and rootrun's own
    /// steps with their timings (opening the image, the architecture, the
    /// binfmt handler, each launch step, liblxc's start, the teardown);
    /// -vv adds detail and sets liblxc's log level to debug (unless
    /// --log-level). RUST_LOG=rootrun=info|debug selects the same lines.
    #[arg(short, long, action = clap::ArgAction::Count, conflicts_with = "quiet")]
    pub verbose: u8,

    #[command(flatten)]
    pub debug: DebugArgs,
}

/// Debugging a run: liblxc's log, the emulator's options, syscall traces,
/// gdb (`crate::debug`).
#[derive(Debug, Args)]
#[command(next_help_heading = "Debugging")]
pub struct DebugArgs {
    /// liblxc's log level: trace, debug, info, notice, warn, error, crit,
    /// alert, fatal [default: error]; with --keep-logs.
    #[arg(long, value_name = "LEVEL", value_parser = crate::debug::parse_log_level)]
    pub log_level: Option<crate::debug::LogLevel>,

    /// Keep the run's logs in DIR (empty or new): liblxc's log (lxc.log),
    /// the console (console.log, boot mode), the emulator's traces
    /// (emulator/).
    #[arg(long, value_name = "DIR")]
    pub keep_logs: Option<PathBuf>,

    /// The CPU model QEMU emulates for every process of the container
    /// (QEMU_CPU; `qemu-ARCH-static -cpu help` lists them). Emulated images
    /// only.
    #[arg(long, value_name = "MODEL", value_parser = crate::debug::parse_qemu_cpu)]
    pub qemu_cpu: Option<String>,

    /// A qemu-user variable (QEMU_LOG, QEMU_RESERVED_VA, ...) for every
    /// process of the container (repeatable). Emulated images only.
    #[arg(long, value_name = "QEMU_K=V", value_parser = crate::debug::parse_qemu_env)]
    pub qemu_env: Vec<(String, String)>,

    /// QEMU's syscall trace of the container's first process (init, or
    /// CMD), or with =PATH of the program at PATH in the image each time it
    /// runs, into the log directory (emulator/strace.PID, PID as the
    /// container sees it); needs --keep-logs. Emulated images only.
    #[arg(long, value_name = "PATH", num_args = 0..=1, require_equals = true, default_missing_value = "")]
    pub strace: Option<String>,

    /// The container's first process (init, or CMD) starts halted under
    /// QEMU's gdbstub, reachable on 127.0.0.1:PORT or at the Unix socket
    /// PATH; rootrun prints the gdb-multiarch command line. Its children
    /// run freely.
    #[arg(long, value_name = "PORT|PATH", value_parser = crate::debug::parse_gdb)]
    pub gdb: Option<crate::debug::GdbTarget>,
}
