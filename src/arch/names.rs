//! The names of each [`Arch`] in each dialect, read from `table.rs`.
//!
//! Tools disagree on names: `uname -m` says `mips` for both byte orders,
//! Debian says `armhf`/`ppc64el`, qemu-user says `arm`/`ppc64le`, and LXD's
//! metadata.yaml uses `armv7l` and (per LXD's shared/osarch table) `mips`
//! for little-endian MIPS. The qemu name is the only one that is unique per
//! [`Arch`] apart from arm/armel, which share one emulator.

use super::Arch;
use serde::{Serialize, Serializer};
use std::fmt;

/// Every name of one [`Arch`], for `inspect --json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ArchNames {
    pub uname: &'static str,
    pub debian: Option<&'static str>,
    pub qemu: &'static str,
    pub lxd: Option<&'static str>,
}

impl Arch {
    /// Every architecture, in table order.
    pub fn all() -> impl Iterator<Item = Arch> {
        Arch::ALL.iter().copied()
    }

    /// The `uname -m` machine name a kernel of this CPU reports.
    /// Not unique: mips and mipsel both say `mips`.
    pub fn uname(self) -> &'static str {
        self.row().names.uname
    }

    /// The Debian (dpkg) architecture name, when Debian has a port.
    pub fn debian(self) -> Option<&'static str> {
        self.row().names.debian
    }

    /// The qemu-user target: `qemu-<name>-static`, binfmt entry `qemu-<name>`.
    pub fn qemu(self) -> &'static str {
        self.row().names.qemu
    }

    /// The architecture name in LXD's metadata.yaml, when LXD has one.
    pub fn lxd(self) -> Option<&'static str> {
        self.row().names.lxd
    }

    pub fn names(self) -> ArchNames {
        self.row().names.clone()
    }

    /// Parse a name in any dialect, case-insensitive. Where dialects
    /// disagree (`mips` is big-endian for qemu and Debian, little-endian for
    /// LXD; `arm` is both arm and armel for qemu) the qemu, then Debian,
    /// then uname, then LXD reading wins. To compare an image's metadata
    /// with a known Arch, use [`Arch::answers_to`] instead.
    pub fn from_name(name: &str) -> Option<Arch> {
        let n = name.trim().to_ascii_lowercase();
        let n = n.as_str();
        let by = |dialect: fn(&ArchNames) -> Option<&'static str>| {
            Arch::all().find(|a| dialect(&a.row().names) == Some(n))
        };
        by(|d| Some(d.qemu))
            .or_else(|| by(|d| d.debian))
            .or_else(|| by(|d| Some(d.uname)))
            .or_else(|| by(|d| d.lxd))
            .or_else(|| Arch::all().find(|a| a.row().aliases.contains(&n)))
    }

    /// One name for each architecture, in table order, for "known: ..."
    /// lists: its qemu name, unless an earlier architecture has that name
    /// (armel shares qemu-arm with armhf), then its first other name that
    /// [`Arch::from_name`] reads as it (armel).
    pub fn known_names() -> Vec<&'static str> {
        let mut known = Vec::new();
        for a in Arch::all() {
            let r = a.row();
            let d = &r.names;
            let mut names = [Some(d.qemu), d.debian, Some(d.uname), d.lxd]
                .into_iter()
                .flatten()
                .chain(r.aliases.iter().copied());
            if let Some(n) = names.find(|n| !known.contains(n) && Arch::from_name(n) == Some(a)) {
                known.push(n);
            }
        }
        known
    }

    /// Whether `name` (any dialect, case-insensitive) can mean this Arch.
    /// `mips` answers true for both Mips and Mipsel.
    pub fn answers_to(self, name: &str) -> bool {
        let n = name.trim().to_ascii_lowercase();
        let n = n.as_str();
        let r = self.row();
        r.names.qemu == n
            || r.names.uname == n
            || r.names.debian == Some(n)
            || r.names.lxd == Some(n)
            || r.aliases.contains(&n)
    }
}

impl fmt::Display for Arch {
    /// The uname name, as a user of `uname -m` expects.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.uname())
    }
}

