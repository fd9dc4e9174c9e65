//! rootrun: boot a root filesystem image of any CPU architecture as a
//! container through liblxc. See README.md and DESIGN notes for the shape.

pub mod arch;
pub mod image;
pub mod lxc;
