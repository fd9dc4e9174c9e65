//! `rootrun export IMAGE OUTDIR`: what LXD or Incus need to import the image
//! as a split image (this metadata tarball beside the SquashFS), and, when
//! this host's handler for the image's architecture lacks the `F` flag, the
//! profile whose `disk` device bind-mounts the interpreter read-only (what
//! rootrun itself does for such a handler).
//!
//! metadata.yaml follows LXD's image format (doc/image-handling.md):
//! `architecture` in LXD's naming, `creation_date` in seconds since the
//! epoch, `properties` (os, release, description, architecture) from the
//! image's os-release, and `templates` (none).

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use serde::Serialize;

use crate::arch::{Arch, Emulation};
use crate::cli::ExportArgs;
use crate::error::Error;
use crate::image::{self, Image};
use crate::notice;

/// LXD's metadata.yaml.
#[derive(Debug, Serialize, PartialEq)]
pub struct LxdMetadata {
    pub architecture: String,
    pub creation_date: u64,
    pub properties: BTreeMap<String, String>,
    pub templates: BTreeMap<String, String>,
}

/// An LXD profile with one `disk` device (`lxc profile edit NAME < FILE`).
#[derive(Debug, Serialize, PartialEq)]
pub struct LxdProfile {
    pub description: String,
    pub config: BTreeMap<String, String>,
    pub devices: BTreeMap<String, BTreeMap<String, String>>,
}

pub fn run(args: &ExportArgs) -> Result<u8, Error> {
    let image = Image::open(&args.image)?;
    let Some(squashfs) = image.squashfs_facts() else {
        return Err(Error::Image {
            path: args.image.clone(),
            problem: "not a SquashFS image: LXD imports a SquashFS root beside the metadata".into(),
        });
    };
    let facts = image::examine(&image, "/sbin/init", args.arch, image::InitUse::LookOnly)
        .map_err(|e| Error::Detect(Box::new(e)))?;
    let arch = facts.arch.ok_or_else(|| Error::Image {
        path: args.image.clone(),
        problem: "its architecture is unknown (give --arch)".into(),
    })?;
    let lxd_arch = arch.lxd().ok_or_else(|| Error::Image {
        path: args.image.clone(),
        problem: format!("LXD has no name for {arch}"),
    })?;
    let os_release = ["/etc/os-release", "/usr/lib/os-release"]
        .iter()
        .find_map(|path| image.read_head(path, 64 * 1024).ok())
        .map(|bytes| parse_os_release(&String::from_utf8_lossy(&bytes)))
        .unwrap_or_default();
    let metadata = metadata(lxd_arch, u64::from(squashfs.mkfs_time), &os_release);
    let (binfmt, _) = super::host_binfmt(&facts)?;
    let profile = match facts.emulation(&binfmt) {
        Ok(Emulation::BindMount {
            interpreter,
            host_file,
            ..
        }) => Some(profile(arch, &host_file, &interpreter)),
        _ => None,
    };

    make_empty_dir(&args.dir)?;
    let yaml = to_yaml(&metadata)?;
    let tarball = args.dir.join("metadata.tar.gz");
    write_tarball(&tarball, yaml.as_bytes())
        .map_err(|e| Error::Usage(format!("write {}: {e}", tarball.display())))?;
    let mut wrote = vec![tarball.display().to_string()];
    if let Some(profile) = &profile {
        let path = args.dir.join("profile.yaml");
        fs::write(&path, to_yaml(profile)?)
            .map_err(|e| Error::Usage(format!("write {}: {e}", path.display())))?;
        wrote.push(path.display().to_string());
    }
    notice::stdout(&(wrote.join("\n") + "\n"))?;
    let image_path = args.image.display();
    let import = format!(
        "lxc image import {} {image_path} --alias NAME",
        args.dir.join("metadata.tar.gz").display()
    );
    let launch = match &profile {
        Some(_) => format!(
            "lxc profile create qemu-{q} && lxc profile edit qemu-{q} < {}; \
             lxc launch NAME c1 -p default -p qemu-{q}",
            args.dir.join("profile.yaml").display(),
            q = arch.qemu()
        ),
        None => "lxc launch NAME c1 (this host's handler has the F flag: no profile needed)".into(),
    };
    notice::note(&format!("then: {import}; {launch}"));
    Ok(0)
}

/// metadata.yaml for an image of `lxd_arch` made at `created`.
pub fn metadata(
    lxd_arch: &str,
    created: u64,
    os_release: &BTreeMap<String, String>,
) -> LxdMetadata {
    let mut properties = BTreeMap::new();
    properties.insert("architecture".into(), lxd_arch.to_owned());
    if let Some(os) = os_release.get("ID").or(os_release.get("NAME")) {
        properties.insert("os".into(), os.clone());
    }
    if let Some(release) = os_release
        .get("VERSION_ID")
        .or(os_release.get("VERSION_CODENAME"))
        .or(os_release.get("VERSION"))
    {
        properties.insert("release".into(), release.clone());
    }
    let name = os_release
        .get("PRETTY_NAME")
        .or(os_release.get("NAME"))
        .cloned()
        .unwrap_or_else(|| "root filesystem image".into());
    properties.insert("description".into(), format!("{name} ({lxd_arch})"));
    LxdMetadata {
        architecture: lxd_arch.to_owned(),
        creation_date: created,
        properties,
        templates: BTreeMap::new(),
    }
}

