//! Command-line syntax (clap derive structs only).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::arch::Arch;

/// Boot a root filesystem image of any CPU architecture as a container.
///
/// `rootrun IMAGE` loop-mounts a SquashFS image read-only under a throwaway
/// writable overlay and boots its /sbin/init through liblxc, with the console
/// on this terminal (or on stdin/stdout when they are not a terminal).
/// `rootrun IMAGE -- CMD ARGS...` runs one command instead of init and exits
/// with its status. Nothing is written to the image, and nothing is left on
/// the host when rootrun returns.
///
/// Exit status: the container's own (a signal as 128+n); 125 when rootrun
/// itself fails, 126 when the command is not executable, 127 when it is not
/// found in the image.
#[derive(Debug, Parser)]
#[command(
    after_long_help = EXAMPLES,
    name = "rootrun",
    version,
    args_conflicts_with_subcommands = true,
    subcommand_negates_reqs = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub run: RunArgs,
}

const EXAMPLES: &str = "\
Examples:
  sudo rootrun rootfs.img
      boot its init; the console is this terminal, Ctrl-a q stops it
  printf 'uname -m; poweroff\\n' | sudo rootrun rootfs.img
      drive a boot from a script (the console is stdin/stdout)
  sudo rootrun rootfs.img -- /bin/sh -c 'cat /etc/os-release'
      run one command and exit with its status
  rootrun inspect rootfs.img
      architecture, init and binfmt handler, without root
  sudo rootrun --dry-run rootfs.img
      show the mounts and the liblxc configuration, touch nothing
  sudo rootrun unpack rootfs.img ./tree && sudo rootrun --rootfs ./tree
      extract, then boot the tree (it is never written)";

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Boot IMAGE, or run a command in it (the default subcommand).
    Run(RunArgs),
    /// Show what rootrun reads from IMAGE without mounting it: the CPU
    /// architecture and its evidence, init, SquashFS facts, metadata.yaml,
    /// and the binfmt_misc handler this host would use. No root needed.
    Inspect(InspectArgs),
    /// Extract a SquashFS IMAGE into DIR (empty or not existing), safely.
    ///
    /// On failure or Ctrl-C a DIR it created is removed; a DIR you made keeps
    /// what was extracted and a note saying so.
    Unpack(UnpackArgs),
}

#[derive(Debug, Args)]
pub struct InspectArgs {
    /// SquashFS image, or an extracted root filesystem directory.
    #[arg(value_name = "IMAGE")]
    pub image: PathBuf,

    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,

    /// Init to look at.
    #[arg(long, default_value = "/sbin/init", value_name = "PATH")]
    pub init: String,

    /// Take this architecture instead of reading it from ELF headers.
    #[arg(long, value_name = "NAME", value_parser = parse_arch)]
    pub arch: Option<Arch>,
}

/// `rootrun unpack IMAGE DIR`.
#[derive(Debug, Args)]
pub struct UnpackArgs {
    /// SquashFS image to extract.
    #[arg(value_name = "IMAGE")]
    pub image: PathBuf,

    /// Destination: an empty directory, or a path to create.
    #[arg(value_name = "DIR")]
    pub dir: PathBuf,

    /// No progress bar and no summary.
    #[arg(short, long)]
    pub quiet: bool,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// SquashFS root filesystem image.
    #[arg(required_unless_present = "rootfs", value_name = "IMAGE")]
    pub image: Option<PathBuf>,

    /// Boot an already extracted root filesystem directory instead of an
    /// image (read-only under a throwaway overlay, like an image).
    #[arg(long, value_name = "DIR", conflicts_with_all = ["image", "unpack"])]
    pub rootfs: Option<PathBuf>,

    /// Extract the image with backhand into a throwaway directory and boot
    /// that, for hosts that cannot loop-mount SquashFS.
    #[arg(long)]
    pub unpack: bool,

    /// Command to run instead of init, after `--` (e.g. `-- /bin/sh -c 'uname -m'`).
    #[arg(last = true, value_name = "CMD")]
    pub command: Vec<String>,

    /// Host name inside the container [default: the image's file name without extension].
    #[arg(long, value_name = "NAME", value_parser = parse_hostname)]
    pub hostname: Option<String>,

