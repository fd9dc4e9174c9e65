//! `rootrun`: parse the command line, call the library, map errors to exit codes.

use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;

use rootrun::cli::{Cli, Command, RunArgs};
use rootrun::error::{Error, EXIT_ROOTRUN};
use rootrun::plan::{self, ImageFacts, Options};
use rootrun::{launch, lxc, sys};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let run = match cli.command {
        Some(Command::Run(args)) => args,
        None => cli.run,
    };
    match run_command(run) {
        Ok(code) => ExitCode::from(code),
        Err(err) => {
            eprintln!("rootrun: {err}");
            ExitCode::from(err.exit_code())
        }
    }
}

fn run_command(args: RunArgs) -> Result<u8, Error> {
    let image = args
        .image
        .ok_or_else(|| Error::Usage("an IMAGE is required".into()))?;
    check_image(&image)?;
    let opts = Options {
        image: image.clone(),
        command: args.command,
        hostname: args.hostname,
        init: args.init,
        escape: args.escape,
        stop_timeout: Duration::from_secs(args.stop_timeout),
    };
    let plan = plan::plan(&opts, &ImageFacts::default(), std::process::id());
    if args.dry_run {
        print!("{plan}");
        return Ok(0);
    }
    let missing = sys::privileges::missing();
    if !missing.is_empty() {
        return Err(Error::Privileges(
            missing.iter().map(ToString::to_string).collect(),
        ));
    }
    lxc::library::load()?;
    let key = char::from(b'a' + args.escape - 1);
    let banner = (!args.quiet).then(|| {
        format!(
            "rootrun: starting {} as {}; press Ctrl-{key} q to stop it",
            image.display(),
            plan.hostname
        )
    });
    launch::run(&plan, banner.as_deref())
}

/// The image must exist, be a regular file and start with the SquashFS magic.
fn check_image(path: &Path) -> Result<(), Error> {
    use std::io::Read;
    let problem = |problem: String| Error::Image {
        path: path.to_path_buf(),
        problem,
    };
    let meta = std::fs::metadata(path).map_err(|e| problem(e.to_string()))?;
    if !meta.is_file() {
        return Err(problem("not a regular file".into()));
    }
    let mut magic = [0u8; 4];
    std::fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut magic))
        .map_err(|e| problem(format!("cannot read the SquashFS superblock: {e}")))?;
    if &magic != b"hsqs" {
        return Err(problem("not a SquashFS image (no \"hsqs\" magic)".into()));
    }
    Ok(())
}

#[allow(dead_code)]
const _: u8 = EXIT_ROOTRUN;
