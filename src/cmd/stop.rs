//! `rootrun stop NAME`: asks the container's rootrun to stop it, and
//! returns once everything of it is gone.

use std::io::{BufRead, BufReader};
use std::time::{Duration, Instant};

use crate::cli::StopArgs;
use crate::error::Error;
use crate::notice;
use crate::state::control::{self, Request};
use crate::state::{self};

/// How long the supervisor has to remove everything after it said the
/// container ended.
const CLEANUP_WAIT: Duration = Duration::from_secs(30);

pub fn run(args: &StopArgs) -> Result<u8, Error> {
    super::need_root()?;
    let found = state::find(&args.name)?;
    let request = if args.kill {
        Request::Kill
    } else {
        Request::Stop {
            timeout: args.timeout.map(Duration::from_secs),
        }
    };
    let started = Instant::now();
    let (stream, halt) = control::connect(&found, request)?;
    let how = if args.kill {
        "killing it".to_owned()
    } else {
        format!("asking init to halt {halt}")
    };
    notice::note(&format!("stopping {} ({how})", args.name));
    let mut line = String::new();
    // Until the container is gone; EOF if the supervisor was killed.
    let _ = BufReader::new(&stream).read_line(&mut line);
    let code = control::parse_exit(&line);
    // The lock goes when the supervisor has removed everything and exited.
    let deadline = Instant::now() + CLEANUP_WAIT;
    while found.alive() {
        if Instant::now() > deadline {
            return Err(Error::Usage(format!(
                "{}'s rootrun (PID {}) has not finished cleaning up after {} s",
                args.name,
                found.record.supervisor,
                CLEANUP_WAIT.as_secs()
            )));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let took = started.elapsed().as_secs_f64();
    match code {
        Some(code) => notice::note(&format!(
            "{} stopped in {took:.2} s (its rootrun exited {code})",
            args.name
        )),
        None => notice::note(&format!("{} is gone ({took:.2} s)", args.name)),
    }
    Ok(0)
}
