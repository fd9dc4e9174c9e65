//! `rootrun run` (the default command): learn about the image and the host,
//! plan, then print the plan (`--dry-run`) or launch it.

use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;
use std::time::Instant;

use crate::arch::{self, Arch, Binfmt, Emulation};
use crate::config::{DryRun, Lower, Privilege, RunConfig, Verbosity};
use crate::error::Error;
use crate::image::{self, entry, users, Image, ImageFacts, ImageKind, InitUse};
use crate::plan::{self, HostPlan, LaunchPlan, Mode, Registration};
use crate::sys::userns::{IdMap, NoPrivateBinfmt, USERNS_REFUSED};
use crate::{launch, logging, lxc, notice, state};

pub fn run(config: &RunConfig) -> Result<u8, Error> {
    if config.detach && config.dry_run.is_none() {
        // The supervisor plans, claims the name and starts in a child of
        // its own (its PID names the container); this process waits until
        // init runs, or the child has said why it cannot.
        return super::detach::start_in_background(|ready| launch_planned(config, Some(ready)));
    }
    launch_planned(config, None)
}

/// Plans and launches; `ready`: detached, the pipe that says init runs.
fn launch_planned(config: &RunConfig, ready: Option<OwnedFd>) -> Result<u8, Error> {
    check_host_paths(config)?;
    let opening = Instant::now();
    let (image, lower) = open(config)?;
    tracing::info!(
        "open image {}: {} ({})",
        config.image.display(),
        image.describe(),
        logging::ms(opening)
    );
    let opened = RunConfig {
        lower,
        ..config.clone()
    };
    let config = &opened;
    let init_use = if config.is_command() {
        InitUse::Command
    } else {
        InitUse::Boot
    };
    let examining = Instant::now();
    let mut facts = image::examine(&image, &config.init, config.arch, init_use)
        .map_err(|e| Error::Detect(Box::new(e)))?;
    tracing::info!(
        "detect architecture: {} from {}; init {} ({})",
        facts
            .arch
            .map_or("unknown", |arch| arch.debian().unwrap_or(arch.uname())),
        facts
            .evidence
            .as_ref()
            .map_or("--arch".into(), |e| format!("{} -> {}", e.file, e.resolved)),
        facts.init_flavor,
        logging::ms(examining)
    );
    if let Some(path) = &config.metadata {
        let metadata = image::metadata_from_tarball(path)
            .map_err(|e| Error::Usage(format!("--metadata {}: {e}", path.display())))?;
        facts.use_metadata(metadata);
    }
    for warning in facts.warnings() {
        notice::warning(&warning);
    }
    if let Some(problem) = image::api_dir_problem(&image) {
        return Err(Error::Image {
            path: config.image.clone(),
            problem,
        });
    }
    // binfmt_misc is only read here; a run that must mount or register does
    // so as steps of the plan.
    let (binfmt, binfmt_mounted) = super::host_binfmt(&facts)?;
    let mut host = host_plan(&facts, binfmt.clone(), binfmt_mounted, config)?;
    tracing::info!(
        "binfmt handler: {}",
        match facts.arch {
            Some(arch) => host.emulation.describe(arch),
            None => "architecture unknown".into(),
        }
    );
    if let Some(warning) = credentials_flag(&binfmt, &host.emulation) {
        notice::warning(&warning);
    }
    crate::debug::refuse_unsupported(
        &config.debug,
        host.emulation == Emulation::Native,
        facts.dev_link.is_some(),
    )?;
    host.user = config
        .user
        .as_deref()
        .map(|user| resolve_user(&image, user))
        .transpose()?;
    let plan = plan::plan(config, &facts, host, std::process::id());
    if let Some(key) = plan.refused_lxc_items().first() {
        return Err(Error::Usage(format!(
            "--lxc {key}: rootrun sets {key} itself and depends on it; use its own option \
             (--hostname, --halt-signal, --init, --bind, ...) instead"
        )));
    }

    // Before anything boots: a systemd whose units this emulator cannot
    // start at all (plan::systemd).
    if let Some(limitation) = plan.systemd.as_ref().and_then(|s| s.limitation.as_ref()) {
        notice::warning(limitation);
    }

    if let Some(format) = config.dry_run {
        let text = match format {
            DryRun::Text => plan.to_string(),
            DryRun::Json => json(&plan)?,
        };
        notice::stdout(&text)?;
        // The run would fail here before starting anything: so does the plan.
        entry::check(plan.entry_program(), &image)?;
        return Ok(0);
    }
    // An ext4, EROFS or archive image stays mounted (detached) to become
    // the lower layer; a SquashFS image is loop-mounted by the plan.
    let lower_mount = image.into_lower();

    super::need_root()?;
    let loading = Instant::now();
    lxc::library::load()?;
    tracing::info!("load liblxc ({})", logging::ms(loading));
    let default_name = plan::default_hostname(&config.image);
    let mut owned =
        state::Owned::claim(config.name.as_deref(), &default_name, record(&plan, config))?;
    link_logs(&owned, &plan);
    let banner = banner(&plan, owned.name(), config);
    let named = launch::Named {
        owned: &mut owned,
        detached: config.detach,
        ready,
    };
    launch::run(
        &plan,
        lower_mount,
        banner.as_deref(),
        config.verbosity,
        Some(named),
    )
}

