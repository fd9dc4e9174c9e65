//! Unit tests of the launch plan: no privileges, no kernel.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::*;
use crate::config::{RunConfig, Verbosity};
use crate::sys::lsm::Lsm;

fn facts(flavor: InitFlavor) -> ImageFacts {
    ImageFacts {
        init: "/sbin/init".into(),
        init_resolved: None,
        init_flavor: flavor,
        init_services: None,
        systemd_version: None,
        arch: Some(Arch::Aarch64),
        arch_overridden: false,
        evidence: None,
        probes: Vec::new(),
        metadata: None,
        metadata_mismatch: None,
        metadata_problem: None,
        arch_ignored: None,
        squashfs: None,
        getty_ttys: Vec::new(),
        askconsole: false,
        dev_link: None,
        head: Vec::new(),
    }
}

/// QEMU 7.2's mapping (host real-time signal N reaches the guest as N-2)
/// when emulated.
fn host(emulation: Emulation) -> HostPlan {
    let rt_shift = if emulation == Emulation::Native { 0 } else { 2 };
    HostPlan {
        emulation,
        binfmt_mounted: true,
        registration: None,
        env: Vec::new(),
        rt_shift,
        qemu: None,
        lsm: Lsm::default(),
        user: None,
        cmdline: String::new(),
        idmap: None,
    }
}

fn plan(opts: &RunConfig, facts: &ImageFacts, pid: u32) -> LaunchPlan {
    super::plan(opts, facts, host(Emulation::Native), pid)
}

