//! rootrun: boot a root filesystem image of any CPU architecture as a
//! container through liblxc. See README.md and DESIGN notes for the shape:
//! `cmd` (one module per subcommand) -> `config` -> `plan` (pure) ->
//! `launch` (executes the plan's steps) -> `session` (the running
//! container); `image`, `arch`, `lxc` and `sys` below them.

pub mod arch;
pub mod cli;
pub mod cmd;
pub mod config;
pub mod config_file;
pub mod console;
pub mod debug;
pub mod doctor;
pub mod error;
pub mod image;
pub mod launch;
pub mod logging;
// The only two modules where `unsafe` may appear (Cargo.toml denies it
// everywhere else).
#[allow(unsafe_code)]
pub mod lxc;
pub mod notice;
pub mod plan;
mod session;
pub mod state;
#[allow(unsafe_code)]
pub mod sys;
pub mod yaml;
