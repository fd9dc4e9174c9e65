//! `rootrun unpack`: every compression against `unsquashfs -d`, and hostile images that must
//! fail cleanly without writing outside DIR. Images are built at test time with mksquashfs;
//! hostile ones by patching bytes of an image whose tables are stored uncompressed.

use std::ffi::CString;
use std::fs;
use std::os::fd::AsFd;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use rootrun::image::unpack::{unpack, NoProgress, SkipKind, UnpackOptions, NOTE_NAME};

use crate::harness::{rootrun, text, wait_with_limit, Frame};

/// What these tests run besides rootrun (squashfs-tools, python3,
/// libcap2-bin, util-linux).
const TOOLS: &[&str] = &[
    "mksquashfs",
    "unsquashfs",
    "python3",
    "setcap",
    "prlimit",
    "unshare",
];

/// The frame of an unpack test: root (owners, device nodes), its tools.
fn unpack_frame(test: &str) -> Option<Frame> {
    Frame::setup(test).tools(TOOLS).start()
}

fn run(cmd: &mut Command) {
    let out = cmd.output().expect("spawn");
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        text(&out.stderr)
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
    assert!(out.status.success(), "trees differ:\n{}", text(&out.stdout));
}

fn rootrun_unpack(image: &Path, dest: &Path) -> std::process::Output {
    rootrun()
        .arg("unpack")
        .arg(image)
        .arg(dest)
        .output()
        .expect("run rootrun unpack")
}

/// Unpacks `image` with `unsquashfs -d` into `PREFIX-unsquashfs` and with rootrun into
/// `PREFIX-rootrun`, and checks that the trees are the same; returns rootrun's output.
fn unpack_like_unsquashfs(image: &Path, prefix: &Path) -> std::process::Output {
    let expected = prefix.with_extension("unsquashfs");
    run(Command::new("unsquashfs")
        .args(["-q", "-n", "-d"])
        .arg(&expected)
        .arg(image));
    let actual = prefix.with_extension("rootrun");
    let out = rootrun_unpack(image, &actual);
    assert!(
        out.status.success(),
        "{}: {}",
        image.display(),
        text(&out.stderr)
    );
    compare(&expected, &actual);
    out
}

#[test]
fn every_compression_matches_unsquashfs() {
    let Some(frame) = unpack_frame("every_compression_matches_unsquashfs") else {
        return;
    };
    let work = frame.dir("compressions");
    let tree = work.join("tree");
    build_tree(&tree);
    for comp in ["gzip", "xz", "lzo", "lz4", "zstd"] {
        let image = work.join(format!("{comp}.img"));
        mksquashfs(&tree, &image, &["-comp", comp]);
        let out = unpack_like_unsquashfs(&image, &work.join(comp));
        // Piped stderr: a summary line, never a progress bar.
        assert!(
            !text(&out.stderr).contains('\r'),
            "{comp}: progress on a pipe"
        );
    }
    frame.check();
}

/// The shape of a distribution's root (tests/fixtures/realistic-tree.py, as the benchmarks'
/// realistic image, smaller): thousands of small files in deep directories, symlinks, hard
/// links, xz. Many files share each fragment block, and the workers fill the files of
/// different directories at once.
#[test]
fn a_distribution_shaped_xz_image_matches_unsquashfs() {
    let Some(frame) = unpack_frame("a_distribution_shaped_xz_image_matches_unsquashfs") else {
        return;
    };
    let work = frame.dir("realistic");
    let tree = work.join("tree");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/realistic-tree.py");
    run(Command::new("python3")
        .arg(script)
        .arg(&tree)
        .args(["3000", "2"]));
    let image = work.join("realistic.img");
    mksquashfs(&tree, &image, &["-comp", "xz"]);
    let out = unpack_like_unsquashfs(&image, &work.join("realistic"));
    // The summary counts what the tree has: thousands of files, some hard links.
    let summary = text(&out.stderr);
    let count = |what: &str| {
        summary.split(", ").find_map(|part| {
            part.trim()
                .strip_suffix(what)?
                .split(' ')
                .next_back()?
                .parse::<u64>()
                .ok()
        })
    };
    assert!(count(" hard links") > Some(0), "{summary}");
    assert!(count(" symlinks") > Some(100), "{summary}");
    frame.check();
}

