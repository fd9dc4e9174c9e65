//! `--dry-run` as text: the numbered steps, then the files they write
//! (seccomp policy, liblxc configuration).

use std::fmt;

use super::{ConsolePath, LaunchPlan, Mode, SECCOMP_POLICY};

impl fmt::Display for LaunchPlan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "# rootrun launch plan for {}", self.image.display())?;
        match self.arch {
            Some(arch) => writeln!(f, "# runs as {}", self.emulation.describe(arch))?,
            None => writeln!(f, "# architecture unknown (no ELF file found)")?,
        }
        match &self.mode {
            Mode::Boot { init } => writeln!(f, "# boot {init}; halt {}", self.describe_halt())?,
            Mode::Command { argv } => writeln!(f, "# run {argv:?} under liblxc's init")?,
        }
        if let Some(systemd) = &self.systemd {
            writeln!(f, "# {}", systemd.describe())?;
            if let Some(limitation) = &systemd.limitation {
                writeln!(f, "# warning: {limitation}")?;
            }
        }
        for (number, step) in self.steps.iter().enumerate() {
            writeln!(f, "# {:>2}. {step}", number + 1)?;
        }
        writeln!(
            f,
            "# seccomp policy written to {}:",
            self.layout.seccomp.display()
        )?;
        for line in SECCOMP_POLICY.lines() {
            writeln!(f, "#| {line}")?;
        }
        f.write_str(&self.lxc_config_text(ConsolePath::Planned))
    }
}

/// `--dry-run --json`: the plan with its liblxc configuration.
#[derive(serde::Serialize)]
pub struct PlanJson<'a> {
    #[serde(flatten)]
    pub plan: &'a LaunchPlan,
    pub seccomp_policy: &'static str,
    pub lxc_config: Vec<(&'static str, String)>,
}

impl LaunchPlan {
    pub fn json(&self) -> PlanJson<'_> {
        PlanJson {
            plan: self,
            seccomp_policy: SECCOMP_POLICY,
            lxc_config: self.lxc_config(ConsolePath::Planned),
        }
    }
}
