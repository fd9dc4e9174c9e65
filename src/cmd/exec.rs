//! `rootrun exec NAME -- CMD [ARG...]`: a command in a running container,
//! through liblxc's attach, from a copy of rootrun nobody can write (CVE-2019-5736:
//! see `sys::memfd`).

use std::io::{IsTerminal, Read};
use std::os::fd::AsFd;
use std::path::Path;

use crate::cli::ExecArgs;
use crate::error::Error;
use crate::image::users::{self, User};
use crate::lxc::container::Attach;
use crate::lxc::{self, Container};
use crate::state;
use crate::sys::{memfd, namespace, rootfs};

/// The PATH a command gets (as liblxc's own attach default).
const PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

pub fn run(args: &ExecArgs) -> Result<u8, Error> {
    super::need_root()?;
    // Before anything enters the container: from here on /proc/self/exe
    // is a copy nobody can write, not the rootrun file on the host.
    if !memfd::running_protected() {
        return Err(memfd::reexec_protected().into());
    }
    let found = state::find(&args.name)?;
    let record = &found.record;
    let Some(init) = record.init_pid else {
        return Err(Error::Usage(format!(
            "{} is still starting; try again when `rootrun ls` says running",
            args.name
        )));
    };
    let user = match &args.user {
        Some(user) => Some(resolve_user(init, user)?),
        None => None,
    };
    lxc::library::load()?;
    // The supervisor's PID is its own while it holds the lock.
    if !found.alive() {
        return Err(Error::Usage(format!("{} has stopped", args.name)));
    }
    // liblxc's configuration of the container is on its rootrun's private
    // tmpfs: look from inside that rootrun's mount namespace (which hides
    // /run/rootrun's directories: nothing of `found` is read after this).
    namespace::join_mount_namespace_of(record.supervisor)?;
    // liblxc proxies the command's pty through /dev/tty: without a
    // controlling terminal there is none to proxy (and no output at all).
    let terminal = std::io::stdin().is_terminal() && std::fs::File::open("/dev/tty").is_ok();
    let mut env = vec![("PATH".to_owned(), PATH.to_owned())];
    let home = user.as_ref().map_or("/root".to_owned(), |u| u.home.clone());
    env.push(("HOME".into(), home));
    if terminal {
        if let Ok(term) = std::env::var("TERM") {
            env.push(("TERM".into(), term));
        }
    }
    for (key, value) in &args.env {
        env.retain(|(k, _)| k != key);
        env.push((key.clone(), value.clone()));
    }
    let attach = Attach {
        argv: args.command.clone(),
        env,
        cwd: args.workdir.clone(),
        uid: user.as_ref().map(|u| u.uid),
        gid: user.as_ref().map(|u| u.gid),
        terminal,
    };
    let container = Container::new(&record.lxc_name, &record.lxcpath)?;
    let status = container.attach_run_wait(&attach)?;
    Ok(exit_code(status))
}

/// The command's wait(2) status as an exit code: a signal as 128+n.
fn exit_code(status: i32) -> u8 {
    if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status) as u8
    } else if libc::WIFSIGNALED(status) {
        128u8.saturating_add(libc::WTERMSIG(status) as u8)
    } else {
        crate::error::EXIT_ROOTRUN
    }
}

/// `-u`: `UID[:GID]`, or a name from the container's /etc/passwd (read
/// inside its root: the image's symlinks cannot lead out).
fn resolve_user(init: i32, user: &str) -> Result<User, Error> {
    if let Some(found) = users::numeric(user) {
        return Ok(found);
    }
    let root = rootfs::open_root_of(init)
        .map_err(|e| Error::Usage(format!("-u {user}: cannot look into the container: {e}")))?;
    let mut passwd = String::new();
    rootfs::open_in_root(&root, Path::new("/etc/passwd"), libc::O_RDONLY)
        .map(std::fs::File::from)
        .and_then(|mut f| {
            f.read_to_string(&mut passwd)
                .map_err(|_| nix::errno::Errno::EIO)
        })
        .map_err(|e| {
            Error::Usage(format!(
                "-u {user}: cannot read the container's /etc/passwd: {e}"
            ))
        })?;
    let _ = root.as_fd();
    users::from_passwd(&passwd, user).ok_or_else(|| {
        Error::Usage(format!(
            "-u {user}: no such user in the container's /etc/passwd (give a name or UID[:GID])"
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_map_as_in_command_mode() {
        assert_eq!(exit_code(3 << 8), 3);
        assert_eq!(exit_code(libc::SIGKILL), 137);
    }
}