#[test]
fn single_threaded_and_library_api_agree() {
    let Some(frame) = unpack_frame("single_threaded_and_library_api_agree") else {
        return;
    };
    let work = frame.dir("inline");
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
        ..UnpackOptions::default()
    };
    let report = unpack(&image, &work.join("out"), &opts, &mut NoProgress).expect("unpack");
    assert_eq!(report.hard_links, 1);
    assert!(report.skipped.is_empty(), "{:?}", report.skipped);
    compare(&expected, &work.join("out"));
    frame.check();
}

#[test]
fn unprivileged_mode_reports_what_it_skipped() {
    let Some(frame) = unpack_frame("unprivileged_mode_reports_what_it_skipped") else {
        return;
    };
    let work = frame.dir("unprivileged");
    let tree = work.join("tree");
    build_tree(&tree);
    let image = work.join("img");
    mksquashfs(&tree, &image, &[]);
    let opts = UnpackOptions {
        privileged: Some(false),
        ..UnpackOptions::default()
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
    frame.check();
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
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(125), "unpack should fail: {err}");
    assert!(
        err.contains(needle),
        "error should mention {needle:?}: {err}"
    );
    err
}

#[test]
fn duplicate_symlink_and_directory_is_refused() {
    let Some(frame) = unpack_frame("duplicate_symlink_and_directory_is_refused") else {
        return;
    };
    let work = frame.dir("dup");
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
    frame.check();
}

#[test]
fn dot_dot_and_slash_names_are_refused() {
    let Some(frame) = unpack_frame("dot_dot_and_slash_names_are_refused") else {
        return;
    };
    // Each name is patched together with its directory entry's type (2, a regular file) and
    // name_size-1 fields, so that no other byte of the image can match.
    let cases: [(&str, &[u8]); 3] = [("QQ", b".."), ("QXQ", b"a/b"), ("Q", b".")];
    for (from, to) in cases {
        let work = frame.dir(&format!("names-{}", from.len()));
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
    frame.check();
}

#[test]
fn existing_dir_with_a_symlink_is_refused() {
    let Some(frame) = unpack_frame("existing_dir_with_a_symlink_is_refused") else {
        return;
    };
    let work = frame.dir("existing");
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
    frame.check();
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
    let Some(frame) = unpack_frame("corrupted_data_removes_the_partial_dir_rootrun_created") else {
        return;
    };
    let work = frame.dir("corrupt-created");
    let canary = Canary::new(&work);
    let image = damaged_image(&work);
    let dest = work.join("out");
    let err = expect_failure(&image, &dest, "corrupted image");
    assert!(err.contains("removed"), "{err}");
    assert!(!dest.exists(), "partial DIR left behind");
    canary.assert_untouched();
    frame.check();
}

#[test]
fn corrupted_data_leaves_a_note_in_a_users_dir() {
    let Some(frame) = unpack_frame("corrupted_data_leaves_a_note_in_a_users_dir") else {
        return;
    };
    let work = frame.dir("corrupt-existing");
    let image = damaged_image(&work);
    let dest = work.join("out");
    fs::create_dir_all(&dest).expect("mkdir");
    let err = expect_failure(&image, &dest, "partial tree");
    assert!(err.contains(NOTE_NAME), "{err}");
    let note = fs::read_to_string(dest.join(NOTE_NAME)).expect("note");
    assert!(note.contains("incomplete"), "{note}");
    frame.check();
}

#[test]
fn truncated_image_is_an_error_and_nothing_is_created() {
    let Some(frame) = unpack_frame("truncated_image_is_an_error_and_nothing_is_created") else {
        return;
    };
    let work = frame.dir("truncated");
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
    assert_eq!(out.status.code(), Some(125), "{}", text(&out.stderr));
    assert!(!work.join("out").exists());
    // A file that is not an image at all.
    fs::write(work.join("text"), "hello").expect("write");
    expect_failure(
        &work.join("text"),
        &work.join("out2"),
        "not a SquashFS image",
    );
    frame.check();
}

/// The hang guard for hostile images: generous, since every case here answers in milliseconds.
const HOSTILE_LIMIT: std::time::Duration = std::time::Duration::from_secs(20);
/// Address space for rootrun on a hostile image (a normal unpack runs under 512 MiB): an
/// unbounded allocation aborts instead of swapping the machine.
const HOSTILE_AS: &str = "--as=1073741824";

/// `rootrun ARGS` under the time and address-space limits above.
fn rootrun_bounded(args: &[&std::ffi::OsStr]) -> std::process::Output {
    let child = Command::new("prlimit")
        .arg(HOSTILE_AS)
        .arg("--")
        .arg(env!("CARGO_BIN_EXE_rootrun"))
        .args(args)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn prlimit rootrun");
    wait_with_limit(child, HOSTILE_LIMIT)
}

/// Like `expect_failure`, bounded in time and memory.
fn expect_bounded_failure(image: &Path, dest: &Path, needles: &[&str]) -> String {
    let out = rootrun_bounded(&["unpack".as_ref(), image.as_os_str(), dest.as_os_str()]);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(125), "unpack should fail: {err}");
    for needle in needles {
        assert!(
            err.contains(needle),
            "error should mention {needle:?}: {err}"
        );
    }
    err
}

