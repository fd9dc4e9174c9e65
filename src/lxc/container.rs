//! A safe owner of one `struct lxc_container` reference.
//!
//! Every method goes through a function pointer in the struct; a NULL pointer
//! (a liblxc built without that method) is an error, never a panic, and every
//! `false`/negative result becomes an `LxcError` carrying `error_string` when
//! liblxc set one.

use std::ffi::{c_char, CStr, CString};
use std::path::Path;
use std::ptr::NonNull;

use super::library::{self, Library};
use super::sys;
use super::LxcError;

/// One reference to a container; dropping it calls `lxc_container_put`.
pub struct Container {
    ptr: NonNull<sys::lxc_container>,
    lib: &'static Library,
}

/// Looks up a method pointer of `struct lxc_container`, or fails naming it.
macro_rules! method {
    ($self:ident, $field:ident) => {
        // SAFETY: `ptr` is a live container returned by lxc_container_new
        // and owned by `self`; reading a field does not mutate it.
        unsafe { $self.ptr.as_ref() }.$field.ok_or(LxcError::Call {
            call: stringify!($field),
            detail: Some("not provided by this liblxc".into()),
        })?
    };
}

impl Container {
    /// `lxc_container_new(name, lxcpath)`.
    pub fn new(name: &str, lxcpath: &Path) -> Result<Self, LxcError> {
        let lib = library::load()?;
        let c_name = cstring("container name", name)?;
        let c_path = cstring("lxcpath", &lxcpath.to_string_lossy())?;
        // SAFETY: both arguments are valid NUL-terminated strings that
        // outlive the call; liblxc copies them.
        let raw = unsafe { (lib.container_new)(c_name.as_ptr(), c_path.as_ptr()) };
        let ptr = NonNull::new(raw).ok_or(LxcError::Call {
            call: "lxc_container_new",
            detail: Some(format!("container {name} in {}", lxcpath.display())),
        })?;
        Ok(Container { ptr, lib })
    }

    fn raw(&self) -> *mut sys::lxc_container {
        self.ptr.as_ptr()
    }

    /// liblxc's `error_string`, when it set one.
    fn error_string(&self) -> Option<String> {
        // SAFETY: live container; error_string is NULL or a C string owned by it.
        let msg = unsafe { self.ptr.as_ref() }.error_string;
        if msg.is_null() {
            return None;
        }
        // SAFETY: non-NULL NUL-terminated string owned by the container.
        Some(
            unsafe { CStr::from_ptr(msg) }
                .to_string_lossy()
                .into_owned(),
        )
    }

    fn check(&self, ok: bool, call: &'static str) -> Result<(), LxcError> {
        if ok {
            Ok(())
        } else {
            Err(LxcError::Call {
                call,
                detail: self.error_string(),
            })
        }
    }

    /// Whether `start` forks a daemon (true) or runs the monitor in this process.
    pub fn want_daemonize(&self, daemonize: bool) -> Result<(), LxcError> {
        let f = method!(self, want_daemonize);
        // SAFETY: live container.
        let ok = unsafe { f(self.raw(), daemonize) };
        self.check(ok, "want_daemonize")
    }

    /// Whether the container's init gets only fds 0-2 (true) or inherits all.
    pub fn want_close_all_fds(&self, close: bool) -> Result<(), LxcError> {
        let f = method!(self, want_close_all_fds);
        // SAFETY: live container.
        let ok = unsafe { f(self.raw(), close) };
        self.check(ok, "want_close_all_fds")
    }

    /// `start(useinit, argv)`: with `daemonize(false)` this blocks until the
    /// container has stopped. `argv` empty means the configured init.
    pub fn start(&self, useinit: bool, argv: &[String]) -> Result<(), LxcError> {
        let f = method!(self, start);
        let owned = argv
            .iter()
            .map(|arg| cstring("command argument", arg))
            .collect::<Result<Vec<_>, _>>()?;
        let mut ptrs: Vec<*mut c_char> = owned.iter().map(|a| a.as_ptr() as *mut c_char).collect();
        ptrs.push(std::ptr::null_mut());
        let argv_ptr = if argv.is_empty() {
            std::ptr::null()
        } else {
            ptrs.as_ptr()
        };
        // SAFETY: live container; argv is NULL or a NULL-terminated array of
        // C strings (`owned`) that outlive the call. liblxc does not write
        // through the pointers despite the `*mut` in its prototype.
        let ok = unsafe { f(self.raw(), i32::from(useinit), argv_ptr) };
        self.check(ok, "start")
    }

    /// The wait(2) status of the container's init after a foreground `start`.
    pub fn exit_status(&self) -> i32 {
        // SAFETY: live container; plain int field.
        unsafe { self.ptr.as_ref() }.error_num
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        // SAFETY: we own exactly one reference, taken by lxc_container_new.
        unsafe { (self.lib.container_put)(self.raw()) };
    }
}

fn cstring(what: &'static str, value: &str) -> Result<CString, LxcError> {
    CString::new(value).map_err(|_| LxcError::Nul {
        what,
        value: value.to_owned(),
    })
}
