//! Fixtures built at test time from Debian packages, cached by content in a
//! directory outside the checkout (`$ROOTRUN_TEST_CACHE`, else
//! /var/cache/rootrun-tests as root), shared by every run and every
//! checkout on the machine.
//!
//! An entry's name carries a hash of everything that determines it: the
//! build script's bytes, the architecture, the compression, the Debian
//! package version and the extra files' names, modes and contents (not their
//! mtimes, which the tests set anew on every run). A changed script or
//! package gets a new entry; the old one stays until someone deletes it. An
//! entry is built under an exclusive flock on `ENTRY.lock` (a second builder
//! waits, then finds it built), into `ENTRY.tmp-PID-N`, and renamed into
//! place, so nobody ever sees half an entry. `ENTRY.seal` records its
//! content hash (a tree's metadata fingerprint): a process checks it on
//! first use and rebuilds an entry that changed. Tests never write to an
//! entry: they use hard links in their own work directory, and their frame
//! checks the content is unchanged.

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsStr;
use std::fs;
use std::io::{Read, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::Instant;

use sha2::{Digest, Sha256};

use super::host_state::mounts_below;
use super::lock::{lock, Access};
use super::skip::{is_root, tool};

/// Changed when the cache layout or the meaning of a key changes.
const KEY_VERSION: &str = "rootrun-tests fixture cache v1";

/// Where fixtures are cached.
pub fn cache_dir() -> Result<PathBuf, String> {
    let dir = if let Some(dir) = std::env::var_os("ROOTRUN_TEST_CACHE") {
        PathBuf::from(dir)
    } else if is_root() {
        PathBuf::from("/var/cache/rootrun-tests")
    } else if let Some(dir) = std::env::var_os("XDG_CACHE_HOME") {
        PathBuf::from(dir).join("rootrun-tests")
    } else if let Some(home) = std::env::var_os("HOME") {
        PathBuf::from(home).join(".cache/rootrun-tests")
    } else {
        return Err("no fixture cache: set ROOTRUN_TEST_CACHE".into());
    };
    make_dir(&dir)?;
    Ok(dir)
}

fn make_dir(dir: &Path) -> Result<(), String> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o755)
        .create(dir)
        .map_err(|e| format!("create {}: {e}", dir.display()))
}

/// A BusyBox image as tests/fixtures/build-image.sh makes it.
#[derive(Debug, Clone, Copy)]
pub struct ImageSpec<'a> {
    /// A Debian architecture (amd64, arm64, armhf, ...).
    pub arch: &'a str,
    /// Files copied over the BusyBox tree (`ROOTRUN_FIXTURE_EXTRA`).
    pub extra: Option<&'a Path>,
    /// mksquashfs `-comp` (`ROOTRUN_FIXTURE_COMP`).
    pub compression: &'a str,
}

impl<'a> ImageSpec<'a> {
    pub fn busybox(arch: &'a str) -> Self {
        ImageSpec {
            arch,
            extra: None,
            compression: "gzip",
        }
    }
}

fn script(name: &str) -> Result<(PathBuf, Vec<u8>), String> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    let bytes = fs::read(&path).map_err(|e| format!("read {}: {e}", path.display()))?;
    Ok((path, bytes))
}

/// The cached image for `spec`, built if missing. `Err` names a missing
/// prerequisite (a tool, the package unknown to apt); a build that fails
/// for another reason panics.
pub fn busybox_image(spec: &ImageSpec) -> Result<PathBuf, String> {
    for program in ["apt-get", "apt-cache", "dpkg-deb", "mksquashfs"] {
        tool(program)?;
    }
    let (script_path, script) = script("build-image.sh")?;
    let version = busybox_version(spec.arch)?;
    let key = busybox_key(spec, &script, &version)?;
    let cache = cache_dir()?;
    let entry = cache
        .join("images")
        .join(format!("busybox-{}-{}.img", spec.arch, &key[..16]));
    let debs = cache.join("busybox-static").join(file_name_safe(&version));
    let arch = spec.arch;
    let what = match spec.extra {
        Some(extra) => format!("busybox {arch} image + {}", extra.display()),
        None => format!("busybox {arch} image"),
    };
    cached(&entry, &what, |tmp| {
        let mut cmd = Command::new(&script_path);
        cmd.arg(arch)
            .arg(tmp)
            .arg(&debs)
            .env("ROOTRUN_FIXTURE_COMP", spec.compression);
        match spec.extra {
            Some(extra) => cmd.env("ROOTRUN_FIXTURE_EXTRA", extra),
            None => cmd.env_remove("ROOTRUN_FIXTURE_EXTRA"),
        };
        let out = cmd.output().expect("run tests/fixtures/build-image.sh");
        assert!(
            out.status.success(),
            "building the {arch} fixture image failed (is busybox-static:{arch} downloadable? \
             see tests/setup-host.sh): {}",
            String::from_utf8_lossy(&out.stderr)
        );
    })
}

