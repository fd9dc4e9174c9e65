//! The CPU architectures rootrun knows, and their names in each dialect.
//!
//! Tools disagree on names: `uname -m` says `mips` for both byte orders,
//! Debian says `armhf`/`ppc64el`, qemu-user says `arm`/`ppc64le`, and LXD's
//! metadata.yaml uses `armv7l` and (per LXD's shared/osarch table) `mips`
//! for little-endian MIPS. The qemu name is the only one that is unique per
//! [`Arch`] apart from arm/armel, which share one emulator.

use serde::{Serialize, Serializer};
use std::fmt;

/// A CPU architecture together with the ABI facts that decide which
/// emulator, loader and distribution port fit a binary.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Arch {
    X86_64,
    I386,
    Aarch64,
    Aarch64Be,
    /// 32-bit ARM, EABI5, hard-float (Debian armhf).
    Arm,
    /// 32-bit ARM, EABI5, soft-float (Debian armel).
    Armel,
    Armeb,
    /// MIPS o32, big-endian.
    Mips,
    /// MIPS o32, little-endian.
    Mipsel,
    /// MIPS n32 (64-bit CPU, 32-bit pointers), big-endian.
    Mipsn32,
    Mipsn32el,
    Mips64,
    Mips64el,
    Ppc,
    /// 64-bit PowerPC, big-endian (ELFv1).
    Ppc64,
    /// 64-bit PowerPC, little-endian (ELFv2).
    Ppc64le,
    Riscv32,
    Riscv64,
    S390x,
    Loongarch64,
    Sparc,
    Sparc32plus,
    Sparc64,
    Alpha,
    Sh4,
    Sh4eb,
    M68k,
    Hppa,
}

/// Every name of one [`Arch`], for `inspect --json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ArchNames {
    pub uname: &'static str,
    pub debian: Option<&'static str>,
    pub qemu: &'static str,
    pub lxd: Option<&'static str>,
}

struct Row {
    arch: Arch,
    uname: &'static str,
    debian: Option<&'static str>,
    qemu: &'static str,
    lxd: Option<&'static str>,
    /// Other spellings seen in the wild (RPM, Go, LXD aliases).
    aliases: &'static [&'static str],
}

const fn row(
    arch: Arch,
    uname: &'static str,
    debian: Option<&'static str>,
    qemu: &'static str,
    lxd: Option<&'static str>,
    aliases: &'static [&'static str],
) -> Row {
    Row {
        arch,
        uname,
        debian,
        qemu,
        lxd,
        aliases,
    }
}

// LXD names follow LXD's shared/osarch/architectures.go: its "mips" and
// "mips64" are the little-endian ports (aliases mipsel, mips64el).
#[rustfmt::skip]
const TABLE: &[Row] = &[
    row(Arch::X86_64, "x86_64", Some("amd64"), "x86_64", Some("x86_64"), &["x64", "x86-64"]),
    row(Arch::I386, "i686", Some("i386"), "i386", Some("i686"), &["i586", "i486", "x86", "386"]),
    row(Arch::Aarch64, "aarch64", Some("arm64"), "aarch64", Some("aarch64"), &["armv8", "arm64-v8a"]),
    row(Arch::Aarch64Be, "aarch64_be", None, "aarch64_be", None, &["arm64be"]),
    row(Arch::Arm, "armv7l", Some("armhf"), "arm", Some("armv7l"), &["armv7", "armv7hl", "armhfp", "armv8l"]),
    row(Arch::Armel, "armv5tel", Some("armel"), "arm", Some("armv6l"), &["armv6l", "armv5te"]),
    row(Arch::Armeb, "armv5teb", Some("armeb"), "armeb", None, &[]),
    row(Arch::Mips, "mips", Some("mips"), "mips", None, &[]),
    row(Arch::Mipsel, "mips", Some("mipsel"), "mipsel", Some("mips"), &["mipsle", "mips32el"]),
    row(Arch::Mipsn32, "mips64", Some("mipsn32"), "mipsn32", None, &[]),
    row(Arch::Mipsn32el, "mips64", Some("mipsn32el"), "mipsn32el", None, &[]),
    row(Arch::Mips64, "mips64", Some("mips64"), "mips64", None, &[]),
    row(Arch::Mips64el, "mips64", Some("mips64el"), "mips64el", Some("mips64"), &["mips64le"]),
    row(Arch::Ppc, "ppc", Some("powerpc"), "ppc", Some("ppc"), &[]),
    row(Arch::Ppc64, "ppc64", Some("ppc64"), "ppc64", Some("ppc64"), &["powerpc64"]),
    row(Arch::Ppc64le, "ppc64le", Some("ppc64el"), "ppc64le", Some("ppc64le"), &["powerpc64le"]),
    row(Arch::Riscv32, "riscv32", None, "riscv32", Some("riscv32"), &[]),
    row(Arch::Riscv64, "riscv64", Some("riscv64"), "riscv64", Some("riscv64"), &[]),
    row(Arch::S390x, "s390x", Some("s390x"), "s390x", Some("s390x"), &[]),
    row(Arch::Loongarch64, "loongarch64", Some("loong64"), "loongarch64", Some("loongarch64"), &[]),
    row(Arch::Sparc, "sparc", Some("sparc"), "sparc", None, &[]),
    row(Arch::Sparc32plus, "sparc", None, "sparc32plus", None, &[]),
    row(Arch::Sparc64, "sparc64", Some("sparc64"), "sparc64", None, &[]),
    row(Arch::Alpha, "alpha", Some("alpha"), "alpha", None, &[]),
    row(Arch::Sh4, "sh4", Some("sh4"), "sh4", None, &[]),
    row(Arch::Sh4eb, "sh4eb", None, "sh4eb", None, &[]),
    row(Arch::M68k, "m68k", Some("m68k"), "m68k", None, &[]),
    row(Arch::Hppa, "parisc", Some("hppa"), "hppa", None, &["parisc32"]),
];

