//! Generates the liblxc bindings with bindgen over the system's
//! `<lxc/lxccontainer.h>` (found through pkg-config), allowlisted to the `lxc_`
//! API. When libclang or the headers are missing, the pre-generated bindings in
//! `vendor/lxc_bindings.rs` are used instead, so the crate still builds on a
//! host that has only the liblxc runtime.
//!
//! `ROOTRUN_LXC_HEADERS=DIR` takes the headers from `DIR/lxc/` instead of
//! the system's (e.g. another liblxc version's, unpacked from its `lxc-dev`
//! package), to check that rootrun builds and passes its tests with them;
//! `ROOTRUN_VENDORED_BINDINGS=1` forces the vendored file;
//! `ROOTRUN_REGEN_VENDOR=1` writes freshly generated bindings back to `vendor/`
//! (see README.md, "Regenerating the vendored bindings").

use std::env;
use std::fs;
use std::panic;
use std::path::{Path, PathBuf};

const VENDORED: &str = "vendor/lxc_bindings.rs";
const VENDORED_VERSION: &str = "vendor/lxc_version.txt";
const HEADERS_ENV: &str = "ROOTRUN_LXC_HEADERS";

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed={VENDORED}");
    println!("cargo:rerun-if-changed={VENDORED_VERSION}");
    println!("cargo:rerun-if-env-changed=ROOTRUN_VENDORED_BINDINGS");
    println!("cargo:rerun-if-env-changed=ROOTRUN_REGEN_VENDOR");
    println!("cargo:rerun-if-env-changed=LIBCLANG_PATH");
    println!("cargo:rerun-if-env-changed={HEADERS_ENV}");

    let out = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let force_vendor = env::var_os("ROOTRUN_VENDORED_BINDINGS").is_some_and(|v| v == "1");

    let library = if force_vendor { None } else { probe_lxc() };
    let generated = library.as_ref().and_then(generate);

    let (bindings, version) = match (generated, library) {
        (Some(text), Some(lib)) => {
            if env::var_os("ROOTRUN_REGEN_VENDOR").is_some_and(|v| v == "1") {
                fs::write(VENDORED, &text).expect("write vendor/lxc_bindings.rs");
                fs::write(VENDORED_VERSION, format!("{}\n", lib.version))
                    .expect("write vendor/lxc_version.txt");
            }
            (text, lib.version)
        }
        _ => {
            println!("cargo:warning=using vendored liblxc bindings from {VENDORED}");
            let text = fs::read_to_string(VENDORED).expect("read vendor/lxc_bindings.rs");
            let version =
                fs::read_to_string(VENDORED_VERSION).expect("read vendor/lxc_version.txt");
            (text, version.trim().to_owned())
        }
    };

    fs::write(out.join("lxc_bindings.rs"), bindings).expect("write OUT_DIR/lxc_bindings.rs");
    fs::write(
        out.join("lxc_version.rs"),
        format!("/// liblxc version the bindings were generated from.\npub const BINDINGS_VERSION: &str = {version:?};\n"),
    )
    .expect("write OUT_DIR/lxc_version.rs");
}

struct Lxc {
    version: String,
    include_paths: Vec<PathBuf>,
}

fn probe_lxc() -> Option<Lxc> {
    if let Some(dir) = env::var_os(HEADERS_ENV) {
        return headers_in(Path::new(&dir));
    }
    // No link flags: liblxc is loaded at run time with dlopen (src/lxc/library.rs)
    // so that a missing library is a clear rootrun error, not a loader failure.
    match pkg_config::Config::new()
        .atleast_version("4.0")
        .cargo_metadata(false)
        .probe("lxc")
    {
        Ok(lib) => Some(Lxc {
            version: lib.version,
            include_paths: lib.include_paths,
        }),
        Err(err) => {
            println!("cargo:warning=pkg-config lxc: {err}");
            None
        }
    }
}

/// `ROOTRUN_LXC_HEADERS`: `DIR/lxc/lxccontainer.h`, its version from
/// `DIR/lxc/version.h` (`#define LXC_VERSION "6.0.4"`).
fn headers_in(dir: &Path) -> Option<Lxc> {
    let version_h = dir.join("lxc/version.h");
    println!("cargo:rerun-if-changed={}", version_h.display());
    let text = fs::read_to_string(&version_h)
        .unwrap_or_else(|e| panic!("{HEADERS_ENV}: read {}: {e}", version_h.display()));
    let version = text
        .lines()
        .find_map(|line| line.trim().strip_prefix("#define LXC_VERSION \""))
        .and_then(|rest| rest.split('"').next())
        .unwrap_or_else(|| panic!("{HEADERS_ENV}: no LXC_VERSION in {}", version_h.display()));
    Some(Lxc {
        version: version.to_owned(),
        include_paths: vec![dir.to_path_buf()],
    })
}

/// Runs bindgen; `None` when libclang cannot be loaded or the header is missing.
fn generate(lib: &Lxc) -> Option<String> {
    let system = (env::var_os(HEADERS_ENV).is_none())
        .then(|| PathBuf::from("/usr/include/lxc/lxccontainer.h"));
    let header = lib
        .include_paths
        .iter()
        .map(|dir| dir.join("lxc/lxccontainer.h"))
        .chain(system)
        .find(|path| path.is_file())?;
    println!("cargo:rerun-if-changed={}", header.display());

    // bindgen panics when it cannot dlopen libclang; treat that as "fall back".
    let prev_hook = panic::take_hook();
    panic::set_hook(Box::new(|_| {}));
    let result = panic::catch_unwind(|| builder(&header, &lib.include_paths).generate());
    panic::set_hook(prev_hook);

    match result {
        Ok(Ok(bindings)) => Some(bindings.to_string()),
        Ok(Err(err)) => {
            println!("cargo:warning=bindgen failed: {err}");
            None
        }
        Err(_) => {
            println!("cargo:warning=bindgen could not load libclang");
            None
        }
    }
}

fn builder(header: &Path, include_paths: &[PathBuf]) -> bindgen::Builder {
    bindgen::Builder::default()
        .header(header.to_string_lossy())
        .clang_args(include_paths.iter().map(|p| format!("-I{}", p.display())))
        .allowlist_function("lxc_.*")
        .allowlist_type("lxc_.*")
        .allowlist_var("LXC_.*")
        .derive_default(true)
        .layout_tests(false)
        .generate_comments(false)
}