/// `rootrun inspect IMAGE [extra]` must answer: success, or rootrun's error status with a
/// message (never a panic, a signal or a hang). Returns stdout and stderr.
fn inspect_answers(image: &Path, extra: &[&str]) -> (bool, String, String) {
    let mut args = vec!["inspect".as_ref(), image.as_os_str()];
    args.extend(extra.iter().map(std::ffi::OsStr::new));
    let out = rootrun_bounded(&args);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    match out.status.code() {
        Some(0) => {}
        Some(125) => assert!(stderr.contains("rootrun: "), "no message: {stderr}"),
        other => panic!("inspect {extra:?} ended with {other:?}: {stderr}"),
    }
    (out.status.success(), stdout, stderr)
}

/// Finds `pattern` in `bytes` exactly once.
fn find_once(bytes: &[u8], pattern: &[u8]) -> usize {
    let hits: Vec<usize> = bytes
        .windows(pattern.len())
        .enumerate()
        .filter(|(_, w)| *w == pattern)
        .map(|(i, _)| i)
        .collect();
    assert_eq!(hits.len(), 1, "{pattern:?} found {} times", hits.len());
    hits[0]
}

/// mtimes that mark inodes, so a test can find them in an uncompressed inode table.
const DIR_MARK: u32 = 0x5a00_0000;
const FILE_MARK: u32 = 0x5b00_0000;

fn set_mtime(path: &Path, seconds: u32) {
    let time = std::time::UNIX_EPOCH + std::time::Duration::from_secs(seconds.into());
    fs::File::open(path)
        .and_then(|f| f.set_modified(time))
        .expect("set mtime");
}

/// Offset of the inode whose mtime is `mark`. Every inode starts `{type: u16, mode: u16,
/// uid: u16, gid: u16, mtime: u32, inode_number: u32}` (squashfs_fs.h).
fn inode_offset(bytes: &[u8], mark: u32, kind: u16) -> usize {
    let at = find_once(bytes, &mark.to_le_bytes()) - 8;
    assert_eq!(bytes[at..at + 2], kind.to_le_bytes(), "inode type at {at}");
    at
}

fn le_u32(bytes: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(bytes[at..at + 4].try_into().expect("4 bytes"))
}

