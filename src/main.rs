//! `rootrun`: parse the command line, call the library, map errors to exit codes.

use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;

use rootrun::cli::{Cli, Command, RunArgs};
use rootrun::error::Error;
use rootrun::image::{Image, InitFlavor};
use rootrun::plan::{self, ImageFacts, Options};
use rootrun::{launch, lxc, sys};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let run = match cli.command {
        Some(Command::Run(args)) => args,
        Some(Command::Unpack(args)) => return rootrun::image::unpack::command(&args),
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
    let facts = image_facts(&image, &args.init)?;
    let opts = Options {
        image: image.clone(),
        command: args.command,
        hostname: args.hostname,
        init: args.init,
        escape: args.escape,
        stop_timeout: Duration::from_secs(args.stop_timeout),
    };
    let plan = plan::plan(&opts, &facts, std::process::id());
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

/// Opens the image without mounting it (backhand) and learns what the plan
/// needs: that it is a SquashFS file, and which init it boots.
fn image_facts(path: &Path, init: &str) -> Result<ImageFacts, Error> {
    let image = Image::open(path)?;
    if image.squashfs_facts().is_none() {
        return Err(Error::Image {
            path: path.to_path_buf(),
            problem: "not a SquashFS image file".into(),
        });
    }
    // A missing init is reported after mounting, from the kernel's view.
    let init_flavor = image
        .resolve(init)
        .map(|resolved| InitFlavor::from_resolved_path(&resolved.path))
        .unwrap_or_default();
    Ok(ImageFacts { init_flavor })
}
