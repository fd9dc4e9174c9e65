//! liblxc loaded at run time with dlopen(3).
//!
//! rootrun does not link against liblxc: a host without it gets a one-line
//! rootrun error (exit 125) instead of a dynamic-loader failure, and the
//! version check below runs before any container structure is touched.

use std::ffi::{c_char, c_void, CStr, CString};
use std::sync::OnceLock;

use super::sys;
use super::LxcError;

/// The soname Debian's `liblxc1` package ships.
const SONAME: &str = "liblxc.so.1";
/// Overrides the library to load (a path or a soname), e.g. a liblxc built
/// into /usr/local.
pub const LIBRARY_ENV: &str = "ROOTRUN_LIBLXC";

type NewFn = unsafe extern "C" fn(*const c_char, *const c_char) -> *mut sys::lxc_container;
type PutFn = unsafe extern "C" fn(*mut sys::lxc_container) -> i32;
type VersionFn = unsafe extern "C" fn() -> *const c_char;

/// The three free functions rootrun calls; everything else is a function
/// pointer inside `struct lxc_container`.
pub struct Library {
    pub(crate) container_new: NewFn,
    pub(crate) container_put: PutFn,
    /// What `lxc_get_version()` said (`rootrun doctor`).
    pub version: String,
}

static LIBRARY: OnceLock<Result<Library, LxcError>> = OnceLock::new();

/// Loads liblxc once and checks that it is at least as new as the headers the
/// bindings were generated from: `struct lxc_container` grows by appending
/// function pointers, so an older library would have a shorter struct.
pub fn load() -> Result<&'static Library, LxcError> {
    LIBRARY.get_or_init(open).as_ref().map_err(Clone::clone)
}

fn open() -> Result<Library, LxcError> {
    let name = std::env::var(LIBRARY_ENV).unwrap_or_else(|_| SONAME.to_owned());
    let c_name = CString::new(name.as_str()).map_err(|_| LxcError::Nul {
        what: LIBRARY_ENV,
        value: name.clone(),
    })?;
    // SAFETY: dlopen with a valid NUL-terminated name; the handle is never
    // closed, so the symbols stay valid for the life of the process.
    let handle = unsafe { libc::dlopen(c_name.as_ptr(), libc::RTLD_NOW | libc::RTLD_LOCAL) };
    if handle.is_null() {
        return Err(LxcError::Unavailable(format!(
            "cannot load liblxc ({name}): {} (install the liblxc runtime: \
             apt-get install liblxc1 on Debian 12, liblxc1t64 on Debian 13)",
            dlerror()
        )));
    }
    let new_ptr = symbol(handle, c"lxc_container_new")?;
    let put_ptr = symbol(handle, c"lxc_container_put")?;
    let version_ptr = symbol(handle, c"lxc_get_version")?;
    // SAFETY: the symbols are liblxc's exported functions, whose C prototypes
    // are the ones the bindings were generated from (checked by `NewFn` etc.
    // matching `sys::lxc_container_new` and friends).
    let (container_new, container_put, get_version) = unsafe {
        (
            std::mem::transmute::<*mut c_void, NewFn>(new_ptr),
            std::mem::transmute::<*mut c_void, PutFn>(put_ptr),
            std::mem::transmute::<*mut c_void, VersionFn>(version_ptr),
        )
    };
    // SAFETY: lxc_get_version returns a pointer to a static string (or NULL).
    let raw = unsafe { get_version() };
    if raw.is_null() {
        return Err(LxcError::Unavailable(
            "lxc_get_version() returned NULL".into(),
        ));
    }
    // SAFETY: non-NULL, NUL-terminated static string owned by liblxc.
    let version = unsafe { CStr::from_ptr(raw) }
        .to_string_lossy()
        .into_owned();
    check_version(&version, sys::BINDINGS_VERSION)?;
    Ok(Library {
        container_new,
        container_put,
        version,
    })
}

fn symbol(handle: *mut c_void, name: &CStr) -> Result<*mut c_void, LxcError> {
    // SAFETY: handle came from a successful dlopen; name is NUL-terminated.
    let ptr = unsafe { libc::dlsym(handle, name.as_ptr()) };
    if ptr.is_null() {
        return Err(LxcError::Unavailable(format!(
            "liblxc has no symbol {}: {}",
            name.to_string_lossy(),
            dlerror()
        )));
    }
    Ok(ptr)
}

