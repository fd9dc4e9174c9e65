//! What rootrun learns about an image before mounting it: its init, the CPU
//! architecture (from the ELF header of init, or of a fallback binary), and
//! what LXD's metadata.yaml claims. Reads through backhand only the blocks
//! that hold the needed inodes and headers.

use serde::Serialize;

use crate::arch::{self, Arch, ElfFacts};
use crate::image::{
    gettys, Image, ImageError, InitFlavor, Metadata, Resolved, Services, SquashfsFacts,
};

/// Tried in order when init is missing or not ELF (a script).
pub const FALLBACKS: [&str; 3] = ["/bin/busybox", "/bin/sh", "/usr/bin/env"];
/// Enough for the ELF header and, usually, the program headers (PT_INTERP).
const HEAD_BYTES: usize = 4096;
/// systemd's PID 1 names the shared library it links (with the version in
/// its name) in its dynamic string table, 13 KB into Debian 12's and 13's
/// binaries: the first 16 KiB are looked at first (decoding a block's head
/// costs in proportion to its length: 64 KiB of xz was a third of `rootrun
/// inspect` on a Debian image), and 64 KiB leave room.
const SYSTEMD_HEAD_BYTES: [usize; 2] = [16 * 1024, 64 * 1024];
/// binfmt_misc looks at most at the first BINPRM_BUF_SIZE bytes.
const BINPRM_BUF_SIZE: usize = 256;

/// The file whose ELF header decided the architecture.
#[derive(Debug, Clone, Serialize)]
pub struct Evidence {
    pub file: String,
    pub resolved: String,
    pub elf: ElfFacts,
}

/// One candidate looked at, and what it gave.
#[derive(Debug, Clone, Serialize)]
pub struct Probe {
    pub file: String,
    pub result: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct ImageFacts {
    pub init: String,
    pub init_resolved: Option<Resolved>,
    pub init_flavor: InitFlavor,
    /// What starts the services, when init leaves that to another program
    /// rootrun knows (OpenRC under sysvinit).
    pub init_services: Option<Services>,
    /// systemd's major version, from the name of the shared library its
    /// PID 1 links (`libsystemd-shared-257.so`); None for other inits or
    /// when the name is not found.
    pub systemd_version: Option<u32>,
    /// None when no candidate exists at all (boot then fails with 127).
    pub arch: Option<Arch>,
    /// True when `--arch` decided it.
    pub arch_overridden: bool,
    pub evidence: Option<Evidence>,
    pub probes: Vec<Probe>,
    pub metadata: Option<Metadata>,
    /// metadata.yaml's architecture when it disagrees with the ELF evidence.
    pub metadata_mismatch: Option<String>,
    /// Why metadata.yaml could not be read (it is informational: a warning).
    pub metadata_problem: Option<String>,
    /// An `--arch` that the ELF evidence contradicts (the ELF wins: the
    /// kernel picks the handler from the binary itself).
    pub arch_ignored: Option<Arch>,
    pub squashfs: Option<SquashfsFacts>,
    /// The terminals getty lines of /etc/inittab wait on (`gettys`).
    pub getty_ttys: Vec<String>,
    /// /etc/inittab has procd's `askconsole` line (`gettys::has_askconsole`).
    pub askconsole: bool,
    /// Where /dev leads when it is a symlink in the image: then rootrun
    /// binds nothing into it (see `plan::console_ttys`).
    pub dev_link: Option<String>,
    /// The first bytes of the deciding file, for binfmt_misc matching.
    #[serde(skip)]
    pub head: Vec<u8>,
}

#[derive(Debug, thiserror::Error)]
pub enum DetectError {
    #[error(transparent)]
    Image(#[from] ImageError),
    #[error(
        "cannot tell the image's CPU architecture: {}; name it with --arch (e.g. --arch aarch64)",
        probes.iter().map(|p| format!("{}: {}", p.file, p.result)).collect::<Vec<_>>().join("; ")
    )]
    NoElf { probes: Vec<Probe> },
}

/// What init is to the run: booted, or only looked at (`inspect` reports
/// whatever it finds), or not run at all (command mode runs another
/// program: nothing about init's console is read).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InitUse {
    Boot,
    LookOnly,
    Command,
}

/// The architecture `metadata` claims when the ELF evidence disagrees.
fn mismatch(metadata: Option<&Metadata>, evidence: Option<&Evidence>) -> Option<String> {
    let m = metadata?;
    let claimed = m
        .architecture
        .as_ref()
        .or(m.properties.architecture.as_ref())?;
    let actual = evidence?.elf.arch;
    (!actual.answers_to(claimed)).then(|| claimed.clone())
}

impl ImageFacts {
    /// `--metadata FILE`: a split image's metadata.tar.gz, read instead of
    /// the image's own /metadata.yaml, and cross-checked the same way.
    pub fn use_metadata(&mut self, metadata: Metadata) {
        self.metadata_mismatch = mismatch(Some(&metadata), self.evidence.as_ref());
        self.metadata = Some(metadata);
        self.metadata_problem = None;
    }
}