/// `/run/rootrun/NAME/logs` leads to the run's log directory while the
/// run lasts: the kept one, or the one on rootrun's tmpfs through
/// `/proc/PID/root`, which enters rootrun's mount namespace (proc(5)).
fn link_logs(owned: &state::Owned, plan: &LaunchPlan) {
    let target = match &plan.debug.kept {
        Some(dir) => dir.clone(),
        None => std::path::PathBuf::from(format!(
            "/proc/{}/root{}",
            std::process::id(),
            plan.layout.logs.display()
        )),
    };
    if let Err(e) = owned.link_logs(&target) {
        notice::warning(&format!(
            "{e}: the run's logs are not linked from its directory"
        ));
    }
}

/// What `rootrun ls` and `exec` will know of this run.
fn record(plan: &LaunchPlan, config: &RunConfig) -> state::Record {
    state::Record {
        name: String::new(),
        supervisor: std::process::id() as i32,
        lxc_name: plan.name.clone(),
        lxcpath: plan.layout.lxcpath.clone(),
        rootfs: plan.layout.rootfs.clone(),
        image: std::fs::canonicalize(&plan.image).unwrap_or_else(|_| plan.image.clone()),
        architecture: plan
            .arch
            .map(|arch| arch.debian().unwrap_or(arch.uname()).to_owned()),
        emulation: match plan.arch {
            Some(arch) => plan.emulation.describe(arch),
            None => "architecture unknown".into(),
        },
        host_root_uid: plan.idmap.map_or(0, |map| map.uid_first),
        mode: match plan.mode {
            Mode::Boot { .. } => "boot".into(),
            Mode::Command { .. } => "command".into(),
        },
        halt: plan.describe_halt(),
        detached: config.detach,
        started: state::now(),
        init_pid: None,
        stopping: false,
    }
}

/// `-u`: `UID[:GID]`, or a name from the image's /etc/passwd (read with
/// backhand, its symlinks resolved inside the image).
fn resolve_user(image: &Image, user: &str) -> Result<(u32, u32), Error> {
    if let Some(found) = users::numeric(user) {
        return Ok((found.uid, found.gid));
    }
    let passwd = image.read_head("/etc/passwd", 4 << 20).map_err(|e| {
        Error::Usage(format!(
            "-u {user}: cannot read the image's /etc/passwd: {e}"
        ))
    })?;
    users::from_passwd(&String::from_utf8_lossy(&passwd), user)
        .map(|found| (found.uid, found.gid))
        .ok_or_else(|| {
            Error::Usage(format!(
                "-u {user}: no such user in the image's /etc/passwd (give a name or UID[:GID])"
            ))
        })
}

