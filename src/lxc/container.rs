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

/// What `Container::attach_run_wait` runs, and how.
#[derive(Debug, Clone, Default)]
pub struct Attach {
    /// The program (looked up in the container's PATH) and its arguments.
    pub argv: Vec<String>,
    /// The whole environment: liblxc clears the caller's.
    pub env: Vec<(String, String)>,
    /// Working directory inside; None: `/`.
    pub cwd: Option<String>,
    /// None: root.
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    /// Give the command a pseudo-terminal of its own, proxied to this
    /// process's stdio by liblxc (stdin is a terminal).
    pub terminal: bool,
}

impl Container {
    /// `attach_run_wait`: runs `attach.argv` in every namespace of the
    /// running container, in its cgroup, and waits; returns its wait(2)
    /// status. liblxc exits the attached process with 126 or 127 when the
    /// program cannot be executed or found.
    pub fn attach_run_wait(&self, attach: &Attach) -> Result<i32, LxcError> {
        let f = method!(self, attach_run_wait);
        let program = attach.argv.first().ok_or(LxcError::Call {
            call: "attach_run_wait",
            detail: Some("no command".into()),
        })?;
        let program = cstring("command", program)?;
        let args = attach
            .argv
            .iter()
            .map(|arg| cstring("command argument", arg))
            .collect::<Result<Vec<_>, _>>()?;
        let mut argv: Vec<*const c_char> = args.iter().map(|a| a.as_ptr()).collect();
        argv.push(std::ptr::null());
        let env = attach
            .env
            .iter()
            .map(|(key, value)| cstring("environment variable", &format!("{key}={value}")))
            .collect::<Result<Vec<_>, _>>()?;
        let mut envp: Vec<*mut c_char> = env.iter().map(|e| e.as_ptr() as *mut c_char).collect();
        envp.push(std::ptr::null_mut());
        let cwd = cstring("working directory", attach.cwd.as_deref().unwrap_or("/"))?;
        let mut flags = sys::LXC_ATTACH_DEFAULT;
        if attach.terminal {
            flags |= sys::LXC_ATTACH_TERMINAL;
        }
        let mut options = sys::lxc_attach_options_t {
            attach_flags: flags as i32,
            namespaces: -1,
            personality: sys::LXC_ATTACH_DETECT_PERSONALITY as std::ffi::c_long,
            initial_cwd: cwd.as_ptr() as *mut c_char,
            uid: attach.uid.unwrap_or(u32::MAX),
            gid: attach.gid.unwrap_or(u32::MAX),
            env_policy: sys::lxc_attach_env_policy_t_LXC_ATTACH_CLEAR_ENV,
            extra_env_vars: envp.as_mut_ptr(),
            extra_keep_env: std::ptr::null_mut(),
            stdin_fd: 0,
            stdout_fd: 1,
            stderr_fd: 2,
            log_fd: -libc::EBADF,
            lsm_label: std::ptr::null_mut(),
            groups: sys::lxc_groups_t::default(),
        };
        // SAFETY: live container; `options` and every string and array it
        // points to (`cwd`, `envp` over `env`, `argv` over `args`, `program`)
        // outlive the call and are NULL-terminated where liblxc expects it;
        // liblxc does not write through them despite the `*mut`.
        let status = unsafe { f(self.raw(), &mut options, program.as_ptr(), argv.as_ptr()) };
        if status < 0 {
            return Err(LxcError::Call {
                call: "attach_run_wait",
                detail: self.error_string(),
            });
        }
        Ok(status)
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
