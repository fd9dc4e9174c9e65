//! The one place that knows which YAML crate rootrun uses: LXD's
//! metadata.yaml (`image::metadata`) and the per-image configuration
//! (`config_file`) go through here.
//!
//! The crate is `serde_yaml_ng`, chosen on purpose: dtolnay's `serde_yaml`
//! was archived upstream in 2024 and takes no fixes; `serde_yaml_ng` keeps
//! its API and its YAML 1.1 behaviour (unsafe-libyaml underneath) and is
//! maintained. The other forks change the data model or are younger
//! (README, "Design notes"). Swapping the crate means changing this file.

pub use serde_yaml_ng::Error;
pub use serde_yaml_ng::Value;

/// Parses `text` into `T`; errors carry the line and column.
pub fn from_slice<T: serde::de::DeserializeOwned>(text: &[u8]) -> Result<T, Error> {
    serde_yaml_ng::from_slice(text)
}

/// Writes `value` as YAML.
pub fn to_string<T: serde::Serialize>(value: &T) -> Result<String, Error> {
    serde_yaml_ng::to_string(value)
}
