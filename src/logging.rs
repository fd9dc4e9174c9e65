//! rootrun's own log through `tracing`: quiet by default; `-v` shows its
//! steps (open the image, detect the architecture, the binfmt handler, each
//! launch step, liblxc's start, the console, the teardown) with timings,
//! `-vv` more detail (and liblxc's log level DEBUG, `config`). `RUST_LOG`
//! (tracing-subscriber's EnvFilter syntax, e.g. `rootrun=debug`) overrides
//! the level for any command. Lines go to stderr, never to stdout, where a
//! container's console and a command's output are.
//!
//! A line: `rootrun: [  0.012s] step: mount tmpfs on ... (0.3 ms)`, the
//! time since rootrun started, then the event; `-vv` events say `debug:`.
//! Control characters are escaped as in `notice`.

use std::fmt::{self, Write as _};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::EnvFilter;

use crate::notice;

/// When rootrun started, for the time column.
fn started() -> Instant {
    static STARTED: OnceLock<Instant> = OnceLock::new();
    *STARTED.get_or_init(Instant::now)
}

/// Installs the subscriber: `RUST_LOG` when set, else rootrun's events at
/// INFO for `-v` (`verbose` 1) and DEBUG for `-vv` (2 or more), else none.
pub fn init(verbose: u8) {
    started();
    let filter = match std::env::var("RUST_LOG") {
        Ok(spec) if !spec.trim().is_empty() => EnvFilter::new(spec),
        _ => EnvFilter::new(match verbose {
            0 => "off",
            1 => "rootrun=info",
            _ => "rootrun=debug",
        }),
    };
    // A second init (tests) keeps the first subscriber.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .event_format(Line)
        .try_init();
}

/// Milliseconds since `since`, for the "(N ms)" of a step.
pub fn ms(since: Instant) -> Millis {
    Millis(since.elapsed())
}

/// A duration shown as milliseconds with one decimal.
pub struct Millis(Duration);

impl fmt::Display for Millis {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:.1} ms", self.0.as_secs_f64() * 1000.0)
    }
}

struct Line;

impl<S, N> FormatEvent<S, N> for Line
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        _ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let mut text = Text::default();
        event.record(&mut text);
        let level = match *event.metadata().level() {
            Level::ERROR => "error: ",
            Level::WARN => "warning: ",
            Level::INFO => "",
            Level::DEBUG => "debug: ",
            Level::TRACE => "trace: ",
        };
        writeln!(
            writer,
            "rootrun: [{:8.3}s] {level}{}",
            started().elapsed().as_secs_f64(),
            notice::printable(&text.0)
        )
    }
}

/// The event's message, then its other fields as `key=value`.
#[derive(Default)]
struct Text(String);

impl Visit for Text {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if field.name() == "message" {
            let rest = std::mem::take(&mut self.0);
            let _ = write!(self.0, "{value:?}");
            if !rest.is_empty() {
                self.0.push(' ');
                self.0.push_str(&rest);
            }
        } else {
            if !self.0.is_empty() {
                self.0.push(' ');
            }
            let _ = write!(self.0, "{}={value:?}", field.name());
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.record_debug(field, &format_args!("{value}"));
        } else {
            if !self.0.is_empty() {
                self.0.push(' ');
            }
            let _ = write!(self.0, "{}={value}", field.name());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_show_as_milliseconds() {
        assert_eq!(Millis(Duration::from_micros(2345)).to_string(), "2.3 ms");
    }
}
