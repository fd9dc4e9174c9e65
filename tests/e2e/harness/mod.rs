//! The one harness of the integration tests.
//!
//! - `frame`: a test's frame (skip policy applied, host lock held, own work
//!   directory, fixtures, spawned rootrun processes) and its final check;
//! - `skip`: the skip policy (never silent; fails under `CI=true`);
//! - `fixtures`: BusyBox images and the Debian systemd root, cached by
//!   content outside the checkout;
//! - `host_state`: the resources a test made, and only those;
//! - `lock`: the cross-process lock around host-global state;
//! - `binfmt`: binfmt_misc changes undone on drop;
//! - `process`: spawning, feeding and reading rootrun.

mod binfmt;
mod fixtures;
mod frame;
mod host_state;
mod lock;
mod process;
mod skip;
#[cfg(test)]
mod tests;

pub use fixtures::{cache_dir, sha256};
pub use frame::Frame;
pub use host_state::{binfmt_table, host_disk};
pub use process::{
    mksquashfs, rootrun, rootrun_as_nobody, run_with_input, sh_command, text, wait_with_limit,
    KillOnPanic, Live, Piped,
};
pub use skip::is_root;
