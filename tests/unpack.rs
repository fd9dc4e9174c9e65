//! `rootrun unpack`: every compression against `unsquashfs -d`, and hostile images that must
//! fail cleanly without writing outside DIR. Images are built at test time with mksquashfs;
//! hostile ones by patching bytes of an image whose tables are stored uncompressed.

mod common;

use std::ffi::CString;
use std::fs;
use std::os::fd::AsFd;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use rootrun::image::unpack::{unpack, NoProgress, SkipKind, UnpackOptions, NOTE_NAME};

fn scratch(name: &str) -> PathBuf {
    let dir = common::work_dir().join(format!("unpack-{name}"));
    let _ = Command::new("rm").arg("-rf").arg(&dir).status();
    fs::create_dir_all(&dir).expect("create scratch dir");
    dir
}

fn run(cmd: &mut Command) {
    let out = cmd.output().expect("spawn");
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        common::text(&out.stderr)
    );
}

/// A tree with every file kind, owners, set-id bits, odd modes, old mtimes and xattrs.
fn build_tree(root: &Path) {
    for dir in ["etc", "usr/bin", "srv/ro", "dev", "home/user"] {
        fs::create_dir_all(root.join(dir)).expect("mkdir");
    }
    fs::write(root.join("etc/passwd"), "root:x:0:0::/root:/bin/sh\n").expect("write");
    let big: Vec<u8> = (0..3_000_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    fs::write(root.join("usr/bin/big"), &big).expect("write");
    let text: String = (0..200_000).map(|i| format!("{i}\n")).collect();
    fs::write(root.join("usr/bin/text"), text).expect("write");
    fs::copy("/usr/bin/true", root.join("usr/bin/suid")).expect("copy");
    fs::set_permissions(
        root.join("usr/bin/suid"),
        fs::Permissions::from_mode(0o4755),
    )
    .expect("chmod");
    fs::copy("/usr/bin/true", root.join("usr/bin/capped")).expect("copy");
    run(Command::new("/sbin/setcap")
        .arg("cap_net_raw+ep")
        .arg(root.join("usr/bin/capped")));
    fs::hard_link(root.join("etc/passwd"), root.join("home/user/passwd-link")).expect("link");
    symlink("../etc/passwd", root.join("home/user/rel")).expect("symlink");
    symlink("/etc", root.join("etc-abs")).expect("symlink");
    run(Command::new("mkfifo").arg(root.join("dev/fifo")));
    run(Command::new("mknod")
        .arg(root.join("dev/null"))
        .args(["c", "1", "3"]));
    run(Command::new("mknod")
        .arg(root.join("dev/loop9"))
        .args(["b", "7", "9"]));
    drop(std::os::unix::net::UnixListener::bind(root.join("dev/sock")).expect("socket"));
    run(Command::new("truncate")
        .args(["-s", "5M"])
        .arg(root.join("srv/sparse")));
    std::os::unix::fs::chown(root.join("home/user"), Some(1000), Some(1000)).expect("chown");
    std::os::unix::fs::lchown(root.join("home/user/rel"), Some(1000), Some(100)).expect("chown");
    set_xattr(&root.join("etc/passwd"), "user.test", b"value");
    set_xattr(&root.join("home"), "user.long", &[b'x'; 600]);
    fs::set_permissions(root.join("srv/ro"), fs::Permissions::from_mode(0o555)).expect("chmod");
    run(Command::new("touch")
        .args(["-h", "-d", "2001-02-03 04:05:06"])
        .arg(root.join("etc/passwd"))
        .arg(root.join("home/user/rel"))
        .arg(root.join("srv/ro"))
        .arg(root.join("etc")));
}

fn set_xattr(path: &Path, name: &str, value: &[u8]) {
    let file = fs::File::open(path).expect("open for xattr");
    let name = CString::new(name).expect("xattr name");
    rootrun::sys::fsops::set_xattr_fd(file.as_fd(), &name, value, false).expect("setxattr");
}

fn mksquashfs(tree: &Path, image: &Path, extra: &[&str]) {
    run(Command::new("mksquashfs")
        .arg(tree)
        .arg(image)
        .args(["-noappend", "-quiet", "-no-progress"])
        .args(extra));
}

fn compare(expected: &Path, actual: &Path) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/compare-trees.py");
    let out = Command::new("python3")
        .arg(script)
        .arg(expected)
        .arg(actual)
        .output()
        .expect("run compare-trees.py (python3)");
    assert!(
        out.status.success(),
        "trees differ:\n{}",
        common::text(&out.stdout)
    );
}

