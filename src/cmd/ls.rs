//! `rootrun ls`: the running containers.

use serde::Serialize;

use crate::cli::LsArgs;
use crate::error::Error;
use crate::notice;
use crate::state::{self, Found};

/// One line of `rootrun ls --json`.
#[derive(Serialize)]
struct Row<'a> {
    name: &'a str,
    state: &'a str,
    architecture: Option<&'a str>,
    emulation: &'a str,
    /// The host uid of guest root: 0 unless `--unprivileged`.
    host_root_uid: u32,
    image: String,
    mode: &'a str,
    detached: bool,
    init_pid: Option<i32>,
    supervisor_pid: i32,
    started: u64,
    uptime_seconds: u64,
}

pub fn run(args: &LsArgs) -> Result<u8, Error> {
    super::need_root()?;
    let found = state::list();
    let now = state::now();
    let rows: Vec<Row<'_>> = found.iter().map(|f| row(f, now)).collect();
    let text = if args.json {
        serde_json::to_string_pretty(&rows)
            .map(|text| text + "\n")
            .map_err(|e| Error::Usage(format!("cannot encode the list as JSON: {e}")))?
    } else {
        table(&rows)
    };
    notice::stdout(&text)?;
    Ok(0)
}

fn row(found: &Found, now: u64) -> Row<'_> {
    let record = &found.record;
    Row {
        name: &record.name,
        state: record.state(),
        architecture: record.architecture.as_deref(),
        emulation: &record.emulation,
        host_root_uid: record.host_root_uid,
        image: record.image.display().to_string(),
        mode: &record.mode,
        detached: record.detached,
        init_pid: record.init_pid,
        supervisor_pid: record.supervisor,
        started: record.started,
        uptime_seconds: now.saturating_sub(record.started),
    }
}

fn table(rows: &[Row<'_>]) -> String {
    let mut lines = vec![[
        "NAME".to_owned(),
        "STATE".into(),
        "ARCH".into(),
        "INIT".into(),
        "UPTIME".into(),
        "IMAGE".into(),
        "EMULATION".into(),
    ]];
    for row in rows {
        lines.push([
            notice::printable(row.name),
            row.state.into(),
            row.architecture.unwrap_or("?").into(),
            row.init_pid.map_or("-".into(), |pid| pid.to_string()),
            uptime(row.uptime_seconds),
            notice::printable(&row.image),
            notice::printable(row.emulation),
        ]);
    }
    let mut widths = [0usize; 7];
    for line in &lines {
        for (width, cell) in widths.iter_mut().zip(line) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let mut text = String::new();
    for line in &lines {
        let cells: Vec<String> = line
            .iter()
            .zip(widths)
            .enumerate()
            .map(|(i, (cell, width))| {
                if i + 1 == line.len() {
                    cell.clone()
                } else {
                    format!("{cell:width$}")
                }
            })
            .collect();
        text.push_str(cells.join("  ").trim_end());
        text.push('\n');
    }
    text
}

/// `42s`, `3m05s`, `2h07m`, `3d04h`.
fn uptime(seconds: u64) -> String {
    match seconds {
        0..=59 => format!("{seconds}s"),
        60..=3599 => format!("{}m{:02}s", seconds / 60, seconds % 60),
        3600..=86_399 => format!("{}h{:02}m", seconds / 3600, seconds % 3600 / 60),
        _ => format!("{}d{:02}h", seconds / 86_400, seconds % 86_400 / 3600),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uptime_reads_well() {
        assert_eq!(uptime(7), "7s");
        assert_eq!(uptime(185), "3m05s");
        assert_eq!(uptime(2 * 3600 + 7 * 60), "2h07m");
        assert_eq!(uptime(3 * 86_400 + 4 * 3600), "3d04h");
    }

    #[test]
    fn table_lines_up_and_escapes_names() {
        let mut record = state::sample_record();
        record.init_pid = Some(4242);
        let found = Found {
            record,
            dir: "/run/rootrun/fw".into(),
        };
        let text = table(&[row(&found, 1_700_000_065)]);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2);
        assert!(
            lines[0].starts_with("NAME  STATE    ARCH   INIT  UPTIME"),
            "{text}"
        );
        assert!(
            lines[1].starts_with("fw    running  arm64  4242  1m05s"),
            "{text}"
        );
    }
}