fn dlerror() -> String {
    // SAFETY: dlerror returns NULL or a NUL-terminated thread-local string.
    let msg = unsafe { libc::dlerror() };
    if msg.is_null() {
        return "unknown error".into();
    }
    // SAFETY: checked non-NULL above.
    unsafe { CStr::from_ptr(msg) }
        .to_string_lossy()
        .into_owned()
}

/// Refuses a liblxc older than the bindings (`5.0.2` style, `-devel` suffixes ignored).
pub fn check_version(runtime: &str, bindings: &str) -> Result<(), LxcError> {
    match (parse_version(runtime), parse_version(bindings)) {
        (Some(have), Some(need)) if have >= need => Ok(()),
        (Some(_), Some(_)) => Err(LxcError::Unavailable(format!(
            "liblxc {runtime} is older than {bindings}, the version rootrun was built against; \
             upgrade liblxc or rebuild rootrun on this host"
        ))),
        _ => Err(LxcError::Unavailable(format!(
            "cannot compare liblxc version {runtime:?} with {bindings:?}"
        ))),
    }
}

fn parse_version(text: &str) -> Option<(u32, u32, u32)> {
    let core = text.trim().split(['-', '~', '+', ' ']).next()?;
    let mut parts = core.split('.').map(|p| p.parse::<u32>().ok());
    let major = parts.next()??;
    let minor = parts.next().unwrap_or(Some(0))?;
    let patch = parts.next().unwrap_or(Some(0))?;
    Some((major, minor, patch))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn newer_or_equal_runtime_is_accepted() {
        assert!(check_version("5.0.2", "5.0.2").is_ok());
        assert!(check_version("6.0.0", "5.0.2").is_ok());
        assert!(check_version("5.0.10-devel", "5.0.2").is_ok());
    }

    /// The bindings this build used (bindgen over the system headers, or
    /// the vendored file). Built from the same liblxc version as vendor/,
    /// they must be the vendored ones: a header change shows up here until
    /// `ROOTRUN_REGEN_VENDOR=1 cargo build` refreshes vendor/. Built from
    /// another version's headers (liblxc 6.0 on Debian 13), `struct
    /// lxc_container` must only have grown at its end: the vendored fields,
    /// which the safe wrapper relies on, come first and in the same order.
    #[test]
    fn the_bindings_this_build_used_are_compatible_with_the_vendored_ones() {
        let used = include_str!(concat!(env!("OUT_DIR"), "/lxc_bindings.rs"));
        let vendored = include_str!("../../vendor/lxc_bindings.rs");
        let vendored_version = include_str!("../../vendor/lxc_version.txt").trim();
        if sys::BINDINGS_VERSION == vendored_version {
            assert!(
                used == vendored,
                "vendor/lxc_bindings.rs is stale: regenerate it (README, Building)"
            );
            return;
        }
        let (used_fields, vendored_fields) = (container_fields(used), container_fields(vendored));
        assert!(vendored_fields.len() > 20, "{vendored_fields:?}");
        assert_eq!(
            &used_fields[..vendored_fields.len().min(used_fields.len())],
            &vendored_fields[..],
            "struct lxc_container of liblxc {} does not start with liblxc {vendored_version}'s fields",
            sys::BINDINGS_VERSION
        );
    }

    /// The field names of `struct lxc_container` in bindgen's output.
    fn container_fields(bindings: &str) -> Vec<&str> {
        let body = bindings
            .split("pub struct lxc_container {")
            .nth(1)
            .and_then(|rest| rest.split("\n}").next())
            .unwrap_or_default();
        body.lines()
            .filter_map(|line| line.trim().strip_prefix("pub "))
            .filter_map(|line| line.split(':').next())
            .collect()
    }

    #[test]
    fn older_runtime_is_refused_with_both_versions_named() {
        let err = check_version("4.0.12", "5.0.2").unwrap_err().to_string();
        assert!(err.contains("4.0.12") && err.contains("5.0.2"), "{err}");
        assert!(check_version("5.0.1", "5.0.2").is_err());
        assert!(check_version("garbage", "5.0.2").is_err());
    }
}