pub fn examine(
    image: &Image,
    init: &str,
    arch_override: Option<Arch>,
    init_use: InitUse,
) -> Result<ImageFacts, DetectError> {
    let init_resolved = match image.resolve(init) {
        Ok(resolved) => Some(resolved),
        // A path through a file (`/sbin` a regular file) is as missing to
        // exec(2) as a missing one: 127 later, like any missing init.
        Err(ImageError::NotFound { .. } | ImageError::NotADirectory { .. }) => None,
        // A symlink loop or a corrupt directory at the init to boot is an
        // error, not a reason to guess from another file; a command that
        // does not run init only notes it (it is one of the probes below).
        Err(err) if init_use == InitUse::Boot => return Err(err.into()),
        Err(_) => None,
    };
    let exists = |path: &str| image.resolve(path).is_ok();
    let init_flavor = init_resolved
        .as_ref()
        .map(|r| InitFlavor::from_resolved_path(&r.path))
        .unwrap_or_default()
        .refined(exists);
    let init_services = Services::of(init_flavor, exists);
    // Only a boot of systemd under emulation needs its version (inspect
    // shows it); it is in the head of init's binary, read once for both.
    let wants_version = init_use != InitUse::Command && init_flavor == InitFlavor::Systemd;
    let init_head_bytes = if wants_version {
        SYSTEMD_HEAD_BYTES[0]
    } else {
        HEAD_BYTES
    };

    let mut probes = Vec::new();
    let mut evidence = None;
    let mut head = Vec::new();
    let mut any_exists = false;
    let mut init_probed = false;
    for (i, file) in std::iter::once(init).chain(FALLBACKS).enumerate() {
        let head_bytes = if i == 0 { init_head_bytes } else { HEAD_BYTES };
        match probe(image, file, head_bytes) {
            Ok((found, bytes)) => {
                head = bytes;
                evidence = Some(found);
                init_probed = i == 0;
                break;
            }
            Err((exists, result)) => {
                any_exists |= exists;
                probes.push(Probe {
                    file: file.to_owned(),
                    result,
                });
            }
        }
    }
    // The ELF header wins over --arch: exec(2) hands the binary to the
    // handler matching its own header, whatever the user believes it is.
    let arch_ignored = match (arch_override, &evidence) {
        (Some(wanted), Some(found)) if wanted != found.elf.arch => Some(wanted),
        _ => None,
    };
    let arch = match (arch_override, &evidence) {
        (_, Some(found)) => Some(found.elf.arch),
        (Some(arch), None) => Some(arch),
        (None, None) if any_exists => return Err(DetectError::NoElf { probes }),
        (None, None) => None,
    };
    let systemd_version = match &init_resolved {
        Some(resolved) if wants_version => {
            let from_probe = init_probed.then(|| systemd_version(&head)).flatten();
            from_probe.or_else(|| {
                let more = image
                    .read_head(&resolved.path, SYSTEMD_HEAD_BYTES[1])
                    .ok()?;
                systemd_version(&more)
            })
        }
        _ => None,
    };
    if evidence.is_none() {
        // binfmt_misc must be matched against what the override names.
        head = arch
            .map(|a| arch::qemu_pattern(a).magic)
            .unwrap_or_default();
    }
    head.truncate(BINPRM_BUF_SIZE);

    let (metadata, metadata_problem) = match image.metadata() {
        Ok(metadata) => (metadata, None),
        // LXD's metadata is informational here: a broken one is worth a
        // warning, not a refusal to boot.
        Err(err @ (ImageError::Metadata { .. } | ImageError::TooLarge { .. })) => {
            (None, Some(err.to_string()))
        }
        Err(err) => return Err(err.into()),
    };
    let metadata_mismatch = mismatch(metadata.as_ref(), evidence.as_ref());
    // Its gettys say where a boot's login prompt is. A small file, but it
    // can sit deep in a shared fragment block (69 KiB into a 128 KiB xz one
    // in tests/bench/realistic-image.sh: that much LZMA decoded to reach
    // it), so it is read only when init will read it.
    let inittab = if init_use != InitUse::Command && init_flavor.reads_inittab() {
        image
            .read_head("/etc/inittab", gettys::INITTAB_MAX)
            .unwrap_or_default()
    } else {
        Vec::new()
    };
    Ok(ImageFacts {
        init: init.to_owned(),
        init_resolved,
        init_flavor,
        init_services,
        systemd_version,
        arch,
        arch_overridden: arch_override.is_some() && evidence.is_none(),
        evidence,
        probes,
        metadata,
        metadata_mismatch,
        metadata_problem,
        arch_ignored,
        squashfs: image.squashfs_facts(),
        getty_ttys: gettys::getty_ttys(&inittab),
        askconsole: gettys::has_askconsole(&inittab),
        dev_link: image
            .resolve("/dev")
            .ok()
            .map(|dev| dev.path)
            .filter(|path| path != "/dev"),
        head,
    })
}

