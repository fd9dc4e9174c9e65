//! LXD's metadata.yaml as an image carries it (at most METADATA_MAX bytes
//! reach the parser), through serde_yaml_ng into rootrun's Metadata.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(metadata) = rootrun::image::parse_metadata(data) {
        let _ = format!("{metadata:?}");
    }
});