/// What each format of `busybox_in_format` needs besides unsquashfs.
fn format_tools(format: &str) -> &'static [&'static str] {
    match format {
        "ext4" => &["mkfs.ext4"],
        "erofs" => &["mkfs.erofs"],
        "tar.gz" => &["tar", "gzip"],
        "cpio.gz" => &["cpio", "gzip"],
        "tar.xz" => &["tar", "xz"],
        "tar.zst" => &["tar", "zstd"],
        "tar.bz2" => &["tar", "bzip2"],
        "cpio" => &["cpio"],
        _ => &["tar"],
    }
}

/// The BusyBox image of `spec` repacked as `format` (ext4, erofs, tar,
/// tar.gz, tar.xz, tar.zst, tar.bz2, cpio, cpio.gz) by
/// tests/fixtures/build-format.sh, cached under the SquashFS image's key.
pub fn busybox_in_format(spec: &ImageSpec, format: &str) -> Result<PathBuf, String> {
    let image = busybox_image(spec)?;
    for program in ["unsquashfs"].iter().chain(format_tools(format)) {
        tool(program)?;
    }
    let (script_path, script) = script("build-format.sh")?;
    let source = image
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let key = key(&["busybox-format", &sha256_bytes(&script), &source, format]);
    let entry =
        cache_dir()?
            .join("images")
            .join(format!("busybox-{}-{}.{format}", spec.arch, &key[..16]));
    let what = format!("busybox {} image as {format}", spec.arch);
    cached(&entry, &what, |tmp| {
        let out = Command::new(&script_path)
            .arg(&image)
            .arg(format)
            .arg(tmp)
            .output()
            .expect("run tests/fixtures/build-format.sh");
        assert!(
            out.status.success(),
            "repacking the BusyBox image as {format} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    })
}

/// The key of a BusyBox image: everything build-image.sh's output depends on.
pub fn busybox_key(spec: &ImageSpec, script: &[u8], version: &str) -> Result<String, String> {
    let extra = match spec.extra {
        Some(dir) => tree_content(dir)?,
        None => "none".into(),
    };
    Ok(key(&[
        "busybox-image",
        &sha256_bytes(script),
        spec.arch,
        spec.compression,
        version,
        &extra,
    ]))
}

/// The candidate version of busybox-static for `arch` (what `apt-get
/// download` fetches), asked once per process and architecture.
fn busybox_version(arch: &str) -> Result<String, String> {
    static VERSIONS: OnceLock<Mutex<BTreeMap<String, String>>> = OnceLock::new();
    let versions = VERSIONS.get_or_init(Default::default);
    if let Some(version) = lock_ignoring_poison(versions).get(arch) {
        return Ok(version.clone());
    }
    let package = format!("busybox-static:{arch}");
    let out = Command::new("apt-cache")
        .args(["policy", &package])
        .output()
        .map_err(|e| format!("run apt-cache policy {package}: {e}"))?;
    let text = String::from_utf8_lossy(&out.stdout);
    let version = text
        .lines()
        .find_map(|line| line.trim().strip_prefix("Candidate:"))
        .map(str::trim)
        .filter(|v| !v.is_empty() && *v != "(none)")
        .ok_or_else(|| {
            format!(
                "needs {package}, which apt does not know (dpkg --add-architecture {arch} && \
                 apt-get update, or run tests/setup-host.sh)"
            )
        })?
        .to_owned();
    lock_ignoring_poison(versions).insert(arch.into(), version.clone());
    Ok(version)
}

/// The cached Debian root with systemd for `arch`
/// (tests/fixtures/build-systemd-rootfs.sh, debootstrap: minutes). The
/// archive's packages are not part of the key (not cheap to know): delete
/// the entry to pick up newer ones.
pub fn systemd_rootfs(arch: &str) -> Result<PathBuf, String> {
    for program in ["debootstrap", "chroot"] {
        tool(program)?;
    }
    let (script_path, script) = script("build-systemd-rootfs.sh")?;
    let key = key(&["systemd-rootfs", &sha256_bytes(&script), arch]);
    let entry = cache_dir()?
        .join("rootfs")
        .join(format!("systemd-{arch}-{}", &key[..16]));
    let what = format!("systemd {arch} rootfs");
    cached(&entry, &what, |tmp| {
        debootstrap(&script_path, tmp, arch, &what)
    })
}

/// The cached Debian 13 root with systemd 257 for `arch`
/// (tests/fixtures/build-debian13-systemd-rootfs.sh: debootstrap's second
/// stage under the host's emulator, 10 to 15 minutes on 2 cores), keyed
/// like `systemd_rootfs`.
pub fn debian13_systemd_rootfs(arch: &str) -> Result<PathBuf, String> {
    for program in ["debootstrap", "chroot"] {
        tool(program)?;
    }
    let (script_path, script) = script("build-debian13-systemd-rootfs.sh")?;
    let key = key(&["debian13-systemd-rootfs", &sha256_bytes(&script), arch]);
    let entry = cache_dir()?
        .join("rootfs")
        .join(format!("systemd257-{arch}-{}", &key[..16]));
    let what = format!("Debian 13 systemd {arch} rootfs");
    cached(&entry, &what, |tmp| {
        debootstrap(&script_path, tmp, arch, &what)
    })
}

/// A native Debian 12 minbase root with `packages` (comma-separated, as
/// debootstrap's --include takes them), e.g. `sysvinit-core` or
/// `runit-init`; a `+NAME` is installed afterwards with apt-get, replacing
/// what it conflicts with (`sysvinit-core,+openrc`): built by
/// tests/fixtures/build-debian-rootfs.sh, cached by the script's content
/// and the package list.
pub fn debian_rootfs(packages: &str) -> Result<PathBuf, String> {
    tool("debootstrap")?;
    let (script_path, script) = script("build-debian-rootfs.sh")?;
    let key = key(&["debian-rootfs", &sha256_bytes(&script), packages]);
    let entry =
        cache_dir()?
            .join("rootfs")
            .join(format!("debian-{}-{}", label(packages), &key[..16]));
    let what = format!("Debian root with {packages}");
    cached(&entry, &what, |tmp| {
        debootstrap(&script_path, tmp, packages, &what)
    })
}

/// A Debian 12 root of a foreign `arch` (a Debian name: arm64) with
/// `packages` (as `debian_rootfs` takes them), built under QEMU user
/// emulation by tests/fixtures/build-debian-foreign-rootfs.sh from one
/// cached minbase root of that architecture (the slow debootstrap second
/// stage, paid once for every init): a variant is that base copied, with
/// `packages` installed by apt-get in the tree.
pub fn foreign_debian_rootfs(arch: &str, packages: &str) -> Result<PathBuf, String> {
    for program in ["debootstrap", "chroot"] {
        tool(program)?;
    }
    let (script_path, script) = script("build-debian-foreign-rootfs.sh")?;
    let script_hash = sha256_bytes(&script);
    let base_key = key(&["debian-foreign-base", &script_hash, arch]);
    let rootfs = cache_dir()?.join("rootfs");
    let base = rootfs.join(format!("debian-base-{arch}-{}", &base_key[..16]));
    let what = format!("Debian {arch} minbase root");
    let base = cached(&base, &what, |tmp| {
        build_script(
            &script_path,
            &[OsStr::new("base"), tmp.as_os_str(), OsStr::new(arch)],
            tmp,
            &what,
        )
    })?;
    let variant_key = key(&[
        "debian-foreign-variant",
        &script_hash,
        arch,
        packages,
        &base_key,
    ]);
    let entry = rootfs.join(format!(
        "debian-{arch}-{}-{}",
        label(packages),
        &variant_key[..16]
    ));
    let what = format!("Debian {arch} root with {packages}");
    cached(&entry, &what, |tmp| {
        build_script(
            &script_path,
            &[
                OsStr::new("variant"),
                tmp.as_os_str(),
                base.as_os_str(),
                OsStr::new(packages),
            ],
            tmp,
            &what,
        )
    })
}

/// `packages` as a file name part.
fn label(packages: &str) -> String {
    packages
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect()
}

/// Runs a debootstrap build script (`SCRIPT DIR ARG`) into `tmp`; panics
/// with its stderr when it fails.
fn debootstrap(script_path: &Path, tmp: &Path, arg: &str, what: &str) {
    build_script(script_path, &[tmp.as_os_str(), OsStr::new(arg)], tmp, what);
}

/// Runs a build script with `args` that builds `tmp` (and logs next to
/// it); panics with its stderr when it fails.
fn build_script(script_path: &Path, args: &[&OsStr], tmp: &Path, what: &str) {
    let built = Command::new(script_path)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("run {}: {e}", script_path.display()));
    assert!(
        built.status.success(),
        "building the {what} failed (debootstrap from deb.debian.org; see \
         tests/setup-host.sh): {}",
        String::from_utf8_lossy(&built.stderr)
    );
    // The script logs next to the tree.
    let _ = fs::remove_file(sidecar(tmp, "log"));
}

fn key(parts: &[&str]) -> String {
    let mut hasher = Sha256::new();
    for part in [KEY_VERSION].iter().chain(parts) {
        // Length-prefixed, so no two lists of parts hash alike.
        hasher.update((part.len() as u64).to_le_bytes());
        hasher.update(part.as_bytes());
    }
    hex(&hasher.finalize())
}

/// `ENTRY`, built by `build(tmp)` if missing (see the module's comment).
pub(super) fn cached(
    entry: &Path,
    what: &str,
    build: impl FnOnce(&Path),
) -> Result<PathBuf, String> {
    let looked_up = Instant::now();
    if entry.exists() && sealed(entry) {
        eprintln!(
            "fixture {what}: cached at {} ({:.2} s)",
            entry.display(),
            looked_up.elapsed().as_secs_f64()
        );
        return Ok(entry.to_path_buf());
    }
    let parent = entry.parent().expect("a cache entry has a parent");
    make_dir(parent)?;
    let _held = lock(&sidecar(entry, "lock"), Access::Exclusive)?;
    if entry.exists() {
        if sealed(entry) {
            eprintln!("fixture {what}: built meanwhile at {}", entry.display());
            return Ok(entry.to_path_buf());
        }
        report(&format!(
            "fixture {what}: {} changed since it was built; building it again",
            entry.display()
        ));
        let aside = sidecar(entry, &format!("tmp-{}-changed", std::process::id()));
        fs::rename(entry, &aside).map_err(|e| format!("move {} aside: {e}", entry.display()))?;
    }
    // Holding the entry's lock, every ENTRY.tmp-* is a dead builder's.
    remove_stale_builds(entry);
    static BUILDS: AtomicUsize = AtomicUsize::new(0);
    let n = BUILDS.fetch_add(1, Ordering::Relaxed);
    let tmp = sidecar(entry, &format!("tmp-{}-{n}", std::process::id()));
    let started = Instant::now();
    build(&tmp);
    let seal = fingerprint(&tmp);
    let seal_file = sidecar(entry, "seal");
    let seal_tmp = sidecar(&tmp, "seal");
    fs::write(&seal_tmp, &seal)
        .and_then(|()| fs::rename(&seal_tmp, &seal_file))
        .map_err(|e| format!("write {}: {e}", seal_file.display()))?;
    fs::rename(&tmp, entry).map_err(|e| format!("rename into {}: {e}", entry.display()))?;
    lock_ignoring_poison(verified()).insert(entry.to_path_buf());
    report(&format!(
        "fixture {what}: built in {:.1} s at {}",
        started.elapsed().as_secs_f64(),
        entry.display()
    ));
    Ok(entry.to_path_buf())
}

fn verified() -> &'static Mutex<BTreeSet<PathBuf>> {
    static VERIFIED: OnceLock<Mutex<BTreeSet<PathBuf>>> = OnceLock::new();
    VERIFIED.get_or_init(Default::default)
}

/// Whether `entry` matches its seal (checked once per process).
fn sealed(entry: &Path) -> bool {
    if lock_ignoring_poison(verified()).contains(entry) {
        return true;
    }
    let ok =
        fs::read_to_string(sidecar(entry, "seal")).is_ok_and(|seal| seal == fingerprint(entry));
    if ok {
        lock_ignoring_poison(verified()).insert(entry.to_path_buf());
    }
    ok
}

/// Removes what builders that died left (`ENTRY.tmp-*`), never through a
/// mount point (debootstrap mounts /proc in its tree while it runs).
fn remove_stale_builds(entry: &Path) {
    let Some(parent) = entry.parent() else { return };
    let prefix = format!(
        "{}.tmp-",
        entry.file_name().unwrap_or_default().to_string_lossy()
    );
    for found in fs::read_dir(parent).into_iter().flatten().flatten() {
        if !found.file_name().to_string_lossy().starts_with(&prefix) {
            continue;
        }
        let path = found.path();
        let mounts = mounts_below(&path);
        assert!(
            mounts.is_empty(),
            "a dead fixture build left mounts under {}: {mounts:?}; unmount them",
            path.display()
        );
        let _ = if found.file_type().is_ok_and(|t| t.is_dir()) {
            fs::remove_dir_all(&path)
        } else {
            fs::remove_file(&path)
        };
    }
}

/// `PATH.suffix`, next to PATH.
fn sidecar(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".");
    name.push(suffix);
    PathBuf::from(name)
}

