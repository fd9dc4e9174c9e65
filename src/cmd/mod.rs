//! One thin module per subcommand: the only layer that knows the command
//! line structures, `--json` and exit codes.

mod inspect;
mod run;
mod unpack;

use crate::cli::{Cli, Command};
use crate::config::RunConfig;
use crate::error::Error;

/// Runs the command; returns rootrun's exit code.
pub fn dispatch(cli: Cli) -> Result<u8, Error> {
    match cli.command {
        Some(Command::Run(args)) => run::run(&RunConfig::from_args(&args)?),
        Some(Command::Inspect(args)) => inspect::run(&args),
        Some(Command::Unpack(args)) => unpack::run(&args),
        None => run::run(&RunConfig::from_args(&cli.run)?),
    }
}
