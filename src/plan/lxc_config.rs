//! The liblxc configuration of a launch, as `(key, value)` pairs
//! (lxc.container.conf(5)).

use std::path::Path;

use crate::arch::{Arch, Emulation};

use super::{LaunchPlan, Mode, Net, NAT_BRIDGE};

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

/// `--unprivileged`, foreign image: a binfmt_misc of the container's own
/// and the emulator's entry in it, both made by liblxc in the container's
/// user and mount namespaces before pivot_root.
///
/// The mount entry runs as the container's root, so the binfmt_misc is a
/// new instance of the container's user namespace (Linux 6.7+: one per user
/// namespace, and one that has its own never looks at its parent's). The
/// mount hook writes the entry to its `register` while the host's files are
/// still in view (liblxc's lxc_setup: mount entries, then mount hooks, then
/// pivot_root): with the `F` flag the kernel opens the emulator right then,
/// so it need not exist inside the image. liblxc runs a hook as
/// `sh -c "exec HOOK NAME lxc mount"`; here HOOK starts with a redirection
/// alone, so `exec` points the shell's stdout at `register` and runs
/// nothing, then the shell's own printf writes the line there (no program
/// is looked up or run: a PATH with directories the container's root
/// cannot search costs nothing), and the `#` makes liblxc's words a
/// comment. The line goes through as printf's format: every `\` and `%`
/// doubled, `'` closed and reopened.
/// The mount on the container's /proc/sys/fs/binfmt_misc keeps the instance,
/// entry and open emulator alive as long as the container.
fn private_binfmt_items(line: &str) -> [(&'static str, String); 2] {
    let format = line
        .replace('\\', "\\\\")
        .replace('%', "%%")
        .replace('\'', "'\\''");
    [
        (
            "lxc.mount.entry",
            "binfmt_misc proc/sys/fs/binfmt_misc binfmt_misc nodev,noexec,nosuid 0 0".to_owned(),
        ),
        (
            "lxc.hook.mount",
            format!(">\"$LXC_ROOTFS_MOUNT/proc/sys/fs/binfmt_misc/register\"; printf '{format}' #"),
        ),
    ]
}

/// How the console reaches the container.
#[derive(Debug, Clone, Copy)]
pub enum ConsolePath<'a> {
    /// A pty slave allocated at start (boot mode).
    Pty(&'a Path),
    /// Not known yet (dry run).
    Planned,
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
            (
                "lxc.rootfs.mount",
                layout.rootfs_mount.display().to_string(),
            ),
            ("lxc.mount.auto", "proc:mixed sys:mixed cgroup:mixed".into()),
            ("lxc.autodev", "1".into()),
            // No ptys of liblxc's own on /dev/ttyN: nobody would read them
            // (lxc-console talks to the monitor's socket, which rootrun
            // does not use). The console is the only terminal, and is
            // bound onto the ttys the image's gettys want (`console_ttys`).
            ("lxc.tty.max", "0".into()),
            ("lxc.pty.max", "64".into()),
        ];
        if let Some(map) = &self.idmap {
            items.extend(map.lxc_items().map(|item| ("lxc.idmap", item)));
        }
        if let Emulation::Private { line, .. } = &self.emulation {
            items.extend(private_binfmt_items(line));
        }
        items.extend(self.network_items());
        items.extend([
            (
                "lxc.cap.drop",
                "mac_admin mac_override sys_module sys_rawio sys_time".into(),
            ),
            ("lxc.seccomp.profile", layout.seccomp.display().to_string()),
            ("lxc.signal.halt", self.halt_signal.into()),
            ("lxc.log.file", layout.log.display().to_string()),
            ("lxc.log.level", self.debug.log_level.into()),
        ]);
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
        items.extend(self.security_module_items());
        if let Some(personality) = self.personality() {
            items.push(("lxc.arch", personality.into()));
        }
        for (key, value) in self.env.iter().chain(&self.debug.emulator_env) {
            items.push(("lxc.environment", format!("{key}={value}")));
        }
        items.extend(self.debug.lxc_items(layout));
        if let Some(dir) = &self.workdir {
            items.push(("lxc.init.cwd", dir.clone()));
        }
        if let Some((uid, gid)) = self.user {
            items.push(("lxc.init.uid", uid.to_string()));
            items.push(("lxc.init.gid", gid.to_string()));
        }
        match &self.mode {
            Mode::Boot { init } => {
                items.push(("lxc.init.cmd", init.clone()));
                let path = match console {
                    ConsolePath::Pty(path) => path.display().to_string(),
                    ConsolePath::Planned => "<pty allocated at start>".into(),
                };
                // The same pty, bound onto /dev/tty1 (or the image's serial
                // console name), so the image's getty opens rootrun's
                // console. Among the rootrun-created mount points this one
                // is left to liblxc (create=file, against the rule in
                // DESIGN.md) because no other moment exists: the target is
                // in the tmpfs that lxc.autodev mounts on the container's
                // /dev at start, after rootrun's last step and before
                // these entries (liblxc's lxc_setup: mount_autodev, then
                // setup_mount_entries). That tmpfs is liblxc's and empty,
                // so the file is made there following nothing of the
                // image's; an image whose /dev is itself a symlink gets no
                // entry (`plan`). The name is one plain component
                // (`image::gettys`).
                for tty in &self.console_ttys {
                    items.push((
                        "lxc.mount.entry",
                        format!("{path} dev/{tty} none bind,create=file 0 0"),
                    ));
                }
                items.push(("lxc.console.path", path));
            }
            // The command keeps rootrun's own stdin/stdout/stderr.
            Mode::Command { .. } => items.push(("lxc.console.path", "none".into())),
        }
        items
    }

    /// `--net`: the network keys.
    fn network_items(&self) -> Vec<(&'static str, String)> {
        // liblxc brings the namespace's loopback up (127.0.0.1, ::1) for an
        // `empty` network with the flag up; without it `lo` stays down and
        // local services cannot talk. A veth network alone leaves lo down,
        // so the veth modes get this one too, as their second network.
        let loopback = |n: usize| {
            let (type_key, flags_key) = match n {
                0 => ("lxc.net.0.type", "lxc.net.0.flags"),
                _ => ("lxc.net.1.type", "lxc.net.1.flags"),
            };
            [(type_key, "empty".to_owned()), (flags_key, "up".to_owned())]
        };
        let link = match &self.net {
            Net::None => return loopback(0).to_vec(),
            // No network namespace of its own: the host's.
            Net::Host => return vec![("lxc.net.0.type", "none".into())],
            Net::Bridge(bridge) => bridge.clone(),
            Net::Nat => NAT_BRIDGE.to_owned(),
        };
        let mut items = vec![
            ("lxc.net.0.type", "veth".to_owned()),
            ("lxc.net.0.link", link),
            ("lxc.net.0.flags", "up".into()),
            ("lxc.net.0.name", "eth0".into()),
        ];
        // The host end is named after the container (rootrun-PID fits
        // IFNAMSIZ), so `ip link` on the host says whose it is.
        if self.name.len() <= 15 {
            items.push(("lxc.net.0.veth.pair", self.name.clone()));
        }
        items.extend(loopback(1));
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

    /// AppArmor: liblxc's `generated` profile (built from this configuration
    /// and loaded with apparmor_parser) keeps a privileged guest off
    /// /proc/sysrq-trigger, most of /sys and most mounts; without
    /// apparmor_parser liblxc would refuse to start, so the container runs
    /// unconfined (rootrun warns). Hosts without AppArmor get no key.
    /// SELinux: no `lxc.selinux.context`, so the container keeps rootrun's
    /// own context: a confining type (container_t) would need the image's
    /// files labelled for it, and rootrun never writes the image.
    fn security_module_items(&self) -> Vec<(&'static str, String)> {
        match (self.lsm.apparmor, self.lsm.apparmor_parser) {
            (false, _) => Vec::new(),
            (true, true) => vec![
                ("lxc.apparmor.profile", "generated".into()),
                ("lxc.apparmor.allow_nesting", "0".into()),
            ],
            (true, false) => vec![("lxc.apparmor.profile", "unconfined".into())],
        }
    }

    /// The liblxc config file text.
    pub fn lxc_config_text(&self, console: ConsolePath<'_>) -> String {
        let own = self.lxc_config(console);
        let extra = self.lxc_extra.iter().map(|(k, v)| (k.as_str(), v));
        own.iter()
            .map(|(k, v)| (*k, v))
            .chain(extra)
            .map(|(k, v)| format!("{k} = {v}\n"))
            .collect()
    }

    /// `--lxc` items that would take a key rootrun sets itself (and needs:
    /// the root, the console, the log, init, the halt signal, ...); keys
    /// that hold a list (device rules, dropped capabilities, environment,
    /// mount entries) take more items.
    pub fn refused_lxc_items(&self) -> Vec<String> {
        const LISTS: [&str; 7] = [
            "lxc.cgroup.devices.allow",
            "lxc.cgroup.devices.deny",
            "lxc.cgroup2.devices.allow",
            "lxc.cgroup2.devices.deny",
            "lxc.cap.drop",
            "lxc.environment",
            "lxc.mount.entry",
        ];
        if self.lxc_extra.is_empty() {
            return Vec::new();
        }
        let own: Vec<&str> = self
            .lxc_config(ConsolePath::Planned)
            .iter()
            .map(|(k, _)| *k)
            .collect();
        self.lxc_extra
            .iter()
            .map(|(key, _)| key)
            .filter(|key| {
                let taken = own.contains(&key.as_str())
                    || ["lxc.rootfs.", "lxc.console.", "lxc.log.", "lxc.init."]
                        .iter()
                        .any(|prefix| key.starts_with(prefix));
                taken && !LISTS.contains(&key.as_str())
            })
            .cloned()
            .collect()
    }
}