fn rootrun_unpack(image: &Path, dest: &Path) -> std::process::Output {
    common::rootrun()
        .arg("unpack")
        .arg(image)
        .arg(dest)
        .output()
        .expect("run rootrun unpack")
}

#[test]
fn every_compression_matches_unsquashfs() {
    if !common::require_root("every_compression_matches_unsquashfs") {
        return;
    }
    let work = scratch("compressions");
    let tree = work.join("tree");
    build_tree(&tree);
    for comp in ["gzip", "xz", "lzo", "lz4", "zstd"] {
        let image = work.join(format!("{comp}.img"));
        mksquashfs(&tree, &image, &["-comp", comp]);
        let expected = work.join(format!("{comp}-unsquashfs"));
        run(Command::new("unsquashfs")
            .args(["-q", "-n", "-d"])
            .arg(&expected)
            .arg(&image));
        let actual = work.join(format!("{comp}-rootrun"));
        let out = rootrun_unpack(&image, &actual);
        assert!(
            out.status.success(),
            "{comp}: {}",
            common::text(&out.stderr)
        );
        // Piped stderr: a summary line, never a progress bar.
        assert!(
            !common::text(&out.stderr).contains('\r'),
            "{comp}: progress on a pipe"
        );
        compare(&expected, &actual);
    }
}

#[test]
fn single_threaded_and_library_api_agree() {
    if !common::require_root("single_threaded_and_library_api_agree") {
        return;
    }
    let work = scratch("inline");
    let tree = work.join("tree");
    build_tree(&tree);
    let image = work.join("img");
    mksquashfs(&tree, &image, &[]);
    let expected = work.join("expected");
    run(Command::new("unsquashfs")
        .args(["-q", "-n", "-d"])
        .arg(&expected)
        .arg(&image));
    let opts = UnpackOptions {
        threads: Some(0),
        privileged: None,
    };
    let report = unpack(&image, &work.join("out"), &opts, &mut NoProgress).expect("unpack");
    assert_eq!(report.hard_links, 1);
    assert!(report.skipped.is_empty(), "{:?}", report.skipped);
    compare(&expected, &work.join("out"));
}

#[test]
fn unprivileged_mode_reports_what_it_skipped() {
    if !common::require_root("unprivileged_mode_reports_what_it_skipped") {
        return;
    }
    let work = scratch("unprivileged");
    let tree = work.join("tree");
    build_tree(&tree);
    let image = work.join("img");
    mksquashfs(&tree, &image, &[]);
    let opts = UnpackOptions {
        threads: None,
        privileged: Some(false),
    };
    let out = work.join("out");
    let report = unpack(&image, &out, &opts, &mut NoProgress).expect("unpack");
    let kinds: Vec<SkipKind> = report.skipped.iter().map(|s| s.kind).collect();
    for kind in [
        SkipKind::DeviceNode,
        SkipKind::Ownership,
        SkipKind::SetIdBits,
        SkipKind::PrivilegedXattr,
    ] {
        assert!(kinds.contains(&kind), "{kind:?} not reported: {kinds:?}");
    }
    assert!(!out.join("dev/null").exists());
    assert!(out.join("dev/fifo").exists());
    let mode = fs::metadata(out.join("usr/bin/suid"))
        .expect("stat")
        .permissions()
        .mode();
    assert_eq!(mode & 0o7777, 0o755);
}

/// An image whose inode and directory tables are stored uncompressed, so names can be patched.
fn raw_image(tree: &Path, image: &Path) {
    mksquashfs(tree, image, &["-noI", "-noD", "-noF", "-noX", "-all-root"]);
}

