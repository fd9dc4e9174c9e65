//! One launch step: what `launch` executes, what `--dry-run` prints and what
//! `-v` reports as it happens. The three come from this one list, so the dry
//! run cannot drift from the run.

use std::fmt;
use std::path::PathBuf;

use serde::Serialize;

/// A step of a launch, in execution order. Each resource a step acquires is
/// released in reverse order when the run ends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "step", rename_all = "snake_case")]
pub enum Step {
    /// Remove empty cgroups of rootruns that were killed (`lxc.monitor.NAME`,
    /// `lxc.payload.NAME` whose PID is gone).
    SweepStaleCgroups { prefix: String },
    /// Take down the shared NAT network when every rootrun that used it is
    /// gone (killed: its entry under `state/users` names a dead PID).
    SweepStaleNat { state: PathBuf },
    /// `--net bridge=BR`: BR exists and is a bridge.
    CheckBridge { bridge: String },
    /// `--net nat`: join the shared NAT network, setting it up when this is
    /// its first user (bridge, address, nftables table, ip_forward,
    /// dnsmasq); the last user to leave takes it all down again.
    JoinNat {
        bridge: String,
        table: String,
        state: PathBuf,
        /// The bridge's /24: the first of these that no host route or
        /// address overlaps.
        candidates: Vec<String>,
    },
    /// unshare(CLONE_NEWNS) with private propagation: every later mount
    /// vanishes with rootrun, even after SIGKILL.
    PrivateMountNamespace,
    /// binfmt_misc is not mounted on the host; mount it in rootrun's
    /// namespace to read (and maybe register) handlers.
    MountBinfmtMisc { target: PathBuf },
    /// `--register-binfmt`: an `F` handler for the installed static emulator.
    RegisterBinfmt {
        name: String,
        interpreter: PathBuf,
        line: String,
        /// Whether the entry outlives rootrun (binfmt_misc mounted on the host).
        stays: bool,
    },
    /// Read binfmt_misc again and check the kernel picks the handler planned.
    CheckHandler {
        entry: String,
        /// The first bytes of the program whose ELF header decided the
        /// architecture, and its path: what binfmt_misc matches.
        #[serde(skip)]
        head: Vec<u8>,
        #[serde(skip)]
        file_name: String,
    },
    /// A private tmpfs on `target`. The directory is created with `dir_mode`
    /// when missing and never removed: another rootrun's namespace may have
    /// its own mount on it.
    Tmpfs {
        target: PathBuf,
        #[serde(serialize_with = "octal")]
        dir_mode: u32,
        /// The tmpfs root's mode: 0700, or 0711 when an unprivileged
        /// container's root must reach the directories in it.
        #[serde(serialize_with = "octal")]
        mode: u32,
        why: String,
        /// tmpfs's `size=` in bytes (or `N%`), from `--tmpfs-size`.
        #[serde(skip_serializing_if = "Option::is_none")]
        size: Option<String>,
    },
    /// Directories on the state tmpfs: mode 0700, or 0711 for an
    /// unprivileged container, whose root must reach liblxc's directories.
    MakeDirs {
        paths: Vec<PathBuf>,
        #[serde(serialize_with = "octal")]
        mode: u32,
        /// Given to this host uid and gid: an unprivileged container's
        /// root, for a directory the guest writes (the emulator's).
        #[serde(skip_serializing_if = "Option::is_none")]
        owner: Option<(u32, u32)>,
    },
    /// Open the image O_RDONLY and bind it to a loop device with
    /// LOOP_CONFIGURE, read-only and autoclear.
    AttachLoop { image: PathBuf },
    /// Mount that loop device's SquashFS `ro,nodev,nosuid`.
    MountSquashfs { target: PathBuf },
    /// Bind-mount a directory read-only, nosuid, nodev (`--rootfs DIR`).
    BindReadOnly { source: PathBuf, target: PathBuf },
    /// Extract the image with backhand into `target` (`--unpack`).
    Unpack { image: PathBuf, target: PathBuf },
    /// Attach the detached mount made while the image was opened (an ext4
    /// or EROFS file system mounted read-only, or the tmpfs an archive was
    /// unpacked into) on `target`.
    AttachLower { what: String, target: PathBuf },
    /// `--unprivileged`: stack an idmapped clone of the mount at `target`
    /// (the lower layer) on itself (`sys::mount::idmapped_onto_itself`), so
    /// the image's files appear with their own owners inside the container.
    Idmap {
        target: PathBuf,
        map: crate::sys::userns::IdMap,
    },
    /// The writable, throwaway overlay that becomes the container's root.
    Overlay {
        lower: PathBuf,
        upper: PathBuf,
        work: PathBuf,
        target: PathBuf,
    },
    /// The first program exists, is executable, and so is its loader or
    /// `#!` interpreter (else exit 127 or 126).
    CheckProgram { program: String },
    /// A handler without `F`: the host's interpreter, bind-mounted read-only
    /// at its registered path inside the root (mount point created inside).
    BindInterpreter {
        host_file: PathBuf,
        interpreter: PathBuf,
    },
    /// `--bind`: a host file or directory mounted at `target` inside (the
    /// mount point created inside the root), nosuid and nodev, read-only
    /// when asked, idmapped when asked (`:idmap`, `--unprivileged`).
    BindHost {
        source: PathBuf,
        target: PathBuf,
        read_only: bool,
        idmap: bool,
    },
    /// `--strace=PATH`: copy the program at `program` (resolved inside the
    /// root) into `copy_dir`, which the container sees read-only in its
    /// /dev, and bind a script that runs that copy under QEMU_STRACE
    /// read-only over `program` (`plan::debug::strace_wrapper`).
    TraceProgram { program: String, copy_dir: PathBuf },
    /// systemd under emulation: a drop-in resetting the credentials of each
    /// of `units`, written through the overlay into the writable layer
    /// (`plan::systemd`).
    WriteDropIns { units: Vec<String> },
    /// liblxc's seccomp policy file.
    WriteSeccompPolicy { path: PathBuf },
    /// A pty whose slave becomes the container's console (boot mode).
    AllocateConsole,
    /// `--console-log`: the file that keeps the console (created or
    /// truncated before the start, so a bad path fails before the boot).
    OpenConsoleLog { path: PathBuf },
    /// The liblxc configuration (the keys are in the plan).
    WriteLxcConfig { path: PathBuf },
    /// Start the container through liblxc in a monitor child, and attach.
    Start { name: String, lxcpath: PathBuf },
}

