//! rootrun: boot a root filesystem image of any CPU architecture as a
//! container through liblxc. See README.md and DESIGN notes for the shape.

pub mod arch;
pub mod cli;
pub mod console;
pub mod detect;
pub mod entry;
pub mod error;
pub mod image;
pub mod inspect;
pub mod launch;
pub mod lxc;
pub mod plan;
pub mod run;
mod session;
pub mod sys;