/// Replaces every occurrence of `from` by `to` (same length) in `image`; returns how many.
fn patch(image: &Path, from: &[u8], to: &[u8]) -> usize {
    assert_eq!(from.len(), to.len());
    let mut bytes = fs::read(image).expect("read image");
    let mut count = 0;
    let mut i = 0;
    while i + from.len() <= bytes.len() {
        if &bytes[i..i + from.len()] == from {
            bytes[i..i + from.len()].copy_from_slice(to);
            count += 1;
            i += from.len();
        } else {
            i += 1;
        }
    }
    fs::write(image, bytes).expect("write image");
    count
}

/// A canary directory outside DIR, checked unchanged after each hostile unpack.
struct Canary {
    dir: PathBuf,
}

impl Canary {
    fn new(work: &Path) -> Canary {
        let dir = work.join("canary");
        fs::create_dir_all(&dir).expect("canary dir");
        fs::write(dir.join("file"), "canary").expect("canary file");
        Canary { dir }
    }

    fn assert_untouched(&self) {
        let names: Vec<_> = fs::read_dir(&self.dir)
            .expect("list canary")
            .map(|e| e.expect("entry").file_name())
            .collect();
        assert_eq!(
            names,
            vec![std::ffi::OsString::from("file")],
            "canary dir changed"
        );
        assert_eq!(
            fs::read_to_string(self.dir.join("file")).expect("canary"),
            "canary"
        );
    }
}

fn expect_failure(image: &Path, dest: &Path, needle: &str) -> String {
    let out = rootrun_unpack(image, dest);
    let err = common::text(&out.stderr);
    assert_eq!(out.status.code(), Some(125), "unpack should fail: {err}");
    assert!(
        err.contains(needle),
        "error should mention {needle:?}: {err}"
    );
    err
}

#[test]
fn duplicate_symlink_and_directory_is_refused() {
    if !common::require_root("duplicate_symlink_and_directory_is_refused") {
        return;
    }
    let work = scratch("dup");
    let canary = Canary::new(&work);
    let tree = work.join("tree");
    fs::create_dir_all(tree.join("zzlinl")).expect("mkdir");
    fs::write(tree.join("zzlinl/owned"), "pwned").expect("write");
    symlink(&canary.dir, tree.join("zzlink")).expect("symlink");
    let image = work.join("img");
    raw_image(&tree, &image);
    assert_eq!(
        patch(&image, b"zzlinl", b"zzlink"),
        1,
        "name not found once in the image"
    );
    let dest = work.join("out");
    expect_failure(
        &image,
        &dest,
        "several directory entries are named \"zzlink\"",
    );
    canary.assert_untouched();
    assert!(
        !dest.exists(),
        "nothing should be created for a refused image"
    );
}

#[test]
fn dot_dot_and_slash_names_are_refused() {
    if !common::require_root("dot_dot_and_slash_names_are_refused") {
        return;
    }
    // Each name is patched together with its directory entry's type (2, a regular file) and
    // name_size-1 fields, so that no other byte of the image can match.
    let cases: [(&str, &[u8]); 3] = [("QQ", b".."), ("QXQ", b"a/b"), ("Q", b".")];
    for (from, to) in cases {
        let work = scratch(&format!("names-{}", from.len()));
        let canary = Canary::new(&work);
        let tree = work.join("tree");
        fs::create_dir_all(tree.join("sub")).expect("mkdir");
        fs::write(tree.join("sub").join(from), "x").expect("write");
        let image = work.join("img");
        raw_image(&tree, &image);
        let size = u16::try_from(from.len() - 1)
            .expect("short name")
            .to_le_bytes();
        let entry = |name: &[u8]| [&[2, 0][..], &size, name].concat();
        assert_eq!(patch(&image, &entry(from.as_bytes()), &entry(to)), 1);
        expect_failure(&image, &work.join("out"), "is not a valid file name");
        canary.assert_untouched();
        assert!(!work.join("out").exists());
    }
}

