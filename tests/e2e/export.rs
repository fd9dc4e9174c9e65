//! `rootrun export`: the files LXD or Incus import, checked against LXD's
//! documented image and profile formats (no LXD needed): metadata.yaml in
//! metadata.tar.gz, and the profile with the interpreter's disk device
//! exactly when this host's handler lacks the F flag.

use std::fs;
use std::path::Path;
use std::process::Command;

use rootrun::arch::Arch;
use rootrun::yaml::Value;

use crate::harness::{rootrun, text, Frame};

fn metadata_of(dir: &Path) -> Value {
    let listing = Command::new("tar")
        .arg("-tzvf")
        .arg(dir.join("metadata.tar.gz"))
        .output()
        .unwrap();
    let listing = text(&listing.stdout);
    assert_eq!(listing.lines().count(), 1, "{listing}");
    assert!(listing.starts_with("-rw-r--r-- 0/0"), "{listing}");
    assert!(listing.trim_end().ends_with(" metadata.yaml"), "{listing}");
    let yaml = Command::new("tar")
        .arg("-xzOf")
        .arg(dir.join("metadata.tar.gz"))
        .arg("metadata.yaml")
        .output()
        .unwrap();
    rootrun::yaml::from_slice(&yaml.stdout).expect("metadata.yaml is YAML")
}

#[test]
fn export_writes_lxds_metadata_and_a_profile_only_for_a_handler_without_f() {
    let Some(frame) = Frame::setup("export").emulation().exclusive().start() else {
        return;
    };
    let extra = frame.path("os-release-tree");
    fs::create_dir_all(extra.join("etc")).unwrap();
    fs::write(
        extra.join("etc/os-release"),
        "PRETTY_NAME=\"Test OS 3.1\"\nID=testos\nVERSION_ID=\"3.1\"\n",
    )
    .unwrap();
    let Some(image) = frame.busybox_with("arm64", &extra) else {
        return;
    };

    // Debian's handler has F: no profile.
    let out_dir = frame.path("export-f");
    let out = rootrun()
        .arg("export")
        .arg(&image)
        .arg(&out_dir)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let meta = metadata_of(&out_dir);
    assert_eq!(meta["architecture"].as_str(), Some("aarch64"));
    assert!(meta["creation_date"]
        .as_u64()
        .is_some_and(|t| t > 1_600_000_000));
    assert_eq!(meta["properties"]["os"].as_str(), Some("testos"));
    assert_eq!(meta["properties"]["release"].as_str(), Some("3.1"));
    assert_eq!(
        meta["properties"]["description"].as_str(),
        Some("Test OS 3.1 (aarch64)")
    );
    assert!(!out_dir.join("profile.yaml").exists());
    // The tarball reads back as the image's metadata (`--metadata`).
    let tarball = out_dir.join("metadata.tar.gz");
    let out = rootrun()
        .args(["inspect", "--json", "--metadata"])
        .arg(&tarball)
        .arg(&image)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["metadata"]["properties"]["os"], "testos");
    assert_eq!(report["metadata_mismatch"], serde_json::Value::Null);
    // A tarball claiming another architecture: the ELF wins, with a warning.
    let wrong = frame.path("wrong.tar.gz");
    let mut tar = tar::Builder::new(flate2::write::GzEncoder::new(
        fs::File::create(&wrong).unwrap(),
        flate2::Compression::default(),
    ));
    let yaml = b"architecture: x86_64\n";
    let mut header = tar::Header::new_gnu();
    header.set_size(yaml.len() as u64);
    header.set_mode(0o644);
    tar.append_data(&mut header, "./metadata.yaml", &yaml[..])
        .unwrap();
    tar.into_inner().unwrap().finish().unwrap();
    let out = rootrun()
        .args(["inspect", "--json", "--metadata"])
        .arg(&wrong)
        .arg(&image)
        .output()
        .unwrap();
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["metadata_mismatch"], "x86_64", "{report}");
    assert_eq!(report["arch"], "aarch64");
    let out = rootrun()
        .args(["inspect", "--metadata", "/etc/hostname"])
        .arg(&image)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(125));
    assert!(
        text(&out.stderr).contains("not a tar archive"),
        "{}",
        text(&out.stderr)
    );
    // A used directory is refused.
    let again = rootrun()
        .arg("export")
        .arg(&image)
        .arg(&out_dir)
        .output()
        .unwrap();
    assert_eq!(again.status.code(), Some(125));

    // A handler without F, registered last: the profile bind-mounts it.
    let qemu = frame.host_only_qemu("aarch64");
    let mut binfmt = frame.binfmt();
    binfmt.register_without_f(
        &format!("rootrun-test-export-{}", std::process::id()),
        Arch::Aarch64,
        &qemu.path,
    );
    let out_dir = frame.path("export-nof");
    let out = rootrun()
        .arg("export")
        .arg(&image)
        .arg(&out_dir)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let profile: Value =
        rootrun::yaml::from_slice(&fs::read(out_dir.join("profile.yaml")).unwrap()).unwrap();
    let device = &profile["devices"]["qemu-aarch64"];
    let qemu_path = qemu.path.to_string_lossy();
    assert_eq!(device["type"].as_str(), Some("disk"));
    assert_eq!(device["source"].as_str(), Some(qemu_path.as_ref()));
    assert_eq!(device["path"].as_str(), Some(qemu_path.as_ref()));
    assert_eq!(device["readonly"].as_str(), Some("true"));
    assert!(profile["config"].as_mapping().is_some());
    assert!(text(&out.stderr).contains("lxc profile edit qemu-aarch64"));
    drop(binfmt);
    frame.check();
}
