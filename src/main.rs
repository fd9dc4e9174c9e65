//! `rootrun`: parse the command line, call the library, map errors to exit codes.

use std::process::ExitCode;

use clap::Parser;

use rootrun::cli::{Cli, Command};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Some(Command::Run(args)) => rootrun::run::run(args),
        Some(Command::Inspect(args)) => rootrun::inspect::inspect(args),
        Some(Command::Unpack(args)) => rootrun::image::unpack::command(&args),
        None => rootrun::run::run(cli.run),
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(err) => {
            eprintln!("rootrun: {err}");
            ExitCode::from(err.exit_code())
        }
    }
}
