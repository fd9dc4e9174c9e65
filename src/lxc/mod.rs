//! liblxc through its C API: raw bindings (`sys`), run-time loading
//! (`library`), a safe owner of `struct lxc_container` (`container`).

pub mod container;
pub mod library;
pub mod sys;

pub use container::Container;

/// A liblxc failure, with liblxc's own words where it gave any.
#[derive(Debug, Clone, thiserror::Error)]
pub enum LxcError {
    /// liblxc cannot be loaded or is too old.
    #[error("{0}")]
    Unavailable(String),
    /// An API call returned false/NULL.
    #[error("liblxc {call} failed{}", detail.as_deref().map(|d| format!(": {d}")).unwrap_or_default())]
    Call {
        call: &'static str,
        detail: Option<String>,
    },
    /// A string for liblxc contained a NUL byte.
    #[error("{what} contains a NUL byte: {value:?}")]
    Nul { what: &'static str, value: String },
}
