//! rootrun's integration tests: one binary, one harness. They build their
//! fixtures at test time (cached by content outside the checkout), boot
//! real containers as root, and check afterwards that nothing of their own
//! (mount, loop device, run-time entry, cgroup) was left behind and that
//! their images are unchanged (DESIGN.md, style rule 8). See harness/.

mod harness;

mod boot;
mod boot_checks;
mod cli;
mod debug;
mod diagnoses;
mod doctor;
mod export;
mod faults;
mod foreign;
mod formats;
mod host_matrix;
mod hosts;
mod inits;
mod instances;
mod modes;
mod network;
mod package;
mod session;
mod soak;
mod systemd;
mod unpack;
mod unprivileged;