    /// Init to boot when no command is given (an absolute path in the image).
    #[arg(long, default_value = "/sbin/init", value_name = "PATH", value_parser = parse_init)]
    pub init: String,

    /// Console escape: Ctrl-<KEY> then `q` stops the container (terminal only).
    #[arg(long, default_value = "a", value_name = "KEY", value_parser = parse_escape)]
    pub escape: u8,

    /// Seconds to wait for init to halt after a stop request before killing it.
    #[arg(long, default_value_t = 10, value_name = "SECS", value_parser = clap::value_parser!(u64).range(0..=86_400))]
    pub stop_timeout: u64,

    /// CPU architecture of the image, in any dialect (aarch64, arm64, armhf,
    /// ppc64el, ...) [default: read from the ELF header of init].
    #[arg(long, value_name = "NAME", value_parser = parse_arch)]
    pub arch: Option<Arch>,

    /// If no binfmt_misc handler runs the image's architecture, register one
    /// (with the F flag) for the installed /usr/bin/qemu-ARCH-static. It stays
    /// registered after rootrun returns while binfmt_misc is mounted on the host.
    #[arg(long)]
    pub register_binfmt: bool,

    /// Print the launch plan (mounts and liblxc configuration) and exit.
    #[arg(long)]
    pub dry_run: bool,

    /// Do not print the start banner.
    #[arg(short, long)]
    pub quiet: bool,
}

/// RFC 1123 host names: dot-separated labels of letters, digits and '-'.
/// Anything else could also break the liblxc config file it goes into.
fn parse_hostname(name: &str) -> Result<String, String> {
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
    };
    if name.len() <= 253 && name.split('.').all(label_ok) {
        Ok(name.to_owned())
    } else {
        Err("a host name is letters, digits and '-' in dot-separated labels of at most 63".into())
    }
}

/// An absolute path without control characters (it goes into the liblxc
/// config file as `lxc.init.cmd`, which splits on spaces).
fn parse_init(path: &str) -> Result<String, String> {
    if !path.starts_with('/') {
        return Err("init must be an absolute path inside the image".into());
    }
    if path.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err("init must not contain spaces or control characters".into());
    }
    Ok(path.to_owned())
}

fn parse_arch(name: &str) -> Result<Arch, String> {
    Arch::from_name(name).ok_or_else(|| {
        let known = Arch::known_names();
        format!("unknown architecture {name:?}; known: {}", known.join(", "))
    })
}

/// `a` -> Ctrl-a (0x01). Ctrl-h, -i, -j and -m are the bytes of Backspace,
/// Tab, Line Feed and Enter: as the escape, every such key would be held
/// back until the next one.
fn parse_escape(text: &str) -> Result<u8, String> {
    let letter = match text.as_bytes() {
        [c @ (b'a'..=b'z' | b'A'..=b'Z')] => c.to_ascii_lowercase(),
        _ => {
            return Err(format!(
                "escape key must be one letter (Ctrl-<letter>), not {text:?}"
            ))
        }
    };
    if matches!(letter, b'h' | b'i' | b'j' | b'm') {
        return Err(format!(
            "Ctrl-{} is the same byte as Backspace, Tab or Enter; choose another letter",
            letter as char
        ));
    }
    Ok(letter - b'a' + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_letters_become_control_bytes_except_those_of_other_keys() {
        assert_eq!(parse_escape("a"), Ok(1));
        assert_eq!(parse_escape("Q"), Ok(17));
        assert_eq!(
            parse_escape("]"),
            Err("escape key must be one letter (Ctrl-<letter>), not \"]\"".into())
        );
        for key in ["h", "i", "j", "m", "M"] {
            let err = parse_escape(key).unwrap_err();
            assert!(err.contains("Backspace, Tab or Enter"), "{key}: {err}");
        }
        assert!(parse_escape("ab").is_err());
    }

    #[test]
    fn usage_errors_are_reported_by_clap() {
        assert!(Cli::try_parse_from(["rootrun", "--escape", "m", "img"]).is_err());
        assert!(Cli::try_parse_from(["rootrun", "--escape", "b", "img"]).is_ok());
    }
}
