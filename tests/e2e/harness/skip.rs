//! The one skip policy. As root every test runs. A test that cannot run
//! (not root, a missing tool, package or binfmt_misc handler) fails with the
//! reason under `CI=true`; elsewhere it prints a NOTE and returns. Never a
//! silent skip.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

/// CI sets `CI=true` (GitHub Actions, GitLab, `.ci/run`).
pub fn under_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

pub fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// What becomes of a test that cannot run because of `reason`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Under CI: the test fails with this message.
    Fail(String),
    /// Elsewhere: this note is printed and the test returns.
    Note(String),
}

pub fn verdict(test: &str, reason: &str, ci: bool) -> Verdict {
    if ci {
        Verdict::Fail(format!(
            "{test}: {reason}; CI runs the whole suite as root on a host prepared by \
             tests/setup-host.sh"
        ))
    } else {
        Verdict::Note(format!("NOTE: {test}: {reason}; not run"))
    }
}

/// Applies the policy: panics under CI, prints the note elsewhere.
pub fn cannot_run(test: &str, reason: &str) {
    match verdict(test, reason, under_ci()) {
        Verdict::Fail(message) => panic!("{message}"),
        Verdict::Note(message) => eprintln!("{message}"),
    }
}

/// A prerequisite's value, or `None` once the policy has been applied.
pub fn need<T>(test: &str, prerequisite: Result<T, String>) -> Option<T> {
    match prerequisite {
        Ok(value) => Some(value),
        Err(reason) => {
            cannot_run(test, &reason);
            None
        }
    }
}

pub fn root() -> Result<(), String> {
    if is_root() {
        Ok(())
    } else {
        Err("needs root (it boots containers through liblxc)".into())
    }
}

/// `name` as a program on PATH, or in the sbin directories where root's
/// tools live when a normal user's PATH lacks them.
pub fn tool(name: &str) -> Result<(), String> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let sbin = ["/usr/local/sbin", "/usr/sbin", "/sbin"].map(Into::into);
    if std::env::split_paths(&path)
        .chain(sbin)
        .any(|dir| is_executable(&dir.join(name)))
    {
        Ok(())
    } else {
        Err(format!(
            "needs the program `{name}` (tests/setup-host.sh installs the tests' tools)"
        ))
    }
}

fn is_executable(path: &Path) -> bool {
    path.metadata()
        .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// Debian's QEMU handlers, registered in the host's binfmt_misc.
pub fn emulation() -> Result<(), String> {
    let dir = Path::new(rootrun::arch::BINFMT_DIR);
    if dir.join("qemu-aarch64").exists() {
        Ok(())
    } else {
        Err(
            "binfmt_misc is not mounted or Debian's QEMU handlers are not registered; \
             run tests/setup-host.sh first"
                .into(),
        )
    }
}
