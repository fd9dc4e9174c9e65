//! `rootrun unpack IMAGE DIR [--quiet]`: the bar on a terminal, a summary and
//! the skipped items on stderr, exit status 125 on failure and 128+n on
//! signal n (DESIGN.md, exit codes).

use crate::cli::UnpackArgs;
use crate::error::Error;
use crate::image::unpack::{self, TerminalProgress, UnpackOptions};
use crate::notice;

pub fn run(args: &UnpackArgs) -> Result<u8, Error> {
    let mut progress = TerminalProgress::new(args.quiet);
    // Ctrl-C, SIGTERM and SIGHUP stop the extraction cleanly (the partial
    // destination is removed, or noted) instead of killing rootrun mid-way.
    let options = UnpackOptions {
        interrupt: Some(crate::sys::interrupt::catch_once()),
        ..UnpackOptions::default()
    };
    let report = unpack::unpack(&args.image, &args.dir, &options, &mut progress)
        .map_err(|e| Error::Unpack(Box::new(e)))?;
    for skip in &report.skipped {
        notice::note(&format!("not root: {skip}"));
    }
    if !args.quiet {
        notice::note(&format!(
            "unpacked {} into {}: {} directories, {} files ({} bytes), \
             {} symlinks, {} hard links, {} special files",
            args.image.display(),
            args.dir.display(),
            report.dirs,
            report.files,
            report.bytes,
            report.symlinks,
            report.hard_links,
            report.nodes
        ));
    }
    Ok(0)
}
