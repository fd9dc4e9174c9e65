//! `rootrun`: parse the command line, call the library, map errors to exit codes.

use std::process::ExitCode;

use clap::Parser;

use rootrun::cli::{Cli, Command};

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        // Usage errors are rootrun's own failures: 125, as `docker run` does
        // (clap would exit 2, which a container could return too).
        Err(err) if err.use_stderr() => {
            let _ = err.print();
            return ExitCode::from(rootrun::error::EXIT_ROOTRUN);
        }
        Err(help_or_version) => {
            let _ = help_or_version.print();
            return ExitCode::SUCCESS;
        }
    };
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