/// A chain of `levels` directories `/a00/a01/...`; level k also holds an empty `bKK`. Names
/// are 3 bytes and directories' mtimes are `DIR_MARK + 2k` (`+1` for `bKK`).
struct Chain {
    image: PathBuf,
    bytes: Vec<u8>,
}

const LEVELS: u32 = 30;

impl Chain {
    fn build(work: &Path) -> Chain {
        let tree = work.join("tree");
        let mut dir = tree.clone();
        let mut marks = Vec::new();
        for level in 0..LEVELS {
            for (n, letter) in ["a", "b"].into_iter().enumerate() {
                let path = dir.join(format!("{letter}{level:02}"));
                fs::create_dir_all(&path).expect("mkdir");
                marks.push((path, DIR_MARK + 2 * level + n as u32));
            }
            dir = dir.join(format!("a{level:02}"));
        }
        // After every mkdir, which would change the parent's mtime again.
        for (path, mark) in &marks {
            set_mtime(path, *mark);
        }
        let image = work.join("img");
        raw_image(&tree, &image);
        let bytes = fs::read(&image).expect("read image");
        Chain { image, bytes }
    }

    fn dir_inode(&self, letter: u32, level: u32) -> usize {
        inode_offset(&self.bytes, DIR_MARK + 2 * level + letter, 1)
    }

    fn inode_number(&self, letter: u32, level: u32) -> u32 {
        le_u32(&self.bytes, self.dir_inode(letter, level) + 12)
    }

    /// Offset of the directory entry `{offset: u16, inode_offset: i16, type: u16 = 1,
    /// name_size - 1: u16 = 2, name}` for `aKK` (letter 0) or `bKK` (letter 1).
    fn entry(&self, letter: u32, level: u32) -> usize {
        let name = format!("{}{level:02}", ["a", "b"][letter as usize]);
        find_once(&self.bytes, &[&[1, 0, 2, 0][..], name.as_bytes()].concat()) - 4
    }

    /// Makes entry `bKK` name the same inode as `aKK` (both fields the kernel and backhand use:
    /// the offset in the inode block and the inode number relative to the listing header).
    fn entry_to_sibling(&mut self, level: u32) {
        let (a, b) = (self.entry(0, level), self.entry(1, level));
        self.bytes.copy_within(a..a + 4, b);
    }

    /// Makes directory inode `bKK` share the listing of `aKK`, or of `to`'s `aKK`: block_index,
    /// link_count, file_size and block_offset follow the 16-byte header of a basic directory.
    fn listing_from(&mut self, level: u32, to: u32) {
        let (a, b) = (self.dir_inode(0, to), self.dir_inode(1, level));
        self.bytes.copy_within(a + 16..a + 28, b + 16);
    }

    /// Makes entry `bKK` of `level` name the directory `aKK` of the ancestor level `to`: the
    /// inode's offset in its block (taken from the ancestor's own entry: all inodes share one
    /// block here) and its number relative to the listing header, as the kernel and rootrun
    /// read them.
    fn entry_to_ancestor(&mut self, level: u32, to: u32) {
        let a = self.entry(0, level);
        let relative = i16::from_le_bytes([self.bytes[a + 2], self.bytes[a + 3]]);
        let base = i64::from(self.inode_number(0, level)) - i64::from(relative);
        let target = i64::from(self.inode_number(0, to)) - base;
        let target = i16::try_from(target).expect("inode offset fits");
        let b = self.entry(1, level);
        let ancestor = self.entry(0, to);
        self.bytes.copy_within(ancestor..ancestor + 2, b);
        self.bytes[b + 2..b + 4].copy_from_slice(&target.to_le_bytes());
    }

    fn write(&self, name: &str) -> PathBuf {
        let image = self.image.with_file_name(name);
        fs::write(&image, &self.bytes).expect("write image");
        image
    }
}

