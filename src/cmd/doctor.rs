//! `rootrun doctor [IMAGE] [--json]`: the host checks (`crate::doctor`),
//! and for IMAGE whether and how it runs here. Exit 0 when ready, 1
//! otherwise.

use std::path::Path;

use crate::cli::DoctorArgs;
use crate::doctor::{self, Check, Status};
use crate::error::Error;
use crate::image::{self, entry, Image, InitUse};
use crate::notice;

pub fn run(args: &DoctorArgs) -> Result<u8, Error> {
    let mut checks = doctor::host_checks();
    if let Some(path) = &args.image {
        checks.extend(image_checks(path));
    }
    let ready = doctor::ready(&checks);
    let text = if args.json {
        let report = serde_json::json!({ "ready": ready, "checks": checks });
        serde_json::to_string_pretty(&report)
            .map_err(|e| Error::Usage(format!("cannot encode the report as JSON: {e}")))?
            + "\n"
    } else {
        render(&checks, ready)
    };
    notice::stdout(&text)?;
    Ok(if ready { 0 } else { 1 })
}

fn render(checks: &[Check], ready: bool) -> String {
    let mut out = String::new();
    for c in checks {
        out += &format!("{:<5} {:<22} {}", c.status.word(), c.check, c.detail);
        if let Some(fix) = &c.fix {
            out += &format!("  [fix: {fix}]");
        }
        out += "\n";
    }
    out += if ready {
        "ready: rootrun can run containers here\n"
    } else {
        "not ready: fix the FAIL lines above\n"
    };
    out
}

fn fail(what: &str, detail: String, fix: Option<&str>) -> Check {
    Check {
        check: what.into(),
        status: Status::Fail,
        detail,
        fix: fix.map(str::to_owned),
    }
}

/// IMAGE: can it run here, how, and what is missing.
fn image_checks(path: &Path) -> Vec<Check> {
    let image = match Image::open(path) {
        Ok(image) => image,
        Err(e) => return vec![fail("image", e.to_string(), None)],
    };
    let facts = match image::examine(&image, "/sbin/init", None, InitUse::LookOnly) {
        Ok(facts) => facts,
        Err(e) => return vec![fail("image", e.to_string(), None)],
    };
    let Some(arch) = facts.arch else {
        return vec![fail(
            "image",
            format!(
                "{}: no ELF program to tell its architecture",
                path.display()
            ),
            Some("rootrun --arch NAME"),
        )];
    };
    let mut checks = Vec::new();
    let how = super::host_binfmt(&facts)
        .map_err(|e| e.to_string())
        .and_then(|(binfmt, _)| facts.emulation(&binfmt).map_err(|e| e.to_string()));
    match how {
        Ok(emulation) => checks.push(Check {
            check: "image".into(),
            status: Status::Ok,
            detail: format!("{}: {}", path.display(), emulation.describe(arch)),
            fix: None,
        }),
        Err(e) => checks.push(fail("image", format!("{}: {e}", path.display()), None)),
    }
    if let Err(e) = entry::check("/sbin/init", &image) {
        checks.push(Check {
            check: "image init".into(),
            status: Status::Warn,
            detail: format!("{e}: it can run commands (-- CMD), not boot"),
            fix: Some("rootrun --init PATH".into()),
        });
    }
    checks
}