#[test]
fn existing_dir_with_a_symlink_is_refused() {
    if !common::require_root("existing_dir_with_a_symlink_is_refused") {
        return;
    }
    let work = scratch("existing");
    let canary = Canary::new(&work);
    let tree = work.join("tree");
    fs::create_dir_all(tree.join("etc")).expect("mkdir");
    fs::write(tree.join("etc/passwd"), "x").expect("write");
    let image = work.join("img");
    mksquashfs(&tree, &image, &[]);
    let dest = work.join("out");
    fs::create_dir_all(&dest).expect("mkdir");
    symlink(&canary.dir, dest.join("etc")).expect("symlink");
    expect_failure(&image, &dest, "not empty");
    canary.assert_untouched();
    // DIR itself a symlink to the canary: refused too.
    let link = work.join("link");
    symlink(&canary.dir, &link).expect("symlink");
    expect_failure(&image, &link, "symbolic link");
    canary.assert_untouched();
}

/// An image whose big file's data is damaged half-way, so extraction fails after writing.
fn damaged_image(work: &Path) -> PathBuf {
    let tree = work.join("tree");
    fs::create_dir_all(tree.join("a/b")).expect("mkdir");
    for i in 0..50 {
        fs::write(
            tree.join(format!("a/f{i}")),
            format!("file {i}\n").repeat(100),
        )
        .expect("w");
    }
    let text: String = (0..2_000_000).map(|i| format!("{i}\n")).collect();
    fs::write(tree.join("a/b/big"), text).expect("write");
    let image = work.join("img");
    mksquashfs(&tree, &image, &["-comp", "gzip"]);
    let mut bytes = fs::read(&image).expect("read");
    // The big file's blocks come first after the superblock; damage the middle of them.
    for b in &mut bytes[200_000..200_400] {
        *b ^= 0x5a;
    }
    fs::write(&image, bytes).expect("write");
    image
}

#[test]
fn corrupted_data_removes_the_partial_dir_rootrun_created() {
    if !common::require_root("corrupted_data_removes_the_partial_dir_rootrun_created") {
        return;
    }
    let work = scratch("corrupt-created");
    let canary = Canary::new(&work);
    let image = damaged_image(&work);
    let dest = work.join("out");
    let err = expect_failure(&image, &dest, "corrupted image");
    assert!(err.contains("removed"), "{err}");
    assert!(!dest.exists(), "partial DIR left behind");
    canary.assert_untouched();
}

#[test]
fn corrupted_data_leaves_a_note_in_a_users_dir() {
    if !common::require_root("corrupted_data_leaves_a_note_in_a_users_dir") {
        return;
    }
    let work = scratch("corrupt-existing");
    let image = damaged_image(&work);
    let dest = work.join("out");
    fs::create_dir_all(&dest).expect("mkdir");
    let err = expect_failure(&image, &dest, "partial tree");
    assert!(err.contains(NOTE_NAME), "{err}");
    let note = fs::read_to_string(dest.join(NOTE_NAME)).expect("note");
    assert!(note.contains("incomplete"), "{note}");
}

#[test]
fn truncated_image_is_an_error_and_nothing_is_created() {
    if !common::require_root("truncated_image_is_an_error_and_nothing_is_created") {
        return;
    }
    let work = scratch("truncated");
    let tree = work.join("tree");
    build_tree(&tree);
    let image = work.join("img");
    mksquashfs(&tree, &image, &[]);
    let len = fs::metadata(&image).expect("stat").len();
    fs::OpenOptions::new()
        .write(true)
        .open(&image)
        .and_then(|f| f.set_len(len / 2))
        .expect("truncate");
    let out = rootrun_unpack(&image, &work.join("out"));
    assert_eq!(
        out.status.code(),
        Some(125),
        "{}",
        common::text(&out.stderr)
    );
    assert!(!work.join("out").exists());
    // A file that is not an image at all.
    fs::write(work.join("text"), "hello").expect("write");
    expect_failure(
        &work.join("text"),
        &work.join("out2"),
        "not a SquashFS image",
    );
}