/// The profile that bind-mounts `host_file` read-only at the registered
/// interpreter path inside the container.
pub fn profile(arch: Arch, host_file: &Path, interpreter: &Path) -> LxdProfile {
    let mut disk = BTreeMap::new();
    disk.insert("type".into(), "disk".into());
    disk.insert("source".into(), host_file.display().to_string());
    disk.insert("path".into(), interpreter.display().to_string());
    disk.insert("readonly".into(), "true".into());
    let mut devices = BTreeMap::new();
    devices.insert(format!("qemu-{}", arch.qemu()), disk);
    LxdProfile {
        description: format!(
            "QEMU user-mode emulator for {arch} containers: this host's binfmt_misc handler \
             has no F flag, so the interpreter must exist inside the container"
        ),
        config: BTreeMap::new(),
        devices,
    }
}

/// os-release(5): `KEY=value` lines, values optionally quoted.
pub fn parse_os_release(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter_map(|line| {
            let (key, value) = line.trim().split_once('=')?;
            if key.starts_with('#') || key.is_empty() {
                return None;
            }
            let value = value.trim();
            let value = value
                .strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .or_else(|| value.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')))
                .unwrap_or(value);
            Some((key.to_owned(), value.replace("\\\"", "\"")))
        })
        .collect()
}

fn to_yaml(value: &impl Serialize) -> Result<String, Error> {
    crate::yaml::to_string(value).map_err(|e| Error::Usage(format!("cannot write YAML: {e}")))
}

fn make_empty_dir(dir: &Path) -> Result<(), Error> {
    let used = fs::read_dir(dir).is_ok_and(|mut entries| entries.next().is_some());
    if used || (dir.exists() && !dir.is_dir()) {
        return Err(Error::Usage(format!(
            "{}: give an empty directory or a new path",
            dir.display()
        )));
    }
    fs::create_dir_all(dir).map_err(|e| Error::Usage(format!("{}: {e}", dir.display())))
}

/// metadata.tar.gz holding metadata.yaml (mode 0644, owned by root).
fn write_tarball(path: &Path, yaml: &[u8]) -> std::io::Result<()> {
    let file = fs::File::create(path)?;
    let gz = flate2::write::GzEncoder::new(file, flate2::Compression::default());
    let mut tar = tar::Builder::new(gz);
    let mut header = tar::Header::new_gnu();
    header.set_size(yaml.len() as u64);
    header.set_mode(0o644);
    header.set_uid(0);
    header.set_gid(0);
    header.set_mtime(crate::state::now());
    header.set_entry_type(tar::EntryType::Regular);
    tar.append_data(&mut header, "metadata.yaml", yaml)?;
    tar.into_inner()?.finish()?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn os_release_values_lose_their_quotes() {
        let parsed = parse_os_release(
            "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nID=debian\nVERSION_ID='12'\n# x=y\n",
        );
        assert_eq!(parsed["PRETTY_NAME"], "Debian GNU/Linux 12 (bookworm)");
        assert_eq!(parsed["ID"], "debian");
        assert_eq!(parsed["VERSION_ID"], "12");
        assert!(!parsed.contains_key("# x"));
    }

    #[test]
    fn metadata_follows_lxds_image_format() {
        let os = parse_os_release("ID=debian\nVERSION_ID=\"12\"\nPRETTY_NAME=\"Debian 12\"\n");
        let yaml = to_yaml(&metadata("aarch64", 1_700_000_000, &os)).unwrap();
        let back: crate::yaml::Value = crate::yaml::from_slice(yaml.as_bytes()).unwrap();
        assert_eq!(back["architecture"].as_str(), Some("aarch64"));
        assert_eq!(back["creation_date"].as_u64(), Some(1_700_000_000));
        assert_eq!(back["properties"]["os"].as_str(), Some("debian"));
        assert_eq!(back["properties"]["release"].as_str(), Some("12"));
        assert_eq!(
            back["properties"]["description"].as_str(),
            Some("Debian 12 (aarch64)")
        );
        assert!(back["templates"].as_mapping().is_some_and(|m| m.is_empty()));
    }

    #[test]
    fn the_profile_has_one_read_only_disk_device_at_the_registered_path() {
        let p = profile(
            Arch::Aarch64,
            Path::new("/usr/bin/qemu-aarch64-static"),
            Path::new("/usr/bin/qemu-aarch64-static"),
        );
        let yaml = to_yaml(&p).unwrap();
        let back: crate::yaml::Value = crate::yaml::from_slice(yaml.as_bytes()).unwrap();
        let device = &back["devices"]["qemu-aarch64"];
        assert_eq!(device["type"].as_str(), Some("disk"));
        assert_eq!(
            device["path"].as_str(),
            Some("/usr/bin/qemu-aarch64-static")
        );
        assert_eq!(
            device["source"].as_str(),
            Some("/usr/bin/qemu-aarch64-static")
        );
        assert_eq!(device["readonly"].as_str(), Some("true"));
    }
}