/// `/a00/.../aKK` or `/b00/.../bKK` style paths: `letters[k]` picks the name at level k.
fn chain_path(letters: impl IntoIterator<Item = char>) -> String {
    letters
        .into_iter()
        .enumerate()
        .map(|(level, letter)| format!("/{letter}{level:02}"))
        .collect()
}

/// A loop or DAG image is refused, naming the path that reached a directory a second time, and
/// no DIR is created.
fn assert_refused_as_revisited(image: &Path, dest: &Path, second: &str) {
    let started = std::time::Instant::now();
    let err = expect_bounded_failure(
        image,
        dest,
        &[
            "directory reached a second time (a directory loop or DAG)",
            second,
        ],
    );
    eprintln!(
        "{}: refused in {:?}: {err}",
        image.display(),
        started.elapsed()
    );
    assert!(!dest.exists(), "DIR created for a refused image");
}

#[test]
fn directory_dags_are_refused_before_dir_is_touched() {
    let Some(frame) = unpack_frame("directory_dags_are_refused_before_dir_is_touched") else {
        return;
    };
    let work = frame.dir("dag");
    let canary = Canary::new(&work);
    let mut entries = Chain::build(&work);
    let mut listings = Chain::build(&frame.dir("dag-listings"));
    for level in 0..LEVELS {
        entries.entry_to_sibling(level);
        listings.listing_from(level, level);
    }
    // Two entries per level naming one child inode: 2^30 paths from 61 inodes. Two inodes per
    // level sharing one listing: as many paths, and no inode is named twice by an entry.
    let images = [
        (entries.write("entry-dag.img"), "/a28/b29"),
        (listings.write("listing-dag.img"), "/b28/a29"),
    ];
    for (image, second) in &images {
        let dest = work.join("out");
        assert_refused_as_revisited(image, &dest, second);
        // A user's DIR: the tree is refused before DIR is written, so it stays empty.
        fs::create_dir_all(&dest).expect("mkdir");
        expect_bounded_failure(image, &dest, &["directory reached a second time"]);
        assert_eq!(fs::read_dir(&dest).expect("list DIR").count(), 0);
        fs::remove_dir(&dest).expect("rmdir");
        canary.assert_untouched();

        // inspect looks up only the paths it needs, so the DAG costs it nothing.
        let (ok, stdout, stderr) = inspect_answers(image, &[]);
        assert!(ok, "{stderr}");
        assert!(stdout.contains("61 inodes"), "{stdout}");
        let deepest = chain_path(std::iter::repeat_n('b', LEVELS as usize));
        let init = format!("{deepest}/init");
        let (ok, stdout, stderr) = inspect_answers(image, &["--init", &init]);
        assert!(ok, "{stderr}");
        assert!(stdout.contains(&format!("{init} (missing)")), "{stdout}");

        // Every one of the 2^30 paths resolves, each in one step per component.
        let opened = rootrun::image::Image::open(image).expect("open");
        for letters in ["a", "b", "ab", "ba"] {
            let path = chain_path(letters.chars().cycle().take(LEVELS as usize));
            let resolved = opened.resolve(&path).expect("resolve a DAG path");
            assert_eq!(resolved.path, path);
            assert_eq!(resolved.kind, rootrun::image::FileKind::Dir);
        }
        let missing = format!("{deepest}/a30");
        let err = opened.resolve(&missing).expect_err("beyond the chain");
        assert!(err.to_string().contains(&missing), "{err}");
    }
    frame.check();
}

