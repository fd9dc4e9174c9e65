//! Progress reporting. The library only calls the [`Progress`] trait, from the thread that
//! called [`super::unpack`]; the terminal bar (indicatif) is one implementation of it.

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

pub trait Progress {
    /// Called once, after the image was checked and before anything is written.
    fn start(&mut self, entries: u64, bytes: u64);
    /// Totals so far (not increments).
    fn update(&mut self, entries: u64, bytes: u64);
    fn finish(&mut self);
}

/// Reports nothing.
pub struct NoProgress;

impl Progress for NoProgress {
    fn start(&mut self, _: u64, _: u64) {}
    fn update(&mut self, _: u64, _: u64) {}
    fn finish(&mut self) {}
}

/// A bar on stderr showing bytes and files, drawn only when stderr is a terminal: on a pipe or
/// a CI log it would be noise (issue 4).
pub struct TerminalProgress {
    bar: Option<ProgressBar>,
    entries: u64,
}

impl TerminalProgress {
    pub fn new(quiet: bool) -> Self {
        let bar = (!quiet && std::io::stderr().is_terminal()).then(|| {
            let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
            // The template is a constant; should it ever fail to parse, the default style stays.
            if let Ok(style) = ProgressStyle::with_template(
                "{wide_bar} {bytes}/{total_bytes} {msg} {bytes_per_sec} {eta}",
            ) {
                bar.set_style(style);
            }
            bar
        });
        TerminalProgress { bar, entries: 0 }
    }
}

impl Progress for TerminalProgress {
    fn start(&mut self, entries: u64, bytes: u64) {
        self.entries = entries;
        if let Some(bar) = &self.bar {
            bar.set_length(bytes);
            bar.set_message(format!("0/{entries} files"));
            // No steady tick: it would start a drawing thread, and callers may set up
            // namespaces after unpack returns (DESIGN.md, threads).
        }
    }

    fn update(&mut self, entries: u64, bytes: u64) {
        if let Some(bar) = &self.bar {
            bar.set_position(bytes);
            bar.set_message(format!("{entries}/{} files", self.entries));
        }
    }

    fn finish(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
    }
}