fn octal<S: serde::Serializer>(mode: &u32, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(&format_args!("{mode:04o}"))
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Step::SweepStaleCgroups { prefix } => write!(
                f,
                "sweep stale lxc.{{monitor,payload}}.{prefix}PID cgroups of dead rootruns"
            ),
            Step::SweepStaleNat { state } => write!(
                f,
                "take down the shared NAT network if every rootrun in {}/users is gone",
                state.display()
            ),
            Step::CheckBridge { bridge } => {
                write!(f, "check that bridge {bridge} exists on the host")
            }
            Step::JoinNat {
                bridge,
                table,
                state,
                candidates,
            } => write!(
                f,
                "join the shared NAT network (state in {}); as its first user set it up: \
                 bridge {bridge} on the first of {} free on the host, nftables table ip \
                 {table} (masquerade, forward), net.ipv4.ip_forward=1, dnsmasq for DHCP; \
                 the last user takes it down",
                state.display(),
                candidates.join(" ")
            ),
            Step::PrivateMountNamespace => f.write_str("enter a private mount namespace"),
            Step::MountBinfmtMisc { target } => {
                write!(f, "mount binfmt_misc on {} (private)", target.display())
            }
            Step::RegisterBinfmt {
                name,
                interpreter,
                stays,
                ..
            } => write!(
                f,
                "register binfmt_misc handler {name} (flag F) for {}{}",
                interpreter.display(),
                if *stays {
                    "; it stays registered"
                } else {
                    "; it goes with rootrun's mount"
                }
            ),
            Step::CheckHandler { entry, .. } => {
                write!(f, "check that the kernel picks binfmt_misc handler {entry}")
            }
            Step::Tmpfs {
                target, why, size, ..
            } => {
                write!(f, "mount tmpfs on {} ({why})", target.display())?;
                match size {
                    Some(size) => write!(f, ", size={size}"),
                    None => Ok(()),
                }
            }
            Step::Idmap { target, map } => write!(
                f,
                "idmap {}: container uids 0-{} are host uids {}-{}, gids host gids {}-{}",
                target.display(),
                map.count - 1,
                map.uid_first,
                map.uid_first + (map.count - 1),
                map.gid_first,
                map.gid_first + (map.count - 1)
            ),
            Step::MakeDirs { paths, .. } => {
                let list: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
                write!(f, "create directories {}", list.join(" "))
            }
            Step::AttachLoop { image } => write!(
                f,
                "loop device: read-only, autoclear <- {}",
                image.display()
            ),
            Step::MountSquashfs { target } => {
                write!(f, "mount squashfs ro,nodev,nosuid on {}", target.display())
            }
            Step::BindReadOnly { source, target } => write!(
                f,
                "bind-mount {} read-only (nosuid, nodev) on {}",
                source.display(),
                target.display()
            ),
            Step::Unpack { image, target } => write!(
                f,
                "unpack {} with backhand into {} (on the tmpfs)",
                image.display(),
                target.display()
            ),
            Step::AttachLower { what, target } => {
                write!(f, "attach {what} on {}", target.display())
            }
            Step::Overlay {
                lower,
                upper,
                target,
                ..
            } => write!(
                f,
                "mount overlay nodev on {} (lower {}, upper {})",
                target.display(),
                lower.display(),
                upper.display()
            ),
            Step::CheckProgram { program } => {
                write!(f, "check that {program} and its loader can be executed")
            }
            Step::BindInterpreter {
                host_file,
                interpreter,
            } => write!(
                f,
                "bind-mount {} read-only at {} inside (mount point created inside the root)",
                host_file.display(),
                interpreter.display()
            ),
            Step::BindHost {
                source,
                target,
                read_only,
                idmap,
            } => write!(
                f,
                "bind-mount {} {}{} at {} inside (mount point created inside the root)",
                source.display(),
                if *read_only { "read-only" } else { "writable" },
                if *idmap { ", idmapped" } else { "" },
                target.display()
            ),
            Step::TraceProgram { program, copy_dir } => write!(
                f,
                "trace {program} each time it runs: copy it to {} (seen inside at {}), and bind \
                 a script that runs the copy with QEMU_STRACE read-only over {program}",
                copy_dir.display(),
                super::debug::GUEST_PROGRAM_DIR
            ),
            Step::WriteDropIns { units } => write!(
                f,
                "write drop-ins turning off the credentials of {} systemd units ({}) into \
                 the writable layer: qemu-user cannot fork with CLONE_NEWNS",
                units.len(),
                super::drop_in_path("UNIT").display()
            ),
            Step::WriteSeccompPolicy { path } => {
                write!(f, "write the seccomp policy to {}", path.display())
            }
            Step::AllocateConsole => f.write_str("allocate a pty for the console"),
            Step::OpenConsoleLog { path } => {
                write!(f, "open {} for the console log", path.display())
            }
            Step::WriteLxcConfig { path } => {
                write!(f, "write the liblxc configuration to {}", path.display())
            }
            Step::Start { name, lxcpath } => {
                write!(f, "start container {name} in {}", lxcpath.display())
            }
        }
    }
}