#[test]
fn directory_loops_are_refused_before_dir_is_touched() {
    let Some(frame) = unpack_frame("directory_loops_are_refused_before_dir_is_touched") else {
        return;
    };
    let work = frame.dir("loop");
    let canary = Canary::new(&work);
    // The deepest `b29` names the top `a00`, by its entry or by sharing a00's listing.
    let mut entry = Chain::build(&work);
    entry.entry_to_ancestor(LEVELS - 1, 0);
    let mut listing = Chain::build(&frame.dir("loop-listing"));
    listing.listing_from(LEVELS - 1, 0);
    let loop_path = chain_path(std::iter::repeat_n('a', LEVELS as usize - 1).chain(['b']));
    let images = [
        (entry.write("entry-loop.img"), loop_path.clone()),
        (
            listing.write("listing-loop.img"),
            format!("{loop_path}/a01"),
        ),
    ];
    for (image, second) in &images {
        let dest = work.join("out");
        assert_refused_as_revisited(image, &dest, second);
        canary.assert_untouched();

        let (ok, _, stderr) = inspect_answers(image, &[]);
        assert!(ok, "{stderr}");
        // Round the loop 20 times (600 components): a lookup costs one step per component.
        let opened = rootrun::image::Image::open(image).expect("open");
        // Both loops lead from b29 back into a00's listing, so each round after the first
        // starts at a01.
        let mut path = loop_path.clone();
        for _ in 1..20 {
            path.push_str(&loop_path.replacen("/a00", "", 1));
        }
        let resolved = opened.resolve(&path).expect("resolve round a loop");
        assert_eq!(resolved.kind, rootrun::image::FileKind::Dir);
        assert_eq!(resolved.path, path);
    }
    frame.check();
}

/// An image whose `d/small` (a basic inode, tail in a fragment) and `d/big` (an extended inode,
/// being hard-linked; three data blocks) have marked mtimes, tables uncompressed.
fn sized_image(work: &Path) -> Vec<u8> {
    let tree = work.join("tree");
    fs::create_dir_all(tree.join("d")).expect("mkdir");
    fs::write(tree.join("d/small"), "hello\n").expect("write");
    let big: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    fs::write(tree.join("d/big"), big).expect("write");
    fs::hard_link(tree.join("d/big"), tree.join("d/big-link")).expect("link");
    set_mtime(&tree.join("d/small"), FILE_MARK + 1);
    set_mtime(&tree.join("d/big"), FILE_MARK + 2);
    let image = work.join("img");
    raw_image(&tree, &image);
    fs::read(&image).expect("read image")
}

/// `d/small`'s basic file inode: file_size (u32) at 28. `d/big`'s extended one: file_size
/// (u64) at 24 (squashfs_fs.h).
fn with_size(bytes: &[u8], big: bool, size: u64) -> Vec<u8> {
    let mut bytes = bytes.to_vec();
    if big {
        let at = inode_offset(&bytes, FILE_MARK + 2, 9) + 24;
        bytes[at..at + 8].copy_from_slice(&size.to_le_bytes());
    } else {
        let at = inode_offset(&bytes, FILE_MARK + 1, 2) + 28;
        let size = u32::try_from(size).expect("basic inode size");
        bytes[at..at + 4].copy_from_slice(&size.to_le_bytes());
    }
    bytes
}

#[test]
fn absurd_file_sizes_fail_cleanly() {
    let Some(frame) = unpack_frame("absurd_file_sizes_fail_cleanly") else {
        return;
    };
    let work = frame.dir("sizes");
    let canary = Canary::new(&work);
    let bytes = sized_image(&work);
    let dest = work.join("out");
    let image = work.join("patched.img");
    let image_name = image.display().to_string();

    // A petabyte, or anything whose block list the inode table does not hold, is refused when
    // the inode is read: by unpack's scan, before DIR is created. inspect never reads that
    // inode (it is not on init's path), so it answers.
    for size in [1u64 << 50, (1 << 41) - 1, 1 << 33] {
        fs::write(&image, with_size(&bytes, true, size)).expect("write image");
        let err = expect_bounded_failure(&image, &dest, &[&image_name, "/d/big", "corrupted"]);
        eprintln!("size {size}: {err}");
        assert!(
            !dest.exists(),
            "DIR created for an image refused by the scan"
        );
        let (ok, _, stderr) = inspect_answers(&image, &[]);
        assert!(ok, "{stderr}");
    }

    // Sizes that still fit the block list but not the data: found while writing the file, so
    // the DIR rootrun created is removed again.
    let cases = [
        (true, 3 << 17, "/d/big", "131072 expected"),
        (
            false,
            (1 << 17) - 1,
            "/d/small",
            "lies outside its 6-byte fragment",
        ),
    ];
    for (big, size, path, what) in cases {
        fs::write(&image, with_size(&bytes, big, size)).expect("write image");
        let err = expect_bounded_failure(&image, &dest, &[path, what, "removed"]);
        eprintln!("size {size}: {err}");
        assert!(!dest.exists(), "partial DIR left behind");
        let (ok, _, stderr) = inspect_answers(&image, &[]);
        assert!(ok, "{stderr}");
    }
    canary.assert_untouched();
    frame.check();
}

