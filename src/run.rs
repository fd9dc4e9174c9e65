//! `rootrun run`: learn about the image and the host, plan, then launch.

use std::path::Path;
use std::time::Duration;

use crate::arch::{self, Arch, BINFMT_DIR};
use crate::cli::RunArgs;
use crate::detect::{self, ImageFacts};
use crate::error::Error;
use crate::image::Image;
use crate::plan::{self, Lower, Options};
use crate::sys::mount::{self, Mount};
use crate::sys::{namespace, privileges};
use crate::{launch, lxc};

pub fn run(args: RunArgs) -> Result<u8, Error> {
    let (path, lower) = match (&args.rootfs, &args.image) {
        (Some(dir), _) => (dir.as_path(), Lower::Directory),
        (None, Some(image)) if args.unpack => (image.as_path(), Lower::Unpacked),
        (None, Some(image)) => (image.as_path(), Lower::Squashfs),
        (None, None) => return Err(Error::Usage("an IMAGE or --rootfs DIR is required".into())),
    };
    let facts = examine(path, lower, &args.init, args.arch)?;
    if let Some(warning) = facts.mismatch_warning() {
        eprintln!("rootrun: warning: {warning}");
    }
    let opts = Options {
        image: path.to_path_buf(),
        lower,
        command: args.command.clone(),
        hostname: args.hostname.clone(),
        init: args.init.clone(),
        escape: args.escape,
        stop_timeout: Duration::from_secs(args.stop_timeout),
    };
    if args.dry_run {
        // Touches nothing: binfmt_misc is read only if it is mounted.
        let mut binfmt = arch::read_binfmt(Path::new(BINFMT_DIR))?;
        if let (true, Some(arch)) = (args.register_binfmt, facts.arch) {
            if facts.emulation(&binfmt).is_err() {
                binfmt = with_planned_handler(binfmt, arch)?;
            }
        }
        let emulation = facts.emulation(&binfmt)?;
        print!(
            "{}",
            plan::plan(&opts, &facts, emulation, std::process::id())
        );
        return Ok(0);
    }

    let missing = privileges::missing();
    if !missing.is_empty() {
        return Err(Error::Privileges(
            missing.iter().map(ToString::to_string).collect(),
        ));
    }
    lxc::library::load()?;
    // Before anything else mounts, and before any thread exists.
    namespace::enter_private_mount_namespace()?;
    let binfmt_mount = mount_binfmt_if_needed(facts.arch)?;
    if args.register_binfmt {
        if let Some(arch) = facts.arch {
            register_handler(arch, &facts, binfmt_mount.is_some())?;
        }
    }
    let binfmt = arch::read_binfmt(Path::new(BINFMT_DIR))?;
    let emulation = facts.emulation(&binfmt)?;
    let plan = plan::plan(&opts, &facts, emulation, std::process::id());
    let banner = (!args.quiet).then(|| banner(&plan));
    launch::run(&plan, banner.as_deref())
}

/// Opens the image with backhand, without mounting it.
fn examine(path: &Path, lower: Lower, init: &str, arch: Option<Arch>) -> Result<ImageFacts, Error> {
    let image = Image::open(path)?;
    let is_squashfs = image.squashfs_facts().is_some();
    let problem = match (lower, is_squashfs) {
        (Lower::Directory, true) => {
            Some("--rootfs takes a directory; boot an image file without it")
        }
        (Lower::Squashfs | Lower::Unpacked, false) => {
            Some("not a SquashFS image file (for an extracted tree use --rootfs DIR)")
        }
        _ => None,
    };
    if let Some(problem) = problem {
        return Err(Error::Image {
            path: path.to_path_buf(),
            problem: problem.into(),
        });
    }
    detect::examine(&image, init, arch).map_err(|e| Error::Detect(Box::new(e)))
}

