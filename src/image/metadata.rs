//! LXD's image `metadata.yaml` (https://documentation.ubuntu.com/lxd/en/latest/reference/image_format/),
//! as myrootfs and distrobuilder write it at the root of a unified image.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize};

/// The parts of `metadata.yaml` rootrun uses; other keys (templates, expiry_date, ...) are
/// ignored, and unknown properties are kept in `properties.other`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
pub struct Metadata {
    #[serde(default, deserialize_with = "scalar")]
    pub architecture: Option<String>,
    /// Seconds since the epoch.
    #[serde(default)]
    pub creation_date: Option<i64>,
    #[serde(default)]
    pub properties: Properties,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
pub struct Properties {
    #[serde(default, deserialize_with = "scalar")]
    pub os: Option<String>,
    #[serde(default, deserialize_with = "scalar")]
    pub release: Option<String>,
    #[serde(default, deserialize_with = "scalar")]
    pub description: Option<String>,
    #[serde(default, deserialize_with = "scalar")]
    pub architecture: Option<String>,
    #[serde(flatten)]
    pub other: BTreeMap<String, crate::yaml::Value>,
}

/// Accepts any YAML scalar as text: `release: 12` or `release: 3.19` are as valid as
/// `release: bookworm` to the humans who write these files.
fn scalar<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    use serde::de::Error;
    match crate::yaml::Value::deserialize(d)? {
        crate::yaml::Value::Null => Ok(None),
        crate::yaml::Value::String(s) => Ok(Some(s)),
        crate::yaml::Value::Number(n) => Ok(Some(n.to_string())),
        crate::yaml::Value::Bool(b) => Ok(Some(b.to_string())),
        other => Err(D::Error::custom(format!(
            "expected a scalar, found {other:?}"
        ))),
    }
}

pub fn parse(text: &[u8]) -> Result<Metadata, crate::yaml::Error> {
    crate::yaml::from_slice(text)
}

/// metadata.yaml out of a split image's metadata tarball (`lxc image
/// export` writes `metadata.tar.gz` or `.tar.xz`; gzip and plain tar are
/// read), at most `max` bytes of it.
pub fn from_tarball(path: &std::path::Path, max: u64) -> Result<Metadata, String> {
    use std::io::Read;
    let file = std::fs::File::open(path).map_err(|e| e.to_string())?;
    let mut magic = [0u8; 2];
    let gzip = {
        let mut peek = &file;
        peek.read_exact(&mut magic).is_ok() && magic == [0x1f, 0x8b]
    };
    let file = std::fs::File::open(path).map_err(|e| e.to_string())?;
    let reader: Box<dyn Read> = if gzip {
        Box::new(flate2::read::GzDecoder::new(file))
    } else {
        Box::new(file)
    };
    let not_tar = |_| "not a tar archive (plain or gzip)".to_owned();
    let mut archive = tar::Archive::new(reader);
    let entries = archive.entries().map_err(not_tar)?;
    for entry in entries {
        let mut entry = entry.map_err(not_tar)?;
        let name = entry.path().map_err(not_tar)?.into_owned();
        let name: std::path::PathBuf = name
            .components()
            .filter(|c| !matches!(c, std::path::Component::CurDir))
            .collect();
        if name != std::path::Path::new("metadata.yaml") {
            continue;
        }
        if entry.size() > max {
            return Err(format!(
                "metadata.yaml is {} bytes, more than {max}",
                entry.size()
            ));
        }
        let mut text = Vec::new();
        entry
            .by_ref()
            .take(max)
            .read_to_end(&mut text)
            .map_err(|e| e.to_string())?;
        return parse(&text).map_err(|e| format!("metadata.yaml: {e}"));
    }
    Err("it holds no metadata.yaml".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_lxd_metadata() {
        let text = b"architecture: aarch64\ncreation_date: 1700000000\nproperties:\n  os: debian\n  release: 12\n  description: Debian bookworm arm64\n  variant: default\ntemplates: {}\n";
        let m = parse(text).map_err(|e| e.to_string());
        let m = m
            .as_ref()
            .map(|m| (m.architecture.as_deref(), m.properties.release.as_deref()));
        assert_eq!(m, Ok((Some("aarch64"), Some("12"))));
    }

    #[test]
    fn rejects_garbage() {
        assert!(parse(b"architecture: [unclosed").is_err());
        assert!(parse(b"properties: 7").is_err());
    }
}