#[test]
fn absurd_superblock_counts_fail_cleanly() {
    let Some(frame) = unpack_frame("absurd_superblock_counts_fail_cleanly") else {
        return;
    };
    let work = frame.dir("counts");
    let canary = Canary::new(&work);
    let bytes = sized_image(&work);
    let dest = work.join("out");
    let image = work.join("patched.img");
    let image_name = image.display().to_string();
    // inode_count at 4, fragment count at 16 (u32), id count at 26 (u16): squashfs_fs.h.
    let cases: [(usize, &[u8]); 4] = [
        (4, &u32::MAX.to_le_bytes()),
        (4, &0u32.to_le_bytes()),
        (16, &u32::MAX.to_le_bytes()),
        (26, &u16::MAX.to_le_bytes()),
    ];
    // The counts only bound lookups (the id and fragment entries are read one at a time, as
    // the kernel reads them, and the inode count is not needed): each image unpacks to the
    // same tree or fails naming the image, within the time and memory bound, and never
    // leaves DIR behind.
    for (at, value) in cases {
        let mut patched = bytes.clone();
        patched[at..at + value.len()].copy_from_slice(value);
        fs::write(&image, patched).expect("write image");
        let out = rootrun_bounded(&["unpack".as_ref(), image.as_os_str(), dest.as_os_str()]);
        let err = text(&out.stderr);
        eprintln!("superblock byte {at} = {value:?}: {err}");
        match out.status.code() {
            Some(0) => {
                let small = fs::read_to_string(dest.join("d/small")).expect("d/small");
                assert_eq!(small, "hello\n");
                assert_eq!(
                    fs::metadata(dest.join("d/big")).expect("d/big").len(),
                    300_000
                );
                fs::remove_dir_all(&dest).expect("remove DIR");
            }
            Some(125) => {
                assert!(err.contains(&image_name), "{err}");
                assert!(!dest.exists());
            }
            other => panic!("unpack ended with {other:?}: {err}"),
        }
        inspect_answers(&image, &[]);
    }
    canary.assert_untouched();
    frame.check();
}

#[test]
fn an_image_claiming_more_than_the_free_space_is_refused_before_writing() {
    let Some(frame) = unpack_frame("unpack free-space check") else {
        return;
    };
    let work = frame.dir("bomb");
    let tree = work.join("tree");
    fs::create_dir_all(&tree).expect("mkdir");
    // 2 GiB of holes: a few KiB as SquashFS, far more than the tmpfs below.
    run(Command::new("truncate")
        .args(["-s", "2G"])
        .arg(tree.join("sparse")));
    let image = work.join("bomb.img");
    mksquashfs(&tree, &image, &[]);
    // A small tmpfs in a private mount namespace of the test's own.
    let script = format!(
        "mount -t tmpfs -o size=16m tmpfs /mnt && {} unpack -q {} /mnt/out; echo rc=$?; test -e /mnt/out && echo created",
        env!("CARGO_BIN_EXE_rootrun"),
        image.display()
    );
    let out = Command::new("unshare")
        .args(["--mount", "--propagation", "private", "sh", "-c", &script])
        .output()
        .expect("run unshare");
    let stdout = text(&out.stdout);
    let stderr = text(&out.stderr);
    assert!(stdout.contains("rc=125"), "{stdout} {stderr}");
    assert!(
        !stdout.contains("created"),
        "the destination was created: {stdout}"
    );
    assert!(stderr.contains("add up to 2147483648 bytes"), "{stderr}");
    frame.check();
}

