//! `rootrun inspect IMAGE [--json]`: what rootrun learns about an image without
//! mounting it, and how this host would run it. Needs no privileges beyond
//! reading the image (and binfmt_misc, when it is mounted).

use std::fmt::Write as _;
use std::path::PathBuf;

use serde::Serialize;

use crate::arch::{self, Arch, ArchNames, Binfmt, Emulation, Entry, Linkage, BINFMT_DIR};
use crate::cli::InspectArgs;
use crate::error::Error;
use crate::image::{self, Image, ImageFacts, InitFlavor};
use crate::notice;
use crate::plan::{emulated_systemd, EmulatedSystemd};

#[derive(Debug, Serialize)]
pub struct Report {
    pub image: PathBuf,
    /// What the file is and how rootrun read it ("SquashFS image", "ext4
    /// file system (mounted read-only)", "xz-compressed tar archive (...)").
    pub format: String,
    #[serde(flatten)]
    pub facts: ImageFacts,
    pub names: Option<ArchNames>,
    /// How a boot would ask this init to halt (before any emulator's
    /// real-time signal shift, which `run` measures).
    pub halt: String,
    /// The names in the container's /dev a boot binds rootrun's console
    /// to, for the image's gettys; empty when /dev is a symlink.
    pub console_ttys: Vec<String>,
    /// Disagreements between --arch, metadata.yaml and the ELF evidence.
    pub warnings: Vec<String>,
    pub host: HostView,
}

/// How this host would run the image.
#[derive(Debug, Serialize)]
pub struct HostView {
    pub arch: ArchNames,
    pub binfmt_mounted: bool,
    /// The entry the kernel would use, if any.
    pub handler: Option<Entry>,
    pub emulation: Option<Emulation>,
    /// A systemd booted under that emulation: what rootrun does about it
    /// and what cannot work (plan::systemd).
    pub systemd: Option<EmulatedSystemd>,
    /// What is missing, with the fix.
    pub problem: Option<String>,
}

pub fn run(args: &InspectArgs) -> Result<u8, Error> {
    let image = Image::open(&args.image)?;
    let mut facts = image::examine(&image, &args.init, args.arch, image::InitUse::LookOnly)
        .map_err(|e| Error::Detect(Box::new(e)))?;
    if let Some(path) = &args.metadata {
        let metadata = image::metadata_from_tarball(path)
            .map_err(|e| Error::Usage(format!("--metadata {}: {e}", path.display())))?;
        facts.use_metadata(metadata);
    }
    let (binfmt, mounted) = super::host_binfmt(&facts)?;
    let host = HostView {
        binfmt_mounted: mounted,
        ..host_view(&facts, &binfmt)
    };
    let report = Report {
        image: args.image.clone(),
        format: image.describe(),
        names: facts.arch.map(Arch::names),
        console_ttys: if facts.dev_link.is_none() {
            image::console_ttys(&facts.login_ttys(&crate::sys::proc::kernel_cmdline()))
        } else {
            Vec::new()
        },
        halt: facts.init_flavor.halt_method().describe(),
        warnings: facts.warnings(),
        facts,
        host,
    };
    let text = if args.json {
        serde_json::to_string_pretty(&report)
            .map_err(|e| Error::Usage(format!("cannot encode the report as JSON: {e}")))?
            + "\n"
    } else {
        render(&report)
    };
    notice::stdout(&text)?;
    Ok(0)
}

fn host_view(facts: &ImageFacts, binfmt: &Binfmt) -> HostView {
    let host = Arch::host();
    let (mounted, handler) = match binfmt {
        Binfmt::NotMounted => (false, None),
        Binfmt::Mounted { entries, .. } => (
            true,
            arch::select(entries, &facts.head, &facts.init).cloned(),
        ),
    };
    let (emulation, problem) = match (facts.arch, facts.emulation(binfmt)) {
        (None, _) => (None, Some("no ELF file found in the image".to_owned())),
        (Some(_), Ok(emulation)) => (Some(emulation), None),
        (Some(_), Err(err)) => (None, Some(err.to_string())),
    };
    let systemd = emulation.as_ref().and_then(|emulation| {
        let qemu = match facts.systemd_version {
            Some(_) => emulation.emulator_file().and_then(arch::probe_version),
            None => None,
        };
        emulated_systemd(facts.systemd_version, *emulation != Emulation::Native, qemu)
    });
    HostView {
        arch: host.names(),
        binfmt_mounted: mounted,
        handler,
        emulation,
        systemd,
        problem,
    }
}