impl Arch {
    /// Every architecture, in table order.
    pub fn all() -> impl Iterator<Item = Arch> {
        TABLE.iter().map(|r| r.arch)
    }

    fn row(self) -> &'static Row {
        // The table has one row per variant (checked by a unit test); the
        // fallback only keeps this total without a panic.
        TABLE.iter().find(|r| r.arch == self).unwrap_or(&TABLE[0])
    }

    /// The `uname -m` machine name a kernel of this CPU reports.
    /// Not unique: mips and mipsel both say `mips`.
    pub fn uname(self) -> &'static str {
        self.row().uname
    }

    /// The Debian (dpkg) architecture name, when Debian has a port.
    pub fn debian(self) -> Option<&'static str> {
        self.row().debian
    }

    /// The qemu-user target: `qemu-<name>-static`, binfmt entry `qemu-<name>`.
    pub fn qemu(self) -> &'static str {
        self.row().qemu
    }

    /// The architecture name in LXD's metadata.yaml, when LXD has one.
    pub fn lxd(self) -> Option<&'static str> {
        self.row().lxd
    }

    pub fn names(self) -> ArchNames {
        let r = self.row();
        ArchNames {
            uname: r.uname,
            debian: r.debian,
            qemu: r.qemu,
            lxd: r.lxd,
        }
    }

    /// Parse a name in any dialect, case-insensitive. Where dialects
    /// disagree (`mips` is big-endian for qemu and Debian, little-endian for
    /// LXD; `arm` is both arm and armel for qemu) the qemu, then Debian,
    /// then uname, then LXD reading wins. To compare an image's metadata
    /// with a known Arch, use [`Arch::answers_to`] instead.
    pub fn from_name(name: &str) -> Option<Arch> {
        let n = name.trim().to_ascii_lowercase();
        let by = |f: &dyn Fn(&Row) -> Option<&'static str>| {
            TABLE
                .iter()
                .find(|r| f(r) == Some(n.as_str()))
                .map(|r| r.arch)
        };
        by(&|r| Some(r.qemu))
            .or_else(|| by(&|r| r.debian))
            .or_else(|| by(&|r| Some(r.uname)))
            .or_else(|| by(&|r| r.lxd))
            .or_else(|| {
                TABLE
                    .iter()
                    .find(|r| r.aliases.contains(&n.as_str()))
                    .map(|r| r.arch)
            })
    }

    /// Whether `name` (any dialect, case-insensitive) can mean this Arch.
    /// `mips` answers true for both Mips and Mipsel.
    pub fn answers_to(self, name: &str) -> bool {
        let n = name.trim().to_ascii_lowercase();
        let r = self.row();
        r.qemu == n
            || r.uname == n
            || r.debian == Some(n.as_str())
            || r.lxd == Some(n.as_str())
            || r.aliases.contains(&n.as_str())
    }

    /// The architecture this rootrun binary was compiled for.
    pub const fn host() -> Arch {
        host::ARCH
    }

    /// Whether a binary of `self` runs on a `host` CPU without emulation.
    ///
    /// Only x86_64 -> i386 is assumed: every x86_64 kernel we target has
    /// IA32 emulation. An aarch64 CPU may lack AArch32 (many do), and
    /// ppc64le/mips64el hosts rarely enable their 32-bit ABIs, so those go
    /// through qemu like any foreign binary.
    pub fn runs_natively(self, host: Arch) -> bool {
        self == host || (host == Arch::X86_64 && self == Arch::I386)
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

#[rustfmt::skip]
mod host {
    use super::Arch;
    #[cfg(target_arch = "x86_64")]
    pub const ARCH: Arch = Arch::X86_64;
    #[cfg(target_arch = "x86")]
    pub const ARCH: Arch = Arch::I386;
    #[cfg(all(target_arch = "aarch64", target_endian = "little"))]
    pub const ARCH: Arch = Arch::Aarch64;
    #[cfg(all(target_arch = "aarch64", target_endian = "big"))]
    pub const ARCH: Arch = Arch::Aarch64Be;
    #[cfg(all(target_arch = "arm", target_endian = "little", target_abi = "eabihf"))]
    pub const ARCH: Arch = Arch::Arm;
    #[cfg(all(target_arch = "arm", target_endian = "little", not(target_abi = "eabihf")))]
    pub const ARCH: Arch = Arch::Armel;
    #[cfg(all(target_arch = "arm", target_endian = "big"))]
    pub const ARCH: Arch = Arch::Armeb;
    #[cfg(all(target_arch = "mips", target_endian = "big"))]
    pub const ARCH: Arch = Arch::Mips;
    #[cfg(all(target_arch = "mips", target_endian = "little"))]
    pub const ARCH: Arch = Arch::Mipsel;
    #[cfg(all(target_arch = "mips64", target_pointer_width = "32", target_endian = "big"))]
    pub const ARCH: Arch = Arch::Mipsn32;
    #[cfg(all(target_arch = "mips64", target_pointer_width = "32", target_endian = "little"))]
    pub const ARCH: Arch = Arch::Mipsn32el;
    #[cfg(all(target_arch = "mips64", target_pointer_width = "64", target_endian = "big"))]
    pub const ARCH: Arch = Arch::Mips64;
    #[cfg(all(target_arch = "mips64", target_pointer_width = "64", target_endian = "little"))]
    pub const ARCH: Arch = Arch::Mips64el;
    #[cfg(target_arch = "powerpc")]
    pub const ARCH: Arch = Arch::Ppc;
    #[cfg(all(target_arch = "powerpc64", target_endian = "big"))]
    pub const ARCH: Arch = Arch::Ppc64;
    #[cfg(all(target_arch = "powerpc64", target_endian = "little"))]
    pub const ARCH: Arch = Arch::Ppc64le;
    #[cfg(target_arch = "riscv32")]
    pub const ARCH: Arch = Arch::Riscv32;
    #[cfg(target_arch = "riscv64")]
    pub const ARCH: Arch = Arch::Riscv64;
    #[cfg(target_arch = "s390x")]
    pub const ARCH: Arch = Arch::S390x;
    #[cfg(target_arch = "loongarch64")]
    pub const ARCH: Arch = Arch::Loongarch64;
    #[cfg(target_arch = "sparc")]
    pub const ARCH: Arch = Arch::Sparc;
    #[cfg(target_arch = "sparc64")]
    pub const ARCH: Arch = Arch::Sparc64;
    #[cfg(target_arch = "m68k")]
    pub const ARCH: Arch = Arch::M68k;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_has_one_row_per_arch() {
        for r in TABLE {
            assert_eq!(TABLE.iter().filter(|o| o.arch == r.arch).count(), 1);
            assert_eq!(r.arch.row().arch, r.arch);
        }
        assert_eq!(TABLE.len(), 28);
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
    fn natively() {
        assert!(Arch::I386.runs_natively(Arch::X86_64));
        assert!(Arch::X86_64.runs_natively(Arch::X86_64));
        assert!(!Arch::Arm.runs_natively(Arch::Aarch64));
        assert!(!Arch::X86_64.runs_natively(Arch::I386));
    }

    #[test]
    fn serializes_as_qemu_name() {
        let j = serde_json::to_string(&Arch::Ppc64le).unwrap_or_default();
        assert_eq!(j, "\"ppc64le\"");
        let n = serde_json::to_string(&Arch::Arm.names()).unwrap_or_default();
        assert!(n.contains("\"debian\":\"armhf\""), "{n}");
    }
}
