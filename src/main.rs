//! `rootrun`: parse the command line, dispatch to a command, map errors to
//! exit codes.

use std::process::ExitCode;

use clap::error::{ContextKind, ContextValue, ErrorKind};
use clap::Parser;

use rootrun::cli::Cli;
use rootrun::error::EXIT_ROOTRUN;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        // Usage errors are rootrun's own failures: 125, as `docker run` does
        // (clap would exit 2, which a container could return too).
        Err(err) if err.use_stderr() => {
            let _ = err.print();
            if looks_like_a_command(&err) {
                rootrun::notice::note(
                    "to run a command in the image, put it after `--`: rootrun IMAGE -- CMD [ARG...]",
                );
            }
            return ExitCode::from(EXIT_ROOTRUN);
        }
        // --version: the liblxc versions too (found at run time).
        Err(version) if version.kind() == ErrorKind::DisplayVersion => {
            let _ = rootrun::notice::stdout(&rootrun::cmd::version_text());
            return ExitCode::SUCCESS;
        }
        // --help: a closed pipe is no failure.
        Err(help_or_version) => {
            let _ = help_or_version.print();
            return ExitCode::SUCCESS;
        }
    };
    // -v/-vv belong to `run` (the default command); RUST_LOG to any.
    let verbose = match &cli.command {
        Some(rootrun::cli::Command::Run(args)) => args.verbose,
        None => cli.run.verbose,
        Some(_) => 0,
    };
    rootrun::logging::init(verbose);
    match rootrun::cmd::dispatch(cli) {
        Ok(code) => ExitCode::from(code),
        Err(err) => {
            if !err.is_quiet() {
                rootrun::notice::note(&err.to_string());
            }
            ExitCode::from(err.exit_code())
        }
    }
}

/// `rootrun IMG uname -m`: a word where clap expected nothing more, and no
/// `--` yet.
fn looks_like_a_command(err: &clap::Error) -> bool {
    let word = match err.get(ContextKind::InvalidArg) {
        Some(ContextValue::String(word)) => word.clone(),
        _ => return false,
    };
    err.kind() == ErrorKind::UnknownArgument
        && !word.starts_with('-')
        && !std::env::args_os().any(|a| a == "--")
}