/// A line for the test run's log that libtest does not capture: fixture
/// builds are the slow part of a cold run, and where their time went should
/// show without --nocapture.
fn report(line: &str) {
    let _ = writeln!(std::io::stderr().lock(), "rootrun-tests: {line}");
}

/// What must not change about a fixture: a file's content hash, a tree's
/// metadata fingerprint (every write changes an mtime or a size).
pub fn fingerprint(path: &Path) -> String {
    if path.is_dir() {
        tree_metadata(path)
    } else {
        sha256(path)
    }
}

pub fn sha256(path: &Path) -> String {
    let mut file = fs::File::open(path).expect("open image for hashing");
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = file.read(&mut buf).expect("read image");
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    hex(&hasher.finalize())
}

fn sha256_bytes(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Every entry below `dir`, sorted, without following symlinks.
fn walk(dir: &Path) -> Vec<(PathBuf, fs::Metadata)> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(next) = stack.pop() {
        for entry in fs::read_dir(&next).into_iter().flatten().flatten() {
            let Ok(meta) = entry.metadata() else { continue };
            if meta.is_dir() {
                stack.push(entry.path());
            }
            found.push((entry.path(), meta));
        }
    }
    found.sort_by(|a, b| a.0.cmp(&b.0));
    found
}

/// Names, kinds, permission bits and contents (symlink targets) of a tree:
/// what build-image.sh copies into an image, without mtimes.
fn tree_content(dir: &Path) -> Result<String, String> {
    if !dir.is_dir() {
        return Err(format!("{} is not a directory", dir.display()));
    }
    let mut hasher = Sha256::new();
    for (path, meta) in walk(dir) {
        let relative = path.strip_prefix(dir).unwrap_or(&path);
        let content = if meta.file_type().is_symlink() {
            fs::read_link(&path)
                .map(|t| t.to_string_lossy().into_owned())
                .unwrap_or_default()
        } else if meta.is_file() {
            sha256(&path)
        } else {
            String::new()
        };
        let line = format!(
            "{} {:o} {content}\n",
            relative.display(),
            meta.mode() & 0o177777
        );
        hasher.update(line.as_bytes());
    }
    Ok(hex(&hasher.finalize()))
}

/// Names, kinds, modes, owners, sizes, mtimes and symlink targets of a tree.
fn tree_metadata(dir: &Path) -> String {
    let mut hasher = Sha256::new();
    for (path, meta) in walk(dir) {
        let relative = path.strip_prefix(dir).unwrap_or(&path);
        let target = fs::read_link(&path).unwrap_or_default();
        let line = format!(
            "{} {:o} {}:{} {} {}.{} {}\n",
            relative.display(),
            meta.mode(),
            meta.uid(),
            meta.gid(),
            meta.size(),
            meta.mtime(),
            meta.mtime_nsec(),
            target.display()
        );
        hasher.update(line.as_bytes());
    }
    hex(&hasher.finalize())
}

fn file_name_safe(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "+.~-".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect()
}

pub fn lock_ignoring_poison<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}
