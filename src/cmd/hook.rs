//! `rootrun binfmt-hook LINE_FILE NAME lxc mount`: liblxc's mount hook of an
//! `--unprivileged` container with a foreign image (`Step::PrivateBinfmt`).
//!
//! liblxc runs it in the container's user and mount namespaces as the
//! container's root, after the root and /proc are mounted and before
//! pivot_root, so the host's files are still in view. A binfmt_misc mounted
//! there is the container's own (Linux 6.7+: one instance per user
//! namespace, and a namespace that has one never looks at its parent's), and
//! an entry with the `F` flag opens its interpreter now, in this view: the
//! emulator need not exist inside the image, and the host's table is
//! neither read nor written. The mount on the container's
//! /proc/sys/fs/binfmt_misc keeps the instance alive as long as the
//! container.

use std::path::{Path, PathBuf};

use crate::arch;
use crate::cli::BinfmtHookArgs;
use crate::error::Error;
use crate::sys::mount;

/// Where liblxc has mounted the container's root (lxc.container.conf(5),
/// hooks' environment).
const ROOTFS_MOUNT: &str = "LXC_ROOTFS_MOUNT";

pub fn binfmt(args: &BinfmtHookArgs) -> Result<u8, Error> {
    let root = std::env::var_os(ROOTFS_MOUNT)
        .map(PathBuf::from)
        .ok_or_else(|| {
            Error::Usage(format!(
                "binfmt-hook is liblxc's mount hook of an --unprivileged container \
             ({ROOTFS_MOUNT} is not set); it is not run by hand"
            ))
        })?;
    let line = std::fs::read_to_string(&args.line_file).map_err(|e| {
        Error::Usage(format!(
            "binfmt-hook: cannot read {}: {e}",
            args.line_file.display()
        ))
    })?;
    let dir = root.join(arch::BINFMT_DIR.trim_start_matches('/'));
    register_private(&dir, line.trim_end_matches('\n'))?;
    Ok(0)
}

fn register_private(dir: &Path, line: &str) -> Result<(), Error> {
    mount::binfmt_misc_for_container(dir)?;
    arch::register(dir, line)?;
    Ok(())
}