/// The major version in the first `libsystemd-shared-NNN` of `binary`:
/// systemd installs its shared code as libsystemd-shared-<version>.so
/// (meson's `shared-lib-tag`, the full version upstream, e.g. `257.13`,
/// the major one on Debian) and PID 1 links it by that name.
pub fn systemd_version(binary: &[u8]) -> Option<u32> {
    const NAME: &[u8] = b"libsystemd-shared-";
    let at = binary.windows(NAME.len()).position(|w| w == NAME)? + NAME.len();
    let digits: Vec<u8> = binary[at..]
        .iter()
        .take_while(|b| b.is_ascii_digit())
        .copied()
        .collect();
    std::str::from_utf8(&digits).ok()?.parse().ok()
}

/// The ELF facts of `file`, or (whether it exists, why it does not count).
fn probe(
    image: &Image,
    file: &str,
    head_bytes: usize,
) -> Result<(Evidence, Vec<u8>), (bool, String)> {
    // One walk finds the file and reads its head. More than HEAD_BYTES is
    // a wish (systemd's version): a file whose further blocks cannot be
    // read is judged on its first ones, as ever.
    let (resolved, head) = match image.resolve_and_read_head(file, head_bytes) {
        Err(e) if head_bytes > HEAD_BYTES && !matches!(e, ImageError::NotFound { .. }) => {
            image.resolve_and_read_head(file, HEAD_BYTES)
        }
        other => other,
    }
    .map_err(|e| match e {
        ImageError::NotFound { .. } => (false, "not found".to_owned()),
        other => (true, other.to_string()),
    })?;
    // Judged on the same bytes whatever more was read.
    match arch::identify(&head[..head.len().min(HEAD_BYTES)]) {
        Ok(elf) => Ok((
            Evidence {
                file: file.to_owned(),
                resolved: resolved.path,
                elf,
            },
            head,
        )),
        Err(arch::ArchError::NotElf) if head.starts_with(b"#!") => {
            Err((true, format!("a script ({})", first_line(&head))))
        }
        Err(err) => Err((true, err.to_string())),
    }
}

/// A script's first line, for messages: at most 80 bytes (control
/// characters are escaped where messages are written, `notice`).
fn first_line(head: &[u8]) -> String {
    let line = head.split(|&b| b == b'\n').next().unwrap_or_default();
    String::from_utf8_lossy(&line[..line.len().min(80)]).into_owned()
}

impl ImageFacts {
    /// The terminals the image's logins run on: its inittab's gettys, and
    /// the one procd's `askconsole` takes from the kernel command line
    /// `cmdline` (the host's, in a container).
    pub fn login_ttys(&self, cmdline: &str) -> Vec<String> {
        let mut ttys = self.getty_ttys.clone();
        if let Some(tty) = self
            .askconsole
            .then(|| gettys::askconsole_tty(cmdline))
            .flatten()
        {
            if !ttys.contains(&tty) {
                ttys.push(tty);
            }
        }
        ttys
    }

    /// How this host runs the image, given its binfmt_misc state. An image
    /// without any ELF file is taken as native (it fails later with 127).
    pub fn emulation(
        &self,
        binfmt: &arch::Binfmt,
    ) -> Result<arch::Emulation, arch::EmulationError> {
        let Some(arch) = self.arch else {
            return Ok(arch::Emulation::Native);
        };
        // The path as exec sees it: extension entries match on its name.
        arch::decide(
            arch,
            &self.head,
            &self.init,
            Arch::host(),
            binfmt,
            &arch::inspect_interpreter,
        )
    }

    /// What the user should know before trusting the plan: metadata.yaml
    /// or `--arch` disagreeing with the ELF evidence, an unreadable
    /// metadata.yaml.
    pub fn warnings(&self) -> Vec<String> {
        let mut warnings = Vec::new();
        if let (Some(wanted), Some(evidence)) = (self.arch_ignored, &self.evidence) {
            warnings.push(format!(
                "--arch {} ({}) contradicts {}, which is {} ELF (e_machine {}); \
                 going by the ELF header, as the kernel does",
                wanted.qemu(),
                wanted,
                evidence.file,
                evidence.elf.arch,
                evidence.elf.machine
            ));
        }
        if let (Some(claimed), Some(evidence)) = (&self.metadata_mismatch, &self.evidence) {
            warnings.push(format!(
                "metadata.yaml says architecture {claimed:?}, but {} is {} ELF; \
                 going by the ELF header",
                evidence.file, evidence.elf.arch
            ));
        }
        if let Some(problem) = &self.metadata_problem {
            warnings.push(format!("metadata.yaml ignored: {problem}"));
        }
        warnings
    }
}