/// binfmt_misc is not mounted on a fresh host; a foreign image needs to read
/// (and may register) handlers. The mount stays in the private namespace.
fn mount_binfmt_if_needed(arch: Option<Arch>) -> Result<Option<Mount>, Error> {
    let dir = Path::new(BINFMT_DIR);
    let foreign = arch.is_some_and(|a| !a.runs_natively(Arch::host()));
    if !foreign || dir.join("register").exists() {
        return Ok(None);
    }
    Ok(Some(mount::binfmt_misc(dir)?))
}

/// `--register-binfmt`: a handler with the F flag for the installed static
/// emulator, named `rootrun-qemu-ARCH` so that it never collides with the
/// distribution's; being the newest entry, the kernel tries it first.
fn register_handler(arch: Arch, facts: &ImageFacts, own_mount: bool) -> Result<(), Error> {
    let dir = Path::new(BINFMT_DIR);
    if arch.runs_natively(Arch::host()) {
        return Ok(());
    }
    if facts.emulation(&arch::read_binfmt(dir)?).is_ok() {
        return Ok(());
    }
    let handler = planned_handler(arch)?;
    let (name, interpreter) = (&handler.name, &handler.interpreter);
    let line = arch::register_line(name, &handler.kind, interpreter, handler.flags)?;
    if dir.join(name).exists() {
        // Ours from an earlier run, but disabled or broken: replace it.
        arch::remove(dir, name)?;
    }
    arch::register(dir, &line)?;
    // Entries live as long as binfmt_misc is mounted somewhere: with only
    // rootrun's private mount, the entry goes away with rootrun.
    let lifetime = if own_mount {
        "for this run (binfmt_misc is not mounted on the host)".to_owned()
    } else {
        format!("it stays registered (remove it: echo -1 > {BINFMT_DIR}/{name})")
    };
    eprintln!(
        "rootrun: registered binfmt_misc handler {name} (flag F) for {}; {lifetime}",
        interpreter.display()
    );
    Ok(())
}

/// The handler `--register-binfmt` registers for `arch`: the installed
/// static emulator with the F flag, as the newest entry.
fn planned_handler(arch: Arch) -> Result<arch::Entry, Error> {
    let interpreter = format!("/usr/bin/qemu-{}-static", arch.qemu());
    if !Path::new(&interpreter).exists() {
        return Err(Error::Usage(format!(
            "--register-binfmt: {interpreter} is not installed (apt-get install qemu-user-static)"
        )));
    }
    Ok(arch::Entry {
        name: format!("rootrun-qemu-{}", arch.qemu()),
        enabled: true,
        kind: arch::qemu_pattern(arch).kind(),
        interpreter: interpreter.into(),
        flags: arch::Flags {
            fix_binary: true,
            ..Default::default()
        },
        order_key: arch::OrderKey { rank: u64::MAX },
    })
}

/// `--dry-run --register-binfmt`: what the run would see after registering
/// (in a binfmt_misc of its own when the host has none mounted).
fn with_planned_handler(binfmt: arch::Binfmt, arch: Arch) -> Result<arch::Binfmt, Error> {
    let planned = planned_handler(arch)?;
    Ok(match binfmt {
        arch::Binfmt::NotMounted => arch::Binfmt::Mounted {
            enabled: true,
            entries: vec![planned],
        },
        arch::Binfmt::Mounted {
            enabled,
            mut entries,
        } => {
            entries.retain(|e| e.name != planned.name);
            entries.push(planned);
            arch::Binfmt::Mounted { enabled, entries }
        }
    })
}

fn banner(plan: &plan::LaunchPlan) -> String {
    let how = match plan.arch {
        Some(arch) => plan.emulation.describe(arch),
        None => "architecture unknown".into(),
    };
    let image = plan.image.display();
    match plan.mode {
        plan::Mode::Boot { .. } => {
            let key = char::from(b'a' + plan.escape - 1);
            format!(
                "rootrun: booting {image} ({how}) as {}; press Ctrl-{key} q to stop it",
                plan.hostname
            )
        }
        plan::Mode::Command { .. } => format!("rootrun: running a command in {image} ({how})"),
    }
}