/// A handler with binfmt_misc's `C` flag runs the emulator with the
/// credentials of the program it runs (binfmt-misc.rst): a setuid-root
/// program in the image, run by any user inside, gets an emulator running
/// as real root on the host's side of the emulation.
fn credentials_flag(binfmt: &Binfmt, emulation: &Emulation) -> Option<String> {
    let (Emulation::Preloaded { entry, .. } | Emulation::BindMount { entry, .. }) = emulation
    else {
        return None;
    };
    let Binfmt::Mounted { entries, .. } = binfmt else {
        return None;
    };
    let found = entries.iter().find(|e| &e.name == entry)?;
    found.flags.credentials.then(|| {
        format!(
            "binfmt_misc handler {entry} has the C flag: setuid programs in the image run the \
             emulator with their credentials (real root for a setuid-root one); register it \
             without C (Debian's handlers use POF)"
        )
    })
}

/// The host paths the options name, checked before anything is done.
fn check_host_paths(config: &RunConfig) -> Result<(), Error> {
    if let Some(crate::config::UpperDir::Keep(dir)) = &config.upper_dir {
        let used = std::fs::read_dir(dir).is_ok_and(|mut entries| entries.next().is_some());
        if used || (dir.exists() && !dir.is_dir()) {
            return Err(Error::Usage(format!(
                "--keep-upper {}: give an empty directory or a new path",
                dir.display()
            )));
        }
    }
    for bind in &config.binds {
        if let Err(e) = std::fs::metadata(&bind.host) {
            return Err(Error::Usage(format!(
                "--bind: {}: {e}",
                bind.host.display()
            )));
        }
    }
    Ok(())
}

fn json(plan: &LaunchPlan) -> Result<String, Error> {
    serde_json::to_string_pretty(&plan.json())
        .map(|text| text + "\n")
        .map_err(|e| Error::Usage(format!("cannot encode the plan as JSON: {e}")))
}

/// Opens the image (its kind decided from its magic), checks that it is
/// the kind of source the options say, and returns the lower layer it
/// makes.
fn open(config: &RunConfig) -> Result<(Image, Lower), Error> {
    let path = &config.image;
    let image = Image::open_with(path, config.tmpfs_size.as_deref())?;
    let refuse = |problem: &str| {
        Err(Error::Image {
            path: path.to_path_buf(),
            problem: problem.into(),
        })
    };
    let lower = match (config.lower, image.kind()) {
        (Lower::Directory, ImageKind::Directory) => Lower::Directory,
        (Lower::Directory, _) => {
            return refuse("--rootfs takes a directory; boot an image file without it")
        }
        (_, ImageKind::Directory) => {
            return refuse(
                "a directory, not an image file (for an extracted tree use --rootfs DIR)",
            )
        }
        (Lower::Unpacked, ImageKind::Squashfs) => Lower::Unpacked,
        (Lower::Unpacked, ImageKind::Archive) => Lower::Archive,
        (Lower::Unpacked, _) => {
            return refuse(
                "--unpack extracts SquashFS images; an ext4 or EROFS image is mounted \
                 read-only instead (boot it without --unpack)",
            )
        }
        (_, ImageKind::Squashfs) => Lower::Squashfs,
        (_, ImageKind::Ext4) => Lower::Ext4,
        (_, ImageKind::Erofs) => Lower::Erofs,
        (_, ImageKind::Archive) => Lower::Archive,
    };
    Ok((image, lower))
}