/// Starts `rootrun unpack IMAGE DEST` (under `nohup` if asked), sends
/// `signal` as soon as DEST holds something (the extraction is under way),
/// and returns its output.
fn signalled_unpack(
    nohup: bool,
    image: &Path,
    dest: &Path,
    signal: nix::sys::signal::Signal,
) -> std::process::Output {
    let mut cmd = if nohup {
        let mut cmd = Command::new("nohup");
        cmd.arg(env!("CARGO_BIN_EXE_rootrun"));
        cmd
    } else {
        rootrun()
    };
    let child = cmd
        .args(["unpack", "-q"])
        .arg(image)
        .arg(dest)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn rootrun unpack");
    let limit = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !fs::read_dir(dest).is_ok_and(|mut d| d.any(|e| e.is_ok_and(|e| e.file_name() == "blob")))
    {
        assert!(
            std::time::Instant::now() < limit,
            "extraction never started"
        );
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), signal)
        .expect("signal rootrun");
    child.wait_with_output().expect("wait for rootrun unpack")
}

/// SIGINT to an unpack into `dest` (made empty first when `users_dir`).
/// When the extraction was done before the signal was seen (a loaded
/// machine can keep the test from noticing the start for that long), the
/// tree must be complete and exit 0; then it tries again, three times at
/// most.
fn interrupted_unpack(image: &Path, dest: &Path, users_dir: bool) -> std::process::Output {
    for _ in 0..3 {
        let _ = fs::remove_dir_all(dest);
        if users_dir {
            fs::create_dir_all(dest).unwrap();
        }
        let out = signalled_unpack(false, image, dest, nix::sys::signal::Signal::SIGINT);
        if out.status.code() != Some(0) {
            return out;
        }
        let size = fs::metadata(dest.join("blob")).map(|m| m.len()).ok();
        assert_eq!(size, Some(512 << 20), "exit 0 with an incomplete tree");
    }
    panic!("every unpack finished before SIGINT reached it");
}

#[test]
fn ctrl_c_stops_an_unpack_and_cleans_up_like_any_failure() {
    let Some(frame) = unpack_frame("ctrl_c_stops_an_unpack_and_cleans_up_like_any_failure") else {
        return;
    };
    let work = frame.dir("interrupted");
    let tree = work.join("tree");
    fs::create_dir_all(&tree).unwrap();
    // 512 MiB stored uncompressed: about a second of writing, far longer
    // than the signal takes to arrive.
    run(Command::new("sh").arg("-c").arg(format!(
        "head -c 512M /dev/urandom > {}",
        tree.join("blob").display()
    )));
    let image = work.join("big.img");
    mksquashfs(&tree, &image, &["-noI", "-noD", "-noF", "-noX"]);
    fs::remove_dir_all(&tree).unwrap();

    let dest = work.join("out");
    let out = interrupted_unpack(&image, &dest, false);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{err}");
    assert!(err.contains("interrupted by signal SIGINT"), "{err}");
    assert!(err.contains("removed"), "{err}");
    assert!(!dest.exists(), "partial DIR left behind");

    // A DIR the user made keeps the partial tree and a note.
    let out = interrupted_unpack(&image, &dest, true);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{err}");
    assert!(err.contains(NOTE_NAME), "{err}");
    assert!(dest.join(NOTE_NAME).exists());

    // A SIGHUP that `nohup` ignores stays ignored: the unpack completes.
    fs::remove_dir_all(&dest).unwrap();
    let out = signalled_unpack(true, &image, &dest, nix::sys::signal::Signal::SIGHUP);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(fs::metadata(dest.join("blob")).unwrap().len(), 512 << 20);
    let _ = fs::remove_dir_all(&work);
    frame.check();
}