impl Serialize for Arch {
    /// The qemu name: unlike uname it tells mips from mipsel.
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.qemu())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_has_one_row_per_arch() {
        for a in Arch::all() {
            assert_eq!(Arch::all().filter(|o| *o == a).count(), 1);
            // Rows copied without editing would make two Arches one.
            for o in Arch::all().filter(|o| *o != a) {
                assert_ne!(a.names(), o.names(), "{a:?} and {o:?}");
            }
        }
        assert_eq!(Arch::all().count(), 28);
    }

    #[test]
    fn qemu_names_round_trip() {
        for a in Arch::all() {
            let back = Arch::from_name(a.qemu());
            // arm and armel share qemu-arm; the qemu name means armhf.
            let want = if a == Arch::Armel { Arch::Arm } else { a };
            assert_eq!(back, Some(want), "{a:?}");
            assert!(a.answers_to(a.qemu()));
            if let Some(d) = a.debian() {
                assert_eq!(Arch::from_name(d), Some(a), "debian {d}");
            }
        }
    }

    #[test]
    fn dialects() {
        let cases = [
            ("amd64", Arch::X86_64),
            ("X86_64", Arch::X86_64),
            ("i686", Arch::I386),
            ("i386", Arch::I386),
            ("arm64", Arch::Aarch64),
            ("armhf", Arch::Arm),
            ("armv7l", Arch::Arm),
            ("armel", Arch::Armel),
            ("armv6l", Arch::Armel),
            ("ppc64el", Arch::Ppc64le),
            ("ppc64le", Arch::Ppc64le),
            ("powerpc", Arch::Ppc),
            ("loong64", Arch::Loongarch64),
            ("mips", Arch::Mips),
            ("mipsel", Arch::Mipsel),
            ("mips64el", Arch::Mips64el),
            ("parisc", Arch::Hppa),
            (" S390X ", Arch::S390x),
        ];
        for (n, a) in cases {
            assert_eq!(Arch::from_name(n), Some(a), "{n}");
        }
        assert_eq!(Arch::from_name("vax"), None);
        assert_eq!(Arch::from_name(""), None);
    }

    #[test]
    fn names_of_common_arches() {
        assert_eq!(Arch::Arm.uname(), "armv7l");
        assert_eq!(Arch::Arm.debian(), Some("armhf"));
        assert_eq!(Arch::Arm.qemu(), "arm");
        assert_eq!(Arch::Ppc64le.debian(), Some("ppc64el"));
        assert_eq!(Arch::I386.uname(), "i686");
        assert_eq!(Arch::Loongarch64.debian(), Some("loong64"));
        assert_eq!(Arch::Mipsel.lxd(), Some("mips"));
        assert_eq!(Arch::Aarch64.to_string(), "aarch64");
    }

    #[test]
    fn lxd_mips_is_little_endian_but_answers_both() {
        assert!(Arch::Mipsel.answers_to("mips"));
        assert!(Arch::Mips.answers_to("mips"));
        assert!(!Arch::Mips.answers_to("mipsel"));
        assert!(Arch::Mips64el.answers_to("mips64"));
    }

    #[test]
    fn known_names_name_each_arch_once() {
        let known = Arch::known_names();
        let arches: Vec<Option<Arch>> = known.iter().map(|n| Arch::from_name(n)).collect();
        let all: Vec<Option<Arch>> = Arch::all().map(Some).collect();
        assert_eq!(arches, all, "{known:?}");
        for n in &known {
            assert_eq!(known.iter().filter(|o| *o == n).count(), 1, "{n}");
        }
        assert_eq!(
            known[..6],
            ["x86_64", "i386", "aarch64", "aarch64_be", "arm", "armel"]
        );
        assert!(known.contains(&"mipsn32el") && known.contains(&"hppa"));
    }

    #[test]
    fn serializes_as_qemu_name() {
        let j = serde_json::to_string(&Arch::Ppc64le).unwrap_or_default();
        assert_eq!(j, "\"ppc64le\"");
        let n = serde_json::to_string(&Arch::Arm.names()).unwrap_or_default();
        assert!(n.contains("\"debian\":\"armhf\""), "{n}");
    }
}