/// How the host will run the image: the handler the kernel picks, or the
/// one `--register-binfmt` would add when none does.
fn host_plan(
    facts: &ImageFacts,
    binfmt: Binfmt,
    binfmt_mounted: bool,
    config: &RunConfig,
) -> Result<HostPlan, Error> {
    let register = config.register_binfmt;
    let idmap = (config.privilege == Privilege::Unprivileged).then(IdMap::for_root);
    let decided = match idmap {
        Some(_) => private_emulation(facts, &binfmt),
        None => facts.emulation(&binfmt).map_err(Error::from),
    };
    let (emulation, registration) = match (decided, facts.arch) {
        (Ok(emulation), _) => (emulation, None),
        (Err(err), _) if idmap.is_some() => return Err(err),
        (Err(_), Some(arch)) if register => {
            let (entry, registration) = planned_handler(arch)?;
            let binfmt = with_entry(binfmt, entry);
            (facts.emulation(&binfmt)?, Some(registration))
        }
        (Err(err), _) => return Err(err),
    };
    // Only a boot sends init a halt signal of rootrun's choosing, and only
    // a booted systemd needs to know its emulator (the signal shift, the
    // calls the emulator cannot make: plan::systemd).
    let qemu = if config.is_command() {
        None
    } else {
        qemu_version(facts, &emulation)
    };
    let rt_shift = if config.is_command() || config.halt_signal.is_some() {
        0
    } else {
        rt_shift(facts, &emulation, qemu)
    };
    let lsm = crate::sys::lsm::detect();
    if lsm.apparmor && !lsm.apparmor_parser {
        notice::warning(
            "AppArmor is enabled but apparmor_parser is not installed, so liblxc cannot \
             load a profile for the container: it runs unconfined (apt-get install apparmor)",
        );
    }
    Ok(HostPlan {
        emulation,
        binfmt_mounted,
        registration,
        env: environment(config),
        rt_shift,
        qemu,
        lsm,
        user: None,
        cmdline: crate::sys::proc::kernel_cmdline(),
        idmap,
    })
}

/// `--unprivileged`: a foreign image runs through a binfmt_misc of the
/// container's own. It gets the host's handler for the image (its pattern,
/// its flags: Debian's `-binfmt-P` wrappers need `P`) when that one's
/// interpreter is a static file rootrun sees, else the installed static
/// QEMU; `F` either way. The host's table is only read.
fn private_emulation(facts: &ImageFacts, binfmt: &Binfmt) -> Result<Emulation, Error> {
    // Asked before anything is mounted: a chrooted rootrun gets no user
    // namespace at all, an older kernel none with a binfmt_misc.
    let private = crate::sys::userns::private_binfmt_misc();
    if private == Err(NoPrivateBinfmt::NoUserNamespace) {
        return Err(Error::Usage(format!(
            "--unprivileged: {USERNS_REFUSED}; use --privileged"
        )));
    }
    let Some(arch) = facts.arch.filter(|a| !a.runs_natively(Arch::host())) else {
        return Ok(Emulation::Native);
    };
    if let Err(why) = private {
        return Err(Error::Usage(format!(
            "--unprivileged runs a foreign ({arch}) image through a binfmt_misc of the \
             container's own, and {why} (Linux {}); use --privileged",
            crate::sys::proc::kernel_release()
        )));
    }
    let hosts = match binfmt {
        Binfmt::Mounted { entries, .. } => arch::select(entries, &facts.head, &facts.init)
            .filter(|entry| is_static(&entry.interpreter))
            .map(|entry| (entry.kind.clone(), entry.interpreter.clone(), entry.flags)),
        Binfmt::NotMounted => None,
    };
    let installed = || {
        let (interpreter, flags) = installed_handler(arch)?;
        Some((arch::qemu_pattern(arch).kind(), interpreter, flags))
    };
    let (kind, interpreter, flags) = hosts.or_else(installed).ok_or_else(|| {
        Error::Usage(format!(
            "--unprivileged: no static emulator for {arch} (none in the host's binfmt_misc, \
             neither /usr/bin/qemu-{q}-static nor /usr/bin/qemu-{q}); Debian 12: apt-get \
             install qemu-user-static, Debian 13: apt-get install qemu-user",
            q = arch.qemu()
        ))
    })?;
    let flags = arch::Flags {
        fix_binary: true,
        ..flags
    };
    let name = format!("qemu-{}", arch.qemu());
    let line = arch::register_line(&name, &kind, &interpreter, flags)?;
    Ok(Emulation::Private { interpreter, line })
}