/// Where a boot's login prompt comes from: "/dev/console and /dev/tty1
/// (gettys in /etc/inittab: tty1 tty2)".
fn console_row(report: &Report) -> String {
    let facts = &report.facts;
    let mut text = String::from("/dev/console");
    for tty in &report.console_ttys {
        text.push_str(&format!(" and /dev/{tty}"));
    }
    match (&facts.dev_link, facts.getty_ttys.is_empty()) {
        (Some(link), _) => text.push_str(&format!(
            " (/dev is a symlink to {link}: no tty gets the console)"
        )),
        // openrc-init runs its gettys as services (agetty.tty1 in a
        // runlevel), whatever an inittab left in the image says.
        (None, _) if facts.init_flavor == InitFlavor::OpenRc => text.push_str(
            " (openrc-init reads no /etc/inittab: gettys are agetty.TTY services in a runlevel)",
        ),
        (None, _) if !facts.init_flavor.reads_inittab() => {
            text.push_str(&format!(" ({} reads no /etc/inittab)", facts.init_flavor))
        }
        (None, true) => text.push_str(" (no getty lines in /etc/inittab)"),
        (None, false) => text.push_str(&format!(
            " (gettys in /etc/inittab: {})",
            facts.getty_ttys.join(" ")
        )),
    }
    if facts.askconsole && facts.dev_link.is_none() {
        text.push_str(
            "; procd's askconsole runs on the kernel command line's console= (the host's)",
        );
    }
    text
}

fn render(report: &Report) -> String {
    let facts = &report.facts;
    let mut out = String::new();
    let mut row = |key: &str, value: String| {
        let _ = writeln!(out, "{key:<13}{}", notice::printable(&value));
    };
    row("image", report.image.display().to_string());
    row("format", report.format.clone());
    if let Some(sq) = &facts.squashfs {
        row(
            "squashfs",
            format!(
                "{} compression, {} KiB blocks, {} bytes used of {}, {} inodes",
                sq.compression,
                sq.block_size / 1024,
                sq.bytes_used,
                sq.file_size,
                sq.inode_count
            ),
        );
    }
    let mut flavor = facts.init_flavor.to_string();
    if let Some(version) = facts.systemd_version {
        flavor.push_str(&format!(" {version}"));
    }
    if let Some(services) = facts.init_services {
        flavor.push_str(&format!(", services by {services}"));
    }
    let init = match &facts.init_resolved {
        Some(r) if r.path != facts.init => format!("{} -> {} ({flavor})", facts.init, r.path),
        Some(_) => format!("{} ({flavor})", facts.init),
        None => format!("{} (missing)", facts.init),
    };
    row("init", init);
    row("halt", report.halt.clone());
    row("console", console_row(report));
    match (facts.arch, &report.names) {
        (Some(arch), Some(n)) => row(
            "architecture",
            format!(
                "{} (uname {}, Debian {}, QEMU {}, LXD {}){}",
                arch.qemu(),
                n.uname,
                n.debian.unwrap_or("-"),
                n.qemu,
                n.lxd.unwrap_or("-"),
                if facts.arch_overridden {
                    ", from --arch (no ELF file to read)"
                } else {
                    ""
                }
            ),
        ),
        _ => row("architecture", "unknown".into()),
    }
    if let Some(e) = &facts.evidence {
        let path = if e.resolved == e.file {
            e.file.clone()
        } else {
            format!("{} -> {}", e.file, e.resolved)
        };
        row(
            "evidence",
            format!(
                "{path}: ELF{} {}-endian, e_machine {}, e_flags {:#x}{}",
                e.elf.class,
                if e.elf.big_endian { "big" } else { "little" },
                e.elf.machine,
                e.elf.flags,
                if e.elf.flag_notes.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", e.elf.flag_notes.join(", "))
                }
            ),
        );
        row(
            "loader",
            match &e.elf.linkage {
                Linkage::Static => "none (statically linked)".into(),
                Linkage::Dynamic { interp: Some(path) } => path.display().to_string(),
                Linkage::Dynamic { interp: None } | Linkage::Unknown => {
                    "unknown (beyond the bytes read)".into()
                }
            },
        );
    }
    for probe in &facts.probes {
        row("not used", format!("{}: {}", probe.file, probe.result));
    }
    match &facts.metadata {
        None => row("metadata", "none (/metadata.yaml absent)".into()),
        Some(m) => {
            let claimed = m
                .architecture
                .as_ref()
                .or(m.properties.architecture.as_ref());
            let os = m.properties.os.as_deref().unwrap_or("-");
            let release = m.properties.release.as_deref().unwrap_or("-");
            row(
                "metadata",
                format!(
                    "architecture {}, os {os}, release {release}",
                    claimed.map_or("-", |s| s.as_str())
                ),
            );
        }
    }
    for warning in &report.warnings {
        row("WARNING", warning.clone());
    }
    let host = &report.host;
    row("host", host.arch.uname.to_owned());
    if let Some(entry) = &host.handler {
        row(
            "binfmt",
            format!(
                "{}: {} (flags {})",
                entry.name,
                entry.interpreter.display(),
                entry.flags.letters()
            ),
        );
    } else if !host.binfmt_mounted {
        row("binfmt", format!("binfmt_misc not mounted at {BINFMT_DIR}"));
    }
    match (&host.emulation, facts.arch) {
        (Some(emulation), Some(arch)) => row("runs as", emulation.describe(arch)),
        _ => row(
            "runs as",
            format!(
                "cannot run: {}",
                host.problem.as_deref().unwrap_or("unknown")
            ),
        ),
    }
    if let Some(systemd) = &host.systemd {
        row("systemd", systemd.describe());
        if let Some(limitation) = &systemd.limitation {
            row("WARNING", limitation.clone());
        }
    }
    out
}
