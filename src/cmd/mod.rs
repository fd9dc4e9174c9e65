//! One thin module per subcommand: the only layer that knows the command
//! line structures, `--json` and exit codes.

mod console;
mod detach;
mod doctor;
mod exec;
mod inspect;
mod logs;
mod ls;
mod run;
mod stop;
mod unpack;

use std::path::Path;

use crate::arch::{self, Arch, Binfmt, BINFMT_DIR};
use crate::cli::{Cli, Command};
use crate::config::RunConfig;
use crate::error::Error;
use crate::image::ImageFacts;
use crate::sys::binfmt_probe;

/// Runs the command; returns rootrun's exit code.
pub fn dispatch(cli: Cli) -> Result<u8, Error> {
    match cli.command {
        Some(Command::Run(args)) => run::run(&RunConfig::from_args(&args)?),
        Some(Command::Inspect(args)) => inspect::run(&args),
        Some(Command::Unpack(args)) => unpack::run(&args),
        Some(Command::Ls(args)) => ls::run(&args),
        Some(Command::Console(args)) => console::run(&args),
        Some(Command::Stop(args)) => stop::run(&args),
        Some(Command::Logs(args)) => logs::run(&args),
        Some(Command::Exec(args)) => exec::run(&args),
        Some(Command::Doctor(args)) => doctor::run(&args),
        None => run::run(&RunConfig::from_args(&cli.run)?),
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
