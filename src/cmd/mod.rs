//! One thin module per subcommand: the only layer that knows the command
//! line structures, `--json` and exit codes.

mod console;
mod detach;
mod doctor;
mod exec;
mod export;
mod inspect;
mod logs;
mod ls;
mod run;
mod stop;
mod unpack;

use std::path::Path;

use crate::arch::{self, Arch, Binfmt, BINFMT_DIR};
use clap::{CommandFactory, Parser};

use crate::cli::RunArgs;
use crate::cli::{Cli, Command};
use crate::config::RunConfig;
use crate::config_file;
use crate::error::Error;
use crate::image::ImageFacts;
use crate::sys::binfmt_probe;

/// The run's arguments with its configuration file's (`config_file`) put
/// before the command line's, so that the command line wins; `args` as
/// they are when there is no file. `explicit_run`: `rootrun run ...`.
fn with_file(args: RunArgs, explicit_run: bool) -> Result<RunArgs, Error> {
    let Some(image) = args.rootfs.as_ref().or(args.image.as_ref()) else {
        return Ok(args);
    };
    let Some(path) = config_file::path_for(args.config.as_deref(), image) else {
        return Ok(args);
    };
    let file = config_file::load(&path)?;
    let text = std::fs::read_to_string(&path).unwrap_or_default();
    let argv0 = std::ffi::OsString::from("rootrun");
    // Each of the file's options alone, so that a bad value names its key.
    for (key, words) in &file.options {
        let mut probe = vec![argv0.clone()];
        probe.extend(words.iter().cloned());
        probe.push("IMAGE".into());
        if matches!(*key, "workdir" | "user") {
            probe.extend(["--".into(), "true".into()]);
        }
        if let Err(e) = Cli::try_parse_from(&probe) {
            let line = config_file::line_of(&text, key)
                .map(|n| format!(", line {n}"))
                .unwrap_or_default();
            let why = e.to_string();
            let why = why
                .lines()
                .next()
                .unwrap_or("")
                .trim_start_matches("error: ");
            return Err(Error::Usage(format!(
                "configuration {}{line}: {key}: {why}",
                path.display()
            )));
        }
    }
    let given: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
    let (before, after) = match given.iter().position(|a| explicit_run && a == "run") {
        Some(at) => (given[..=at].to_vec(), given[at + 1..].to_vec()),
        None => (Vec::new(), given),
    };
    let mut argv = vec![argv0];
    argv.extend(before);
    argv.extend(file.options.into_iter().flat_map(|(_, words)| words));
    argv.extend(after);
    if args.command.is_empty() && !file.command.is_empty() {
        argv.push("--".into());
        argv.extend(file.command.into_iter().map(Into::into));
    }
    let parsed = Cli::try_parse_from(&argv).map_err(|e| {
        let why = e.to_string();
        Error::Usage(format!(
            "{} (with the options of {})",
            why.lines()
                .next()
                .unwrap_or("")
                .trim_start_matches("error: "),
            path.display()
        ))
    })?;
    Ok(match parsed.command {
        Some(Command::Run(args)) => *args,
        _ => parsed.run,
    })
}

/// `rootrun --version`: rootrun's version, the liblxc it loads here (or why
/// it cannot) and the liblxc its bindings were generated from.
pub fn version_text() -> String {
    let loaded = match crate::lxc::library::load() {
        Ok(lib) => format!("liblxc {} (loaded)", lib.version),
        Err(e) => format!("liblxc not usable: {e}"),
    };
    format!(
        "rootrun {}\n{loaded}\nbindings generated from liblxc {}\n",
        env!("CARGO_PKG_VERSION"),
        crate::lxc::sys::BINDINGS_VERSION
    )
}

/// Runs the command; returns rootrun's exit code.
pub fn dispatch(cli: Cli) -> Result<u8, Error> {
    match cli.command {
        Some(Command::Run(args)) => run::run(&RunConfig::from_args(&with_file(*args, true)?)?),
        Some(Command::Inspect(args)) => inspect::run(&args),
        Some(Command::Unpack(args)) => unpack::run(&args),
        Some(Command::Ls(args)) => ls::run(&args),
        Some(Command::Console(args)) => console::run(&args),
        Some(Command::Stop(args)) => stop::run(&args),
        Some(Command::Logs(args)) => logs::run(&args),
        Some(Command::Exec(args)) => exec::run(&args),
        Some(Command::Completions(args)) => {
            let mut out = Vec::new();
            clap_complete::generate(args.shell, &mut Cli::command(), "rootrun", &mut out);
            crate::notice::stdout(&String::from_utf8_lossy(&out))?;
            Ok(0)
        }
        Some(Command::Export(args)) => export::run(&args),
        Some(Command::Man) => {
            let mut out = Vec::new();
            clap_mangen::Man::new(Cli::command())
                .render(&mut out)
                .map_err(Error::Stdout)?;
            crate::notice::stdout(&String::from_utf8_lossy(&out))?;
            Ok(0)
        }
        Some(Command::Doctor(args)) => doctor::run(&args),
        None => run::run(&RunConfig::from_args(&with_file(cli.run, false)?)?),
    }
}

/// Named containers are root's: their directories under /run/rootrun are
/// 0700, and stopping or attaching needs the capabilities a run needs.
pub(crate) fn need_root() -> Result<(), Error> {
    let missing = crate::sys::privileges::missing();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(Error::Privileges(
            missing.iter().map(ToString::to_string).collect(),
        ))
    }
}

/// The binfmt_misc the kernel will consult for the image, and whether it is
/// mounted in rootrun's view (else a run mounts it as a step of its plan).
/// Not mounted here, it may still hold entries (it lives while mounted
/// anywhere): for a foreign image it is then read through a mount in a
/// throwaway namespace (root only; otherwise taken as not mounted).
pub(crate) fn host_binfmt(facts: &ImageFacts) -> Result<(Binfmt, bool), Error> {
    let dir = Path::new(BINFMT_DIR);
    let binfmt = arch::read_binfmt(dir)?;
    let foreign = facts.arch.is_some_and(|a| !a.runs_natively(Arch::host()));
    if !matches!(binfmt, Binfmt::NotMounted) || !foreign {
        let mounted = matches!(binfmt, Binfmt::Mounted { .. });
        return Ok((binfmt, mounted));
    }
    match binfmt_probe::list_unmounted(dir) {
        Some(listing) => Ok((arch::binfmt_from_listing(&listing)?, false)),
        None => Ok((Binfmt::NotMounted, false)),
    }
}