/// The version of the emulator that runs init, asked only for systemd
/// (its halt signal is a real-time one, and plan::systemd): running
/// `qemu-ARCH --version` costs a fork.
fn qemu_version(facts: &ImageFacts, emulation: &Emulation) -> Option<arch::QemuVersion> {
    if facts.init_flavor != crate::image::InitFlavor::Systemd {
        return None;
    }
    emulation.emulator_file().and_then(arch::probe_version)
}

/// How the emulator maps host real-time signals, for an init whose halt
/// signal is one (systemd).
fn rt_shift(facts: &ImageFacts, emulation: &Emulation, version: Option<arch::QemuVersion>) -> i32 {
    let Some(interpreter) = emulation.emulator_file() else {
        return 0;
    };
    if !facts.init_flavor.halt_signal().starts_with("SIGRTMIN") {
        return 0;
    }
    match version.and_then(arch::rt_signal_shift) {
        Some(shift) => shift,
        None => {
            // An F handler's file was opened when it was registered, in the
            // registering process's view: the path may name nothing here,
            // or another file than the emulator the kernel runs.
            let why = match version {
                Some(v) => format!("QEMU {v} is older than the mappings rootrun knows"),
                None if !interpreter.exists() => format!(
                    "{} does not exist in rootrun's view (an F handler registered \
                     from another root?)",
                    interpreter.display()
                ),
                None => format!("{} did not tell its QEMU version", interpreter.display()),
            };
            notice::warning(&format!(
                "cannot tell how the emulator maps real-time signals: {why}; assuming \
                 QEMU 5.0-8.1's (host N arrives as N-2); name the halt signal with --halt-signal"
            ));
            2
        }
    }
}

/// The static QEMU user-mode emulator installed for `arch`: Debian 12's
/// qemu-user-static names it `qemu-ARCH-static`, Debian 13's qemu-user (all
/// static) plain `qemu-ARCH`. A dynamically linked one cannot work inside a
/// foreign root, so it does not count.
fn installed_emulator(arch: Arch) -> Option<std::path::PathBuf> {
    let q = arch.qemu();
    [
        format!("/usr/bin/qemu-{q}-static"),
        format!("/usr/bin/qemu-{q}"),
    ]
    .into_iter()
    .map(std::path::PathBuf::from)
    .find(|path| is_static(path))
}

/// A static emulator at `path`: a dynamically linked one cannot run inside a
/// foreign root.
fn is_static(path: &Path) -> bool {
    matches!(
        arch::inspect_interpreter(path),
        arch::InterpreterFacts::Static { .. }
    )
}

/// The installed static emulator for `arch` and the flags it needs. Debian's
/// `/usr/libexec/qemu-binfmt/ARCH-binfmt-P` names make QEMU expect the `P`
/// layout (argv[0] kept), and only with it does a BusyBox applet that
/// re-executes /proc/self/exe keep its name (without, `cat FILE` ran FILE
/// as a script): that one with `P` when it is there, else the plain
/// emulator.
fn installed_handler(arch: Arch) -> Option<(std::path::PathBuf, arch::Flags)> {
    let wrapper = Path::new("/usr/libexec/qemu-binfmt").join(format!("{}-binfmt-P", arch.qemu()));
    let (interpreter, preserve_argv0) = match is_static(&wrapper) {
        true => (wrapper, true),
        false => (installed_emulator(arch)?, false),
    };
    let flags = arch::Flags {
        preserve_argv0,
        ..Default::default()
    };
    Some((interpreter, flags))
}