fn options(command: &[&str]) -> RunConfig {
    RunConfig {
        image: PathBuf::from("/srv/images/My_Router.v2.img"),
        lower: Lower::Squashfs,
        command: command.iter().map(|s| s.to_string()).collect(),
        hostname: None,
        metadata: None,
        name: None,
        detach: false,
        env: Vec::new(),
        user: None,
        workdir: None,
        binds: Vec::new(),
        upper_dir: None,
        tmpfs_size: None,
        expect: None,
        timeout: None,
        console_log: None,
        stop_on_eof: false,
        lxc_extra: Vec::new(),
        net: crate::config::Net::None,
        init: "/sbin/init".into(),
        escape: 1,
        stop_timeout: None,
        arch: None,
        halt_signal: None,
        register_binfmt: false,
        privilege: Default::default(),
        dry_run: None,
        verbosity: Verbosity::Normal,
        debug: Default::default(),
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
    // Not liblxc's default, which only liblxc-common provides.
    assert_eq!(
        value(&items, "lxc.rootfs.mount"),
        ["/run/rootrun/rootfs-mount"]
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
    let mut facts = facts(InitFlavor::Other);
    facts.getty_ttys = vec!["ttyS0".into(), "hvc0".into()];
    let plan = plan(&options(&[]), &facts, 1);
    let items = plan.lxc_config(ConsolePath::Pty(Path::new("/dev/pts/3")));
    for (key, value) in &items {
        // The one exception: the console bound onto a tty in autodev's
        // fresh tmpfs (see `lxc_config`).
        if *key == "lxc.mount.entry" {
            let tty = value
                .strip_prefix("/dev/pts/3 dev/")
                .and_then(|rest| rest.strip_suffix(" none bind,create=file 0 0"));
            assert!(
                tty.is_some_and(|tty| plan.console_ttys.iter().any(|t| t == tty)),
                "{value}"
            );
            continue;
        }
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
    let p = super::plan(
        &options(&[]),
        &facts(InitFlavor::Systemd),
        host(emulated),
        1,
    );
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
    let text = super::plan(&options(&[]), &facts(InitFlavor::BusyBox), host(bind), 1).to_string();
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
    let cut_at_a_dash = format!("{}_b.img", "a".repeat(62));
    assert_eq!(default_hostname(Path::new(&cut_at_a_dash)), "a".repeat(62));
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

fn step_names(plan: &LaunchPlan) -> Vec<String> {
    plan.steps
        .iter()
        .map(|step| {
            serde_json::to_value(step).map_or_else(
                |e| e.to_string(),
                |v| v["step"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

#[test]
fn a_native_squashfs_boot_has_these_steps_in_this_order() {
    let plan = plan(&options(&[]), &facts(InitFlavor::BusyBox), 7);
    assert_eq!(
        step_names(&plan),
        [
            "sweep_stale_cgroups",
            "sweep_stale_nat",
            "private_mount_namespace",
            "tmpfs",
            "tmpfs",
            "make_dirs",
            "attach_loop",
            "mount_squashfs",
            "overlay",
            "check_program",
            "write_seccomp_policy",
            "allocate_console",
            "write_lxc_config",
            "start",
        ]
    );
    assert_eq!(
        plan.steps.last(),
        Some(&Step::Start {
            name: "rootrun-7".into(),
            lxcpath: "/run/rootrun/lxc".into()
        })
    );
}

#[test]
fn network_modes_plan_their_steps_before_the_namespace_and_their_liblxc_keys() {
    let with = |net: Net| {
        let mut opts = options(&["/bin/true"]);
        opts.net = net;
        plan(&opts, &facts(InitFlavor::BusyBox), 4242)
    };
    // none: loopback only, as before.
    let none = with(Net::None);
    let config = none.lxc_config(ConsolePath::Planned);
    assert_eq!(value(&config, "lxc.net.0.type"), ["empty"]);
    assert_eq!(value(&config, "lxc.net.0.flags"), ["up"]);
    assert!(value(&config, "lxc.net.1.type").is_empty());
    // host: no network namespace of its own.
    let host = with(Net::Host);
    let config = host.lxc_config(ConsolePath::Planned);
    assert_eq!(value(&config, "lxc.net.0.type"), ["none"]);
    assert!(value(&config, "lxc.net.0.flags").is_empty());
    assert_eq!(step_names(&host), step_names(&none));
    // bridge: checked before the namespace (before anything is mounted);
    // a veth eth0 into it, named on the host after the container, and lo up.
    let bridge = with(Net::Bridge("br7".into()));
    let names = step_names(&bridge);
    let at = |name: &str| names.iter().position(|n| n == name).unwrap();
    assert!(
        at("check_bridge") < at("private_mount_namespace"),
        "{names:?}"
    );
    let config = bridge.lxc_config(ConsolePath::Planned);
    assert_eq!(value(&config, "lxc.net.0.type"), ["veth"]);
    assert_eq!(value(&config, "lxc.net.0.link"), ["br7"]);
    assert_eq!(value(&config, "lxc.net.0.name"), ["eth0"]);
    assert_eq!(value(&config, "lxc.net.0.veth.pair"), ["rootrun-4242"]);
    assert_eq!(value(&config, "lxc.net.1.type"), ["empty"]);
    assert_eq!(value(&config, "lxc.net.1.flags"), ["up"]);
    // nat: joined in the host's mount namespace; the veth on rootrun0.
    let nat = with(Net::Nat);
    let names = step_names(&nat);
    let at = |name: &str| names.iter().position(|n| n == name).unwrap();
    assert!(at("join_nat") < at("private_mount_namespace"), "{names:?}");
    assert!(nat.steps.contains(&Step::JoinNat {
        bridge: "rootrun0".into(),
        table: "rootrun".into(),
        state: "/run/rootrun/.net".into(),
        candidates: NAT_SUBNETS.iter().map(|s| s.to_string()).collect(),
    }));
    let config = nat.lxc_config(ConsolePath::Planned);
    assert_eq!(value(&config, "lxc.net.0.link"), ["rootrun0"]);
    let text = nat.to_string();
    assert!(text.contains("nftables table ip rootrun"), "{text}");
    // The network keys are rootrun's: --lxc cannot take them, but may add
    // what rootrun does not set (a static address).
    let mut opts = options(&["/bin/true"]);
    opts.net = Net::Nat;
    opts.lxc_extra = vec![
        ("lxc.net.0.link".into(), "br0".into()),
        ("lxc.net.0.ipv4.address".into(), "10.0.0.2/24".into()),
    ];
    let refused = plan(&opts, &facts(InitFlavor::BusyBox), 1).refused_lxc_items();
    assert_eq!(refused, ["lxc.net.0.link"]);
}

#[test]
fn foreign_images_mount_binfmt_register_and_bind_the_interpreter_as_planned() {
    let bind = Emulation::BindMount {
        entry: "rootrun-qemu-aarch64".into(),
        interpreter: "/usr/bin/qemu-aarch64-static".into(),
        host_file: "/usr/bin/qemu-aarch64-static".into(),
    };
    let host = HostPlan {
        emulation: bind,
        binfmt_mounted: false,
        rt_shift: 2,
        qemu: None,
        lsm: Lsm::default(),
        user: None,
        cmdline: String::new(),
        idmap: None,
        env: Vec::new(),
        registration: Some(Registration {
            name: "rootrun-qemu-aarch64".into(),
            interpreter: "/usr/bin/qemu-aarch64-static".into(),
            line: ":rootrun-qemu-aarch64:M::x::/usr/bin/qemu-aarch64-static:F".into(),
        }),
    };
    let plan = super::plan(
        &options(&["/bin/true"]),
        &facts(InitFlavor::BusyBox),
        host,
        1,
    );
    let names = step_names(&plan);
    let at = |name: &str| names.iter().position(|n| n == name);
    assert!(at("mount_binfmt_misc") < at("register_binfmt"), "{names:?}");
    assert!(at("register_binfmt") < at("check_handler"), "{names:?}");
    assert!(at("overlay") < at("bind_interpreter"), "{names:?}");
    assert_eq!(at("allocate_console"), None, "command mode: {names:?}");
    assert!(plan.steps.contains(&Step::RegisterBinfmt {
        name: "rootrun-qemu-aarch64".into(),
        interpreter: "/usr/bin/qemu-aarch64-static".into(),
        line: ":rootrun-qemu-aarch64:M::x::/usr/bin/qemu-aarch64-static:F".into(),
        stays: false,
    }));
    let text = plan.to_string();
    assert!(
        text.contains("register binfmt_misc handler rootrun-qemu-aarch64"),
        "{text}"
    );
    assert!(text.contains("it goes with rootrun's mount"), "{text}");
}

#[test]
fn rootfs_and_unpack_lowers_replace_the_loop_device() {
    let mut config = options(&[]);
    config.lower = Lower::Directory;
    let names = step_names(&plan(&config, &facts(InitFlavor::BusyBox), 1));
    assert!(names.contains(&"bind_read_only".to_owned()), "{names:?}");
    assert!(!names.contains(&"attach_loop".to_owned()), "{names:?}");
    config.lower = Lower::Unpacked;
    let names = step_names(&plan(&config, &facts(InitFlavor::BusyBox), 1));
    assert!(names.contains(&"unpack".to_owned()), "{names:?}");
    assert!(!names.contains(&"mount_squashfs".to_owned()), "{names:?}");
}

#[test]
fn ext4_erofs_and_archive_lowers_attach_the_mount_made_at_open() {
    let mut config = options(&[]);
    for lower in [Lower::Ext4, Lower::Erofs, Lower::Archive] {
        config.lower = lower;
        let plan = plan(&config, &facts(InitFlavor::BusyBox), 1);
        let names = step_names(&plan);
        let attach = names.iter().position(|n| n == "attach_lower");
        let overlay = names.iter().position(|n| n == "overlay");
        assert!(attach.is_some() && attach < overlay, "{lower:?}: {names:?}");
        assert!(!names.contains(&"attach_loop".to_owned()), "{names:?}");
        assert_eq!(plan.lower.reads_image_file(), lower != Lower::Archive);
    }
}

#[test]
fn dry_run_json_has_steps_and_the_lxc_config() {
    let plan = plan(&options(&[]), &facts(InitFlavor::BusyBox), 1);
    let json = serde_json::to_value(plan.json()).unwrap_or_default();
    assert_eq!(json["name"], "rootrun-1");
    assert_eq!(json["mode"]["boot"]["init"], "/sbin/init");
    assert_eq!(json["steps"][0]["step"], "sweep_stale_cgroups");
    assert_eq!(json["stop_timeout"], 10);
    assert!(json["lxc_config"]
        .as_array()
        .is_some_and(|items| items.iter().any(|i| i[0] == "lxc.init.cmd")));
}

#[test]
fn the_systemd_poweroff_signal_follows_the_emulators_mapping_and_the_override() {
    let emulated = Emulation::Preloaded {
        entry: "qemu-aarch64".into(),
        interpreter: "/usr/bin/qemu-aarch64".into(),
    };
    let with_shift = |rt_shift| HostPlan {
        rt_shift,
        ..host(emulated.clone())
    };
    let systemd = facts(InitFlavor::Systemd);
    // QEMU 8.2 to 9.2, and 10.0 and later.
    let p = super::plan(&options(&[]), &systemd, with_shift(3), 1);
    assert_eq!(p.halt_signal, "SIGRTMIN+7");
    let p = super::plan(&options(&[]), &systemd, with_shift(4), 1);
    assert_eq!(p.halt_signal, "SIGRTMIN+8");
    assert_eq!(
        p.halt,
        HaltMethod::Signal("SIGRTMIN+8"),
        "what a stop sends"
    );
    assert!(p.to_string().contains("; halt with SIGRTMIN+8\n"), "{p}");
    // Signals that are not real-time are never shifted.
    let p = super::plan(&options(&[]), &facts(InitFlavor::BusyBox), with_shift(4), 1);
    assert_eq!(p.halt_signal, "SIGUSR2");
    let mut config = options(&[]);
    config.halt_signal = Some("SIGRTMIN+5");
    let p = super::plan(&config, &systemd, with_shift(4), 1);
    assert_eq!(p.halt_signal, "SIGRTMIN+5", "--halt-signal wins");
}

#[test]
fn halt_signals_parse_by_name_and_number() {
    assert_eq!(parse_signal("pwr"), Ok("SIGPWR"));
    assert_eq!(parse_signal("SIGUSR2"), Ok("SIGUSR2"));
    assert_eq!(parse_signal("sigrtmin+4"), Ok("SIGRTMIN+4"));
    assert_eq!(parse_signal("30"), Ok("SIGPWR"));
    assert_eq!(parse_signal("38"), Ok("SIGRTMIN+4"));
    assert!(parse_signal("SIGRTMIN+31").is_err());
    assert!(parse_signal("nope").is_err());
    assert_eq!(rt_signal_name(6), Some("SIGRTMIN+6"));
}

#[test]
fn apparmor_and_selinux_hosts_get_the_keys_chosen_for_them() {
    let with = |lsm: Lsm| {
        let plan = super::plan(
            &options(&[]),
            &facts(InitFlavor::BusyBox),
            HostPlan {
                lsm,
                ..host(Emulation::Native)
            },
            1,
        );
        plan.lxc_config(ConsolePath::Planned)
    };
    let none = with(Lsm::default());
    assert!(value(&none, "lxc.apparmor.profile").is_empty());
    let apparmor = Lsm {
        apparmor: true,
        apparmor_parser: true,
        selinux: false,
    };
    let items = with(apparmor);
    assert_eq!(value(&items, "lxc.apparmor.profile"), ["generated"]);
    assert_eq!(value(&items, "lxc.apparmor.allow_nesting"), ["0"]);
    let items = with(Lsm {
        apparmor_parser: false,
        ..apparmor
    });
    assert_eq!(value(&items, "lxc.apparmor.profile"), ["unconfined"]);
    let selinux = with(Lsm {
        selinux: true,
        ..Lsm::default()
    });
    assert!(
        !selinux.iter().any(|(k, _)| k.starts_with("lxc.selinux")),
        "{selinux:?}"
    );
    assert_eq!(selinux, none);
}

#[test]
fn sysvinit_halts_by_runlevel_request_unless_a_signal_is_named() {
    let p = plan(&options(&[]), &facts(InitFlavor::SysVinit), 1);
    assert_eq!(p.halt, HaltMethod::Runlevel0);
    assert_eq!(p.halt_signal, "SIGPWR", "lxc.signal.halt");
    assert!(
        p.to_string().contains(
            "# boot /sbin/init; halt by runlevel 0 request on /run/initctl (written again \
             until init opens it)"
        ),
        "{p}"
    );
    let mut config = options(&[]);
    config.halt_signal = Some("SIGTERM");
    let p = plan(&config, &facts(InitFlavor::SysVinit), 1);
    assert_eq!(p.halt, HaltMethod::Signal("SIGTERM"), "--halt-signal wins");
    let p = plan(&options(&["/bin/true"]), &facts(InitFlavor::SysVinit), 1);
    assert_eq!(
        p.halt,
        HaltMethod::Signal("SIGTERM"),
        "a command gets SIGTERM"
    );
    let p = plan(&options(&[]), &facts(InitFlavor::BusyBox), 1);
    assert!(p.to_string().contains("; halt with SIGUSR2\n"), "{p}");
}

#[test]
fn the_console_pty_is_bound_onto_the_ttys_the_gettys_want() {
    let entries = |plan: &LaunchPlan| -> Vec<String> {
        plan.lxc_config(ConsolePath::Pty(Path::new("/dev/pts/7")))
            .into_iter()
            .filter(|(key, _)| *key == "lxc.mount.entry")
            .map(|(_, value)| value)
            .collect()
    };
    let mut debian = facts(InitFlavor::SysVinit);
    debian.getty_ttys = vec!["tty1".into(), "tty2".into()];
    let p = plan(&options(&[]), &debian, 1);
    assert_eq!(p.console_ttys, ["tty1"]);
    assert_eq!(
        entries(&p),
        ["/dev/pts/7 dev/tty1 none bind,create=file 0 0"]
    );

    let mut device = facts(InitFlavor::BusyBox);
    device.getty_ttys = vec!["ttyAMA0".into()];
    let p = plan(&options(&[]), &device, 1);
    assert_eq!(
        entries(&p),
        ["/dev/pts/7 dev/ttyAMA0 none bind,create=file 0 0"]
    );

    // /dev a symlink in the image: nothing is created through it.
    device.dev_link = Some("/tmp".into());
    assert!(entries(&plan(&options(&[]), &device, 1)).is_empty());
    // A command has no console to give.
    assert!(entries(&plan(&options(&["/bin/true"]), &debian, 1)).is_empty());
}

#[test]
fn environment_and_workdir_become_liblxc_keys() {
    let mut config = options(&["/bin/id"]);
    config.workdir = Some("/tmp".into());
    let host = HostPlan {
        env: vec![
            ("FOO".into(), "a b".into()),
            ("TERM".into(), "xterm".into()),
        ],
        ..host(Emulation::Native)
    };
    let plan = super::plan(&config, &facts(InitFlavor::BusyBox), host, 1);
    let items = plan.lxc_config(ConsolePath::Planned);
    assert_eq!(value(&items, "lxc.environment"), ["FOO=a b", "TERM=xterm"]);
    assert_eq!(value(&items, "lxc.init.cwd"), ["/tmp"]);
}

#[test]
fn a_persisted_or_kept_upper_layer_lives_in_the_given_directory() {
    let mut config = options(&[]);
    config.upper_dir = Some(crate::config::UpperDir::Persist("/var/keep".into()));
    let plan = plan(&config, &facts(InitFlavor::BusyBox), 1);
    assert_eq!(plan.layout.upper, Path::new("/var/keep/upper"));
    assert_eq!(plan.layout.work, Path::new("/var/keep/work"));
    let overlay = plan
        .steps
        .iter()
        .find(|s| matches!(s, Step::Overlay { .. }))
        .cloned();
    assert_eq!(
        overlay,
        Some(Step::Overlay {
            lower: "/run/rootrun/lower".into(),
            upper: "/var/keep/upper".into(),
            work: "/var/keep/work".into(),
            target: "/run/rootrun/rootfs".into(),
        })
    );
}

#[test]
fn raw_lxc_items_follow_rootruns_own_and_may_not_take_its_keys() {
    let mut config = options(&[]);
    config.lxc_extra = vec![
        ("lxc.cgroup2.devices.allow".into(), "c 10:200 rwm".into()),
        ("lxc.prlimit.nofile".into(), "1024".into()),
        ("lxc.rootfs.path".into(), "dir:/".into()),
        ("lxc.signal.halt".into(), "SIGKILL".into()),
    ];
    let plan = plan(&config, &facts(InitFlavor::BusyBox), 1);
    let text = plan.lxc_config_text(ConsolePath::Planned);
    assert!(
        text.ends_with(
            "lxc.prlimit.nofile = 1024\nlxc.rootfs.path = dir:/\nlxc.signal.halt = SIGKILL\n"
        ),
        "{text}"
    );
    assert_eq!(
        plan.refused_lxc_items(),
        ["lxc.rootfs.path", "lxc.signal.halt"]
    );
}

#[test]
fn an_emulated_systemd_257_gets_its_drop_ins_written_before_the_start() {
    let emulated = Emulation::Preloaded {
        entry: "qemu-aarch64".into(),
        interpreter: "/usr/bin/qemu-aarch64".into(),
    };
    let mut systemd = facts(InitFlavor::Systemd);
    systemd.systemd_version = Some(257);
    let writes = |p: &LaunchPlan| {
        p.steps
            .iter()
            .position(|s| matches!(s, Step::WriteDropIns { .. }))
    };
    let p = super::plan(&options(&[]), &systemd, host(emulated.clone()), 1);
    let at = writes(&p).expect("a drop-in step");
    let overlay = p
        .steps
        .iter()
        .position(|s| matches!(s, Step::Overlay { .. }))
        .expect("an overlay step");
    assert!(overlay < at, "the drop-ins go through the overlay");
    assert!(p.systemd.as_ref().is_some_and(|s| s.drop_ins.len() == 18));
    assert!(p
        .to_string()
        .contains("# systemd 257 under emulation: credentials of 18 units turned off"));
    // Natively, in command mode, or for a systemd before 254: nothing.
    let native = super::plan(&options(&[]), &systemd, host(Emulation::Native), 1);
    assert_eq!((writes(&native), native.systemd), (None, None));
    let command = super::plan(&options(&["true"]), &systemd, host(emulated.clone()), 1);
    assert_eq!((writes(&command), command.systemd), (None, None));
    systemd.systemd_version = Some(252);
    let old = super::plan(&options(&[]), &systemd, host(emulated), 1);
    assert_eq!(writes(&old), None);
    assert!(old.systemd.is_some_and(|s| s.drop_ins.is_empty()));
}

#[test]
fn the_qemu_7_2_limitation_shows_in_the_dry_run() {
    let mut systemd = facts(InitFlavor::Systemd);
    systemd.systemd_version = Some(257);
    let host = HostPlan {
        qemu: crate::arch::parse_version("qemu-aarch64 version 7.2.22"),
        ..host(Emulation::Preloaded {
            entry: "qemu-aarch64".into(),
            interpreter: "/usr/libexec/qemu-binfmt/aarch64-binfmt-P".into(),
        })
    };
    let text = super::plan(&options(&[]), &systemd, host, 1).to_string();
    assert!(
        text.contains("# warning: systemd 257 cannot start any unit under QEMU 7.2.22"),
        "{text}"
    );
}

#[test]
fn procds_askconsole_gets_the_console_on_the_kernel_command_lines_terminal() {
    let mut openwrt = facts(InitFlavor::Procd);
    openwrt.askconsole = true;
    let with_cmdline = |cmdline: &str| HostPlan {
        cmdline: cmdline.into(),
        ..host(Emulation::Native)
    };
    let p = super::plan(
        &options(&[]),
        &openwrt,
        with_cmdline("quiet console=ttyAMA0,115200"),
        1,
    );
    assert_eq!(p.console_ttys, ["ttyAMA0"]);
    assert_eq!(p.halt, HaltMethod::Signal("SIGUSR2"));
    // Two consoles: procd takes /dev/console; tty1 as for any image.
    let p = super::plan(
        &options(&[]),
        &openwrt,
        with_cmdline("console=tty0 console=ttyS0"),
        1,
    );
    assert_eq!(p.console_ttys, ["tty1"]);
    // Without askconsole the command line is not looked at.
    openwrt.askconsole = false;
    let p = super::plan(&options(&[]), &openwrt, with_cmdline("console=ttyS0"), 1);
    assert_eq!(p.console_ttys, ["tty1"]);
}

#[test]
fn the_stop_timeout_is_longer_under_emulation_unless_given() {
    let emulated = Emulation::Preloaded {
        entry: "qemu-aarch64".into(),
        interpreter: "/usr/bin/qemu-aarch64".into(),
    };
    let openrc = facts(InitFlavor::SysVinit);
    let p = super::plan(&options(&[]), &openrc, host(Emulation::Native), 1);
    assert_eq!(p.stop_timeout, Duration::from_secs(10));
    let p = super::plan(&options(&[]), &openrc, host(emulated.clone()), 1);
    assert_eq!(p.stop_timeout, Duration::from_secs(60));
    let mut config = options(&[]);
    config.stop_timeout = Some(Duration::from_secs(5));
    let p = super::plan(&config, &openrc, host(emulated), 1);
    assert_eq!(
        p.stop_timeout,
        Duration::from_secs(5),
        "--stop-timeout wins"
    );
}

#[test]
fn kept_logs_hold_liblxcs_log_the_console_and_the_emulators_directory() {
    let mut opts = options(&[]);
    opts.debug = crate::debug::DebugConfig {
        log_level: crate::debug::LogLevel::Debug,
        keep_logs: Some(PathBuf::from("/var/tmp/fw-logs")),
        strace: true,
        ..Default::default()
    };
    let plan = plan(&opts, &facts(InitFlavor::BusyBox), 42);
    let items = plan.lxc_config(ConsolePath::Planned);
    assert_eq!(value(&items, "lxc.log.file"), ["/var/tmp/fw-logs/lxc.log"]);
    assert_eq!(value(&items, "lxc.log.level"), ["DEBUG"]);
    assert!(value(&items, "lxc.mount.entry").contains(
        &"/var/tmp/fw-logs/emulator dev/.rootrun-debug none bind,nosuid,nodev,noexec,create=dir 0 0"
    ));
    assert!(value(&items, "lxc.environment").contains(&"QEMU_STRACE=1"));
    assert_eq!(
        plan.console_log.as_deref(),
        Some(Path::new("/var/tmp/fw-logs/console.log"))
    );
    let made: Vec<&Path> = plan
        .steps
        .iter()
        .flat_map(|step| match step {
            Step::MakeDirs { paths, .. } => paths.iter().map(PathBuf::as_path).collect(),
            _ => Vec::new(),
        })
        .collect();
    assert!(
        made.contains(&Path::new("/var/tmp/fw-logs/emulator")),
        "{made:?}"
    );
}

#[test]
fn tmpfs_size_limits_the_state_tmpfs_only() {
    let mut config = options(&[]);
    config.tmpfs_size = Some("8388608".into());
    let plan = plan(&config, &facts(InitFlavor::BusyBox), 1);
    let sizes: Vec<(String, Option<String>)> = plan
        .steps
        .iter()
        .filter_map(|s| match s {
            Step::Tmpfs { target, size, .. } => Some((target.display().to_string(), size.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(
        sizes,
        [
            ("/run/lxc".to_owned(), None),
            ("/run/rootrun".to_owned(), Some("8388608".to_owned()))
        ]
    );
    let shown: Vec<String> = plan.steps.iter().map(|s| s.to_string()).collect();
    assert!(
        shown.iter().any(
            |s| s.starts_with("mount tmpfs on /run/rootrun (") && s.ends_with(", size=8388608")
        ),
        "{shown:?}"
    );
}

#[test]
fn unprivileged_foreign_plans_map_ids_and_a_private_binfmt_misc_not_the_hosts() {
    let map = crate::sys::userns::IdMap {
        uid_first: 1_000_000,
        gid_first: 1_000_000,
        count: 65536,
        from_subid: false,
    };
    let host = HostPlan {
        emulation: Emulation::Private {
            interpreter: "/usr/bin/qemu-aarch64-static".into(),
            line: r":qemu-aarch64:M::\x7f:\xff:/usr/bin/qemu-aarch64-static:F".into(),
        },
        binfmt_mounted: false,
        idmap: Some(map),
        ..host(Emulation::Native)
    };
    let plan = super::plan(&options(&[]), &facts(InitFlavor::BusyBox), host, 3);
    // Nothing of the host's binfmt_misc: no mount, no registration, no
    // check, no interpreter bind mount.
    assert!(!plan.steps.iter().any(|s| matches!(
        s,
        Step::MountBinfmtMisc { .. }
            | Step::RegisterBinfmt { .. }
            | Step::CheckHandler { .. }
            | Step::BindInterpreter { .. }
    )));
    let at = |wanted: fn(&Step) -> bool| plan.steps.iter().position(wanted).unwrap();
    let idmap = at(|s| matches!(s, Step::Idmap { .. }));
    let overlay = at(|s| matches!(s, Step::Overlay { .. }));
    assert!(idmap < overlay, "{:?}", plan.steps);
    // The container's root must reach liblxc's directories on the tmpfs.
    assert!(plan.steps.iter().any(|s| matches!(
        s,
        Step::Tmpfs { target, mode: 0o711, .. } if target == Path::new(STATE_DIR)
    )));
    let items = plan.lxc_config(ConsolePath::Planned);
    assert_eq!(
        value(&items, "lxc.idmap"),
        ["u 0 1000000 65536", "g 0 1000000 65536"]
    );
    assert_eq!(
        value(&items, "lxc.hook.mount"),
        [
            r#">"$LXC_ROOTFS_MOUNT/proc/sys/fs/binfmt_misc/register"; printf ':qemu-aarch64:M::\\x7f:\\xff:/usr/bin/qemu-aarch64-static:F' #"#
        ]
    );
    assert!(value(&items, "lxc.mount.entry")
        .contains(&"binfmt_misc proc/sys/fs/binfmt_misc binfmt_misc nodev,noexec,nosuid 0 0"));
    // Privileged plans have neither.
    let privileged = plan_for(&options(&[]));
    let items = privileged.lxc_config(ConsolePath::Planned);
    assert!(value(&items, "lxc.idmap").is_empty() && value(&items, "lxc.hook.mount").is_empty());
}

fn plan_for(opts: &RunConfig) -> LaunchPlan {
    plan(opts, &facts(InitFlavor::BusyBox), 3)
}
