//! `rootrun logs NAME [-f]`: a detached container's console output.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::MetadataExt;
use std::time::Duration;

use crate::cli::LogsArgs;
use crate::error::Error;
use crate::state::{self, Found};

/// How often `-f` looks for more.
const FOLLOW_EVERY: Duration = Duration::from_millis(100);

pub fn run(args: &LogsArgs) -> Result<u8, Error> {
    super::need_root()?;
    let found = state::find(&args.name)?;
    if !found.record.detached {
        return Err(Error::Usage(format!(
            "{} runs in the foreground: its console is the terminal (or output) of the \
             rootrun that started it",
            args.name
        )));
    }
    let mut out = std::io::stdout().lock();
    // What was rotated out first, then the current log.
    if let Ok(mut old) = File::open(found.path(state::CONSOLE_LOG_OLD)) {
        copy(&mut old, &mut out)?;
    }
    let mut log = open_log(&found)?;
    copy(&mut log, &mut out)?;
    if !args.follow {
        return Ok(0);
    }
    loop {
        let alive = found.alive();
        copy(&mut log, &mut out)?;
        // Rotated: the rest of the old file went above; go on with the new.
        let current = std::fs::metadata(found.path(state::CONSOLE_LOG)).map(|m| m.ino());
        let open = log.metadata().map(|m| m.ino());
        if let (Ok(current), Ok(open)) = (current, open) {
            if current != open {
                log = open_log(&found)?;
                continue;
            }
        }
        if !alive {
            return Ok(0);
        }
        std::thread::sleep(FOLLOW_EVERY);
    }
}

fn open_log(found: &Found) -> Result<File, Error> {
    let path = found.path(state::CONSOLE_LOG);
    let mut file =
        File::open(&path).map_err(|e| Error::Usage(format!("{}: {e}", path.display())))?;
    let _ = file.seek(SeekFrom::Start(0));
    Ok(file)
}

fn copy(from: &mut File, to: &mut impl Write) -> Result<(), Error> {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = from.read(&mut buf).unwrap_or(0);
        if n == 0 {
            return to.flush().map_err(Error::Stdout);
        }
        to.write_all(&buf[..n]).map_err(Error::Stdout)?;
    }
}