/// The handler `--register-binfmt` registers for `arch`: the installed
/// static emulator with the F flag, named `rootrun-qemu-ARCH` so that it
/// never collides with the distribution's; being the newest entry, the
/// kernel tries it first.
fn planned_handler(arch: Arch) -> Result<(arch::Entry, Registration), Error> {
    let (interpreter, flags) = installed_handler(arch).ok_or_else(|| {
        Error::Usage(format!(
            "--register-binfmt: no static emulator for {arch} is installed \
             (looked for /usr/bin/qemu-{q}-static and /usr/bin/qemu-{q}; Debian 12: \
             apt-get install qemu-user-static, Debian 13: apt-get install qemu-user)",
            q = arch.qemu()
        ))
    })?;
    let entry = arch::Entry {
        name: format!("rootrun-qemu-{}", arch.qemu()),
        enabled: true,
        kind: arch::qemu_pattern(arch).kind(),
        interpreter,
        flags: arch::Flags {
            fix_binary: true,
            ..flags
        },
        order_key: arch::OrderKey { rank: u64::MAX },
    };
    let line = arch::register_line(&entry.name, &entry.kind, &entry.interpreter, entry.flags)?;
    let registration = Registration {
        name: entry.name.clone(),
        interpreter: entry.interpreter.clone(),
        line,
    };
    Ok((entry, registration))
}

/// binfmt_misc as it will be once `entry` is registered (in a binfmt_misc
/// of rootrun's own when the host has none mounted).
fn with_entry(binfmt: Binfmt, entry: arch::Entry) -> Binfmt {
    match binfmt {
        Binfmt::NotMounted => Binfmt::Mounted {
            enabled: true,
            entries: vec![entry],
        },
        Binfmt::Mounted {
            enabled,
            mut entries,
        } => {
            entries.retain(|e| e.name != entry.name);
            entries.push(entry);
            Binfmt::Mounted { enabled, entries }
        }
    }
}

/// The start banner: how the image runs and, on a terminal the user can
/// type into, how to stop it. Command mode says nothing unless `-v`, as
/// `docker run` and `lxc-execute` do.
fn banner(plan: &LaunchPlan, name: &str, config: &RunConfig) -> Option<String> {
    let verbosity = config.verbosity;
    let mut how = match plan.arch {
        Some(arch) => plan.emulation.describe(arch),
        None => "architecture unknown".into(),
    };
    if let Some(map) = &plan.idmap {
        how.push_str(&format!(
            ", unprivileged: root is host uid {}",
            map.uid_first
        ));
    }
    let image = plan.image.display();
    match (&plan.mode, verbosity) {
        (_, Verbosity::Quiet) | (Mode::Command { .. }, Verbosity::Normal) => None,
        (Mode::Boot { .. }, _) if config.detach => Some(format!(
            "booting {image} ({how}) in the background as {name}{}: rootrun console {name} \
             attaches, rootrun exec {name} -- CMD runs a command, rootrun stop {name} stops it",
            plan.systemd
                .as_ref()
                .map(|s| format!("; {}", s.describe()))
                .unwrap_or_default()
        )),
        (Mode::Boot { .. }, _) => {
            let how_to_stop = if crate::console::interactive(std::io::stdin().as_fd()) {
                let key = char::from(b'a' + plan.escape - 1);
                format!("press Ctrl-{key} q to stop it")
            } else {
                "stop it with poweroff inside, or SIGTERM to rootrun".to_owned()
            };
            let systemd = plan
                .systemd
                .as_ref()
                .map(|s| format!("; {}", s.describe()))
                .unwrap_or_default();
            Some(format!(
                "booting {image} ({how}) as {name}{systemd}; {how_to_stop}"
            ))
        }
        (Mode::Command { .. }, Verbosity::Verbose | Verbosity::Debug) => {
            Some(format!("running a command in {image} ({how})"))
        }
    }
}

/// `-e` items, and TERM from rootrun's own environment when stdin is a
/// terminal (as `docker run -t` does): the guest's programs then draw for
/// the terminal the user has. An explicit `-e TERM=...` wins.
fn environment(config: &RunConfig) -> Vec<(String, String)> {
    let mut env = config.env.clone();
    let given = env.iter().any(|(key, _)| key == "TERM");
    if let (false, true, Ok(term)) = (
        given,
        std::io::IsTerminal::is_terminal(&std::io::stdin()),
        std::env::var("TERM"),
    ) {
        if crate::config::parse_env(&format!("TERM={term}")).is_ok() {
            env.push(("TERM".into(), term));
        }
    }
    env
}
