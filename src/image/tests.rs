//! Tests over images built at test time with mksquashfs (squashfs-tools).

use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use super::*;

/// Any small ELF of the host stands in for busybox: only its bytes matter here.
const ELF_SOURCE: &str = "/usr/bin/true";
const IMAGE_PASSWD: &[u8] = b"root:x:0:0:image root:/root:/bin/sh\n";
const METADATA: &str = "architecture: aarch64\ncreation_date: 1700000000\nproperties:\n  os: debian\n  release: \"12\"\n  description: test image\n";

/// A temporary directory removed on drop, even when the test fails.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Scratch {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!(
            "rootrun-image-test-{}-{name}-{n}",
            std::process::id()
        ));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).expect("create scratch dir");
        Scratch(dir)
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.0.join(rel)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// Deterministic incompressible bytes (xorshift64), so fillers cost mksquashfs real work.
fn filler_bytes(len: usize) -> Vec<u8> {
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        out.extend_from_slice(&state.to_le_bytes());
    }
    out.truncate(len);
    out
}

/// The fixture tree: relative, absolute, looping and escaping symlinks, a filler, metadata.
fn build_rootfs(root: &Path, filler_len: usize) {
    for dir in ["bin", "sbin", "etc", "usr/lib"] {
        fs::create_dir_all(root.join(dir)).expect("mkdir");
    }
    fs::copy(ELF_SOURCE, root.join("bin/busybox")).expect("copy ELF");
    symlink("../bin/busybox", root.join("sbin/init")).expect("symlink");
    symlink("/bin/busybox", root.join("bin/sh")).expect("symlink");
    symlink("b", root.join("a")).expect("symlink");
    symlink("a", root.join("b")).expect("symlink");
    fs::write(root.join("etc/passwd"), IMAGE_PASSWD).expect("write");
    symlink("../../../../etc/passwd", root.join("etc/esc")).expect("symlink");
    symlink("/../../etc/passwd", root.join("etc/abs-esc")).expect("symlink");
    symlink("/etc", root.join("usr/lib/etc-link")).expect("symlink");
    fs::write(root.join("filler"), filler_bytes(filler_len)).expect("write filler");
    fs::write(root.join("metadata.yaml"), METADATA).expect("write metadata");
}

fn mksquashfs(root: &Path, image: &Path, comp: Option<&str>) {
    let mut cmd = Command::new("mksquashfs");
    cmd.arg(root)
        .arg(image)
        .args(["-noappend", "-quiet", "-no-progress"]);
    if let Some(comp) = comp {
        cmd.args(["-comp", comp]);
    }
    let status = cmd.status().expect("run mksquashfs");
    assert!(status.success(), "mksquashfs failed: {status}");
}

/// A scratch dir holding `rootfs/` and `image.sqfs` built from it.
fn squashfs_fixture(name: &str, filler_len: usize, comp: Option<&str>) -> Scratch {
    let scratch = Scratch::new(name);
    build_rootfs(&scratch.path("rootfs"), filler_len);
    mksquashfs(&scratch.path("rootfs"), &scratch.path("image.sqfs"), comp);
    scratch
}

fn open(path: &Path) -> Image {
    match Image::open(path) {
        Ok(image) => image,
        Err(e) => panic!("open {}: {e}", path.display()),
    }
}

fn check_links_and_heads(image: &Image) {
    let elf = fs::read(ELF_SOURCE).expect("read ELF");

    let init = image.resolve("/sbin/init").expect("resolve /sbin/init");
    assert_eq!(init.path, "/bin/busybox");
    assert_eq!(init.kind, FileKind::File);
    assert_eq!(init.size, elf.len() as u64);
    assert_eq!(init.mode, 0o755);

    assert_eq!(
        image.resolve("/bin/sh").expect("resolve /bin/sh").path,
        "/bin/busybox"
    );
    assert_eq!(image.resolve("/").expect("root").kind, FileKind::Dir);
    assert_eq!(
        image.resolve("/sbin/../bin/./busybox").expect("dots").path,
        "/bin/busybox"
    );

    let head = image
        .read_head("/sbin/init", 64)
        .expect("read_head /sbin/init");
    assert_eq!(head, elf[..64]);
    assert_eq!(&head[..4], b"\x7fELF");
    let whole = image.read_head("/bin/sh", usize::MAX).expect("read whole");
    assert_eq!(whole, elf);

    // Escaping links resolve against the image root, never the host's /etc/passwd.
    for link in [
        "/etc/esc",
        "/etc/abs-esc",
        "/usr/lib/etc-link/passwd",
        "/../../etc/passwd",
    ] {
        let resolved = image
            .resolve(link)
            .unwrap_or_else(|e| panic!("{link}: {e}"));
        assert_eq!(resolved.path, "/etc/passwd", "{link}");
        assert_eq!(
            image.read_head(link, 4096).expect("read passwd"),
            IMAGE_PASSWD,
            "{link}"
        );
    }

    let filler = image.read_head("/filler", 100).expect("filler head");
    assert_eq!(filler, filler_bytes(100));
}

fn check_errors(image: &Image) {
    let err = image.resolve("/a").expect_err("link loop");
    assert!(matches!(err, ImageError::TooManyLinks { .. }), "{err}");
    assert!(err.to_string().contains("/a"), "{err}");

    let err = image.resolve("/nope/x").expect_err("missing");
    assert!(
        matches!(err, ImageError::NotFound { ref path, .. } if path == "/nope"),
        "{err}"
    );

    let err = image.resolve("/bin/busybox/x").expect_err("file as dir");
    assert!(
        matches!(err, ImageError::NotADirectory { ref path, .. } if path == "/bin/busybox"),
        "{err}"
    );

    let err = image.resolve("bin/busybox").expect_err("relative");
    assert!(matches!(err, ImageError::BadPath { .. }), "{err}");

    let err = image.read_head("/usr", 10).expect_err("dir head");
    assert!(
        matches!(
            err,
            ImageError::NotRegularFile {
                kind: FileKind::Dir,
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn squashfs_resolve_and_read_head() {
    let fx = squashfs_fixture("basic", 20 << 20, None);
    let image = open(&fx.path("image.sqfs"));
    check_links_and_heads(&image);
    check_errors(&image);

    let facts = image.squashfs_facts().expect("facts");
    assert_eq!(facts.compression, "gzip");
    assert_eq!(facts.block_size, 128 * 1024);
    assert!(facts.bytes_used <= facts.file_size);
    assert!(facts.inode_count >= 15, "{facts:?}");

    let meta = image.metadata().expect("metadata").expect("present");
    assert_eq!(meta.architecture.as_deref(), Some("aarch64"));
    assert_eq!(meta.creation_date, Some(1_700_000_000));
    assert_eq!(meta.properties.os.as_deref(), Some("debian"));
    assert_eq!(meta.properties.release.as_deref(), Some("12"));
    let json = serde_json::to_string(&facts).expect("facts json");
    assert!(json.contains("\"compression\":\"gzip\""), "{json}");
}

#[test]
fn squashfs_other_compressors() {
    for comp in ["xz", "zstd", "lz4"] {
        let fx = squashfs_fixture(comp, 300 << 10, Some(comp));
        let image = open(&fx.path("image.sqfs"));
        assert_eq!(
            image.squashfs_facts().map(|f| f.compression),
            Some(comp.to_string())
        );
        check_links_and_heads(&image);
        // A head that straddles the first block boundary needs exactly two blocks.
        let head = image.read_head("/filler", 200 * 1024).expect("two blocks");
        assert_eq!(head, filler_bytes(200 * 1024));
    }
}

#[test]
fn directory_source_stays_inside() {
    let scratch = Scratch::new("dir");
    let root = scratch.path("rootfs");
    build_rootfs(&root, 1000);
    let image = open(&root);
    assert!(image.squashfs_facts().is_none());
    check_links_and_heads(&image);
    check_errors(&image);
    assert_eq!(
        image
            .metadata()
            .expect("metadata")
            .and_then(|m| m.architecture),
        Some("aarch64".to_string())
    );

    fs::remove_file(root.join("metadata.yaml")).expect("rm metadata");
    assert_eq!(image.metadata().expect("absent metadata"), None);
    fs::write(root.join("metadata.yaml"), "architecture: [oops").expect("write");
    let err = image.metadata().expect_err("bad yaml");
    assert!(matches!(err, ImageError::Metadata { .. }), "{err}");
    assert!(err.to_string().contains("/metadata.yaml"), "{err}");
}

#[test]
fn entry_names_from_the_image_are_single_components() {
    for bad in [&b""[..], b".", b"..", b"a/b", b"/", b"a\0b"] {
        assert!(!walk::is_valid_name(bad), "{bad:?}");
    }
    assert!(walk::is_valid_name(b"..."));
    assert!(walk::is_valid_name(b"busybox"));
}

#[test]
fn not_squashfs_and_truncated() {
    let fx = squashfs_fixture("trunc", 1000, None);
    let text = fx.path("notes.txt");
    fs::write(&text, "just some text, long enough to be more than a superblock ............................................").expect("write");
    let err = Image::open(&text).err().expect("text file refused");
    assert!(matches!(err, ImageError::NotSquashfs { .. }), "{err}");
    assert!(err.to_string().contains("notes.txt"), "{err}");

    let bytes = fs::read(fx.path("image.sqfs")).expect("read image");
    assert!(bytes.len() > 4096);
    let truncated = fx.path("truncated.sqfs");
    fs::write(&truncated, &bytes[..4096]).expect("write truncated");
    let err = Image::open(&truncated).err().expect("truncated refused");
    assert!(err.to_string().contains("truncated.sqfs"), "{err}");

    let empty = fx.path("empty");
    fs::write(&empty, b"").expect("write");
    assert!(matches!(
        Image::open(&empty),
        Err(ImageError::NotSquashfs { .. })
    ));
    assert!(matches!(
        Image::open(Path::new("/dev/null")),
        Err(ImageError::UnsupportedSource { .. })
    ));
}

/// Flipped bytes anywhere in a small image must give errors or answers, never a panic.
#[test]
fn corrupted_images_do_not_panic() {
    let fx = squashfs_fixture("fuzz", 5000, None);
    let good = fs::read(fx.path("image.sqfs")).expect("read image");
    let noise = filler_bytes(4 * 4000);
    let bad = fx.path("bad.sqfs");
    let (mut opened, mut read) = (0, 0);
    for round in 0..2000 {
        let mut bytes = good.clone();
        // Mostly the superblock and the metadata tables at the end, where parsing happens.
        let r = |i: usize| usize::from(noise[(round * 4 + i) % noise.len()]);
        let pos = if round % 2 == 0 {
            (r(0) * 7 + r(1)) % 96
        } else {
            bytes.len() - 1 - (r(0) * 256 + r(1)) % bytes.len().min(3000)
        };
        bytes[pos] ^= 1 << (r(2) % 8);
        if round % 3 == 0 {
            let pos2 = bytes.len() - 1 - (r(3) * 13) % bytes.len().min(2000);
            bytes[pos2] = noise[round % noise.len()];
        }
        fs::write(&bad, &bytes).expect("write");
        if let Ok(image) = Image::open(&bad) {
            opened += 1;
            let _ = image.resolve("/sbin/init");
            read += usize::from(image.read_head("/sbin/init", 64).is_ok());
            let _ = image.read_head("/etc/esc", 64);
            let _ = image.metadata();
        }
    }
    println!("corrupted images: 2000 tried, {opened} opened, {read} still read /sbin/init");
    assert!(opened > 0, "the corruptions never reached past open");
}

fn time_inspect(image_path: &Path) -> (Duration, Duration, Duration) {
    let t0 = Instant::now();
    let image = open(image_path);
    let t1 = Instant::now();
    let resolved = image.resolve("/sbin/init").expect("resolve");
    assert_eq!(resolved.path, "/bin/busybox");
    let head = image.read_head("/filler", 64).expect("filler head");
    assert_eq!(head.len(), 64);
    let t2 = Instant::now();
    let elf = image.read_head("/sbin/init", 64).expect("init head");
    assert_eq!(&elf[..4], b"\x7fELF");
    let t3 = Instant::now();
    (t1 - t0, t2 - t1, t3 - t2)
}

/// Run with `--nocapture` to see the numbers; the assertion only catches gross regressions
/// (cost growing with file data), not jitter.
#[test]
fn cost_does_not_grow_with_file_data() {
    let tiny = squashfs_fixture("tiny", 4096, None);
    let big = squashfs_fixture("big", 300 << 20, None);
    let big_len = fs::metadata(big.path("image.sqfs"))
        .map(|m| m.len())
        .unwrap_or(0);
    let _warm = time_inspect(&tiny.path("image.sqfs"));
    let (to, tr, th) = time_inspect(&tiny.path("image.sqfs"));
    let (bo, br, bh) = time_inspect(&big.path("image.sqfs"));
    println!("tiny image: open {to:?}, resolve+filler head {tr:?}, init head {th:?}");
    println!(
        "big image ({big_len} bytes): open {bo:?}, resolve+filler head {br:?}, init head {bh:?}"
    );
    // For the report: backhand's own full-tree reader on the same image (it reads metadata
    // only, but visits every entry, which is what a directory DAG turns exponential).
    let t = Instant::now();
    let file = fs::File::open(big.path("image.sqfs")).expect("open big");
    let tree = backhand::FilesystemReader::from_reader(std::io::BufReader::new(file));
    println!(
        "backhand FilesystemReader::from_reader (full tree) on the big image: {:?}, ok={}",
        t.elapsed(),
        tree.is_ok()
    );
    let tiny_total = to + tr + th;
    let big_total = bo + br + bh;
    assert!(
        big_total < tiny_total * 20 + Duration::from_millis(100),
        "big image took {big_total:?} against {tiny_total:?}"
    );
}

/// An extended file inode claiming 2 TiB - 1 of 4 KiB blocks makes backhand (through deku)
/// reserve a 2 GiB block list before it finds the table too short. It must end in an error,
/// and it does; the reservation is virtual memory only (see the module report).
#[test]
fn hostile_file_size_is_an_error() {
    let scratch = Scratch::new("hostile");
    let root = scratch.path("rootfs");
    fs::create_dir_all(&root).expect("mkdir");
    fs::write(root.join("f"), b"hello\n").expect("write");
    // A hard link makes mksquashfs store an extended file inode (it records link_count).
    fs::hard_link(root.join("f"), root.join("g")).expect("link");
    let image = scratch.path("image.sqfs");
    let status = Command::new("mksquashfs")
        .arg(&root)
        .arg(&image)
        .args([
            "-noappend",
            "-quiet",
            "-no-progress",
            "-noI",
            "-noD",
            "-noF",
            "-noX",
            "-b",
            "4096",
        ])
        .status()
        .expect("run mksquashfs");
    assert!(status.success());

    let mut bytes = fs::read(&image).expect("read image");
    let u64_at =
        |b: &[u8], at: usize| u64::from_le_bytes(b[at..at + 8].try_into().expect("8 bytes"));
    // Superblock: inode_table at 64, dir_table at 72; the table starts with a 2-byte header.
    let (inode_table, dir_table) = (u64_at(&bytes, 64) as usize, u64_at(&bytes, 72) as usize);
    let inode = (inode_table + 2..dir_table)
        .find(|&i| bytes[i..i + 2] == 9u16.to_le_bytes())
        .expect("an extended file inode");
    // Extended file: 16-byte common header, blocks_start u64, then file_size u64.
    bytes[inode + 24..inode + 32].copy_from_slice(&((1u64 << 41) - 1).to_le_bytes());
    fs::write(&image, &bytes).expect("write image");

    // Opening reads only the root; looking the file up reads its inode, whose block list
    // (2^29 entries) is refused before anything is reserved for it.
    let opened = open(&image);
    for name in ["/f", "/g"] {
        let err = opened.resolve(name).expect_err("hostile inode refused");
        assert!(matches!(err, ImageError::Corrupt { .. }), "{err}");
        assert!(err.to_string().contains("data blocks"), "{err}");
    }
    let err = unpack::check_only(&image).expect_err("refused by unpack");
    assert!(err.to_string().contains("data blocks"), "{err}");
}

#[test]
fn systemds_version_is_read_from_the_shared_library_its_pid_1_links() {
    use crate::image::facts::systemd_version;
    let mut binary = vec![0u8; 16190];
    binary.extend_from_slice(b"libsystemd-shared-257.so\0libc.so.6\0");
    assert_eq!(systemd_version(&binary), Some(257));
    // Upstream's default tag is the full version.
    assert_eq!(
        systemd_version(b"\0libsystemd-shared-258.1.so\0"),
        Some(258)
    );
    assert_eq!(systemd_version(b"libsystemd-shared-.so"), None);
    assert_eq!(systemd_version(b"/sbin/init of another kind"), None);
}

/// A hand-made image (squashfs_fs.h layout): a root directory inode whose listing claims
/// `listing_len` bytes, a directory table of `blocks` metadata blocks that each store one
/// byte uncompressed, and an id table of one id.
fn image_of_tiny_dir_blocks(blocks: usize, listing_len: u16) -> Vec<u8> {
    let not_set = u64::MAX;
    let inode_table = 96u64;
    // Root inode: basic directory (type 1), mode 0755, uid/gid index 0, inode 1.
    let mut inode = Vec::new();
    for half in [1u16, 0o755, 0, 0] {
        inode.extend_from_slice(&half.to_le_bytes());
    }
    for word in [0u32, 1, 0, 2] {
        // mtime, inode number, block_index, link_count
        inode.extend_from_slice(&word.to_le_bytes());
    }
    inode.extend_from_slice(&listing_len.to_le_bytes());
    inode.extend_from_slice(&0u16.to_le_bytes()); // block_offset
    inode.extend_from_slice(&1u32.to_le_bytes()); // parent
    let mut tables = (0x8000u16 | inode.len() as u16).to_le_bytes().to_vec();
    tables.extend(inode);
    let dir_table = inode_table + tables.len() as u64;
    for _ in 0..blocks {
        tables.extend_from_slice(&[0x01, 0x80, 0x00]);
    }
    let id_block = inode_table + tables.len() as u64;
    tables.extend_from_slice(&[0x04, 0x80, 0, 0, 0, 0]);
    let id_table = inode_table + tables.len() as u64;
    tables.extend_from_slice(&id_block.to_le_bytes());
    let end = inode_table + tables.len() as u64;

    let mut sb = Vec::with_capacity(96);
    sb.extend_from_slice(b"hsqs");
    for word in [1u32, 0, 131_072, 0] {
        sb.extend_from_slice(&word.to_le_bytes());
    }
    for half in [1u16, 17, 0, 1, 4, 0] {
        sb.extend_from_slice(&half.to_le_bytes());
    }
    // root_inode, bytes_used, id_table, xattr_table, inode_table,
    // directory_table, fragment_table, lookup_table
    for long in [
        0,
        end,
        id_table,
        not_set,
        inode_table,
        dir_table,
        not_set,
        not_set,
    ] {
        sb.extend_from_slice(&long.to_le_bytes());
    }
    assert_eq!(sb.len(), 96);
    sb.extend(tables);
    sb
}

#[test]
fn metadata_that_would_not_fit_in_memory_is_refused() {
    let scratch = Scratch::new("meta-bound");
    let image = scratch.path("bomb.img");
    // One stored byte each (header 0x8001: uncompressed, length 1); what counts is how many
    // blocks a read needs, each up to 8 KiB decompressed (31 bytes of gzip hold 8 KiB of
    // zeros: a 10 MB image of those once made backhand hold 2.4 GB). A listing of 65,532
    // bytes spans that many blocks, more than the bound.
    let bound = super::metablock::MAX_METADATA_BLOCKS;
    fs::write(&image, image_of_tiny_dir_blocks(bound + 10, u16::MAX)).expect("write");
    // Opening reads the superblock and the root inode only.
    let opened = open(&image);
    let err = opened.resolve("/sbin/init").expect_err("refused");
    assert!(
        matches!(err, ImageError::TablesTooLarge { max_mib: 64, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("more than 64 MiB"), "{err}");
    let err = unpack::check_only(&image).expect_err("refused");
    assert!(err.to_string().contains("more than 64 MiB"), "{err}");

    // Below the bound, the same listing is read and found to be garbage.
    fs::write(&image, image_of_tiny_dir_blocks(100, 100)).expect("write");
    let err = open(&image)
        .resolve("/sbin/init")
        .expect_err("not a listing");
    assert!(matches!(err, ImageError::Corrupt { .. }), "{err}");
    // A listing longer than the directory table runs into the id table, then the image end.
    fs::write(&image, image_of_tiny_dir_blocks(2, 1000)).expect("write");
    let err = open(&image)
        .resolve("/sbin/init")
        .expect_err("beyond the end");
    assert!(matches!(err, ImageError::Corrupt { .. }), "{err}");
}

/// A tree like a distribution's: `dirs` directories of `per_dir` small files each, plus the
/// fixture's init and links.
fn build_many_files(root: &Path, dirs: usize, per_dir: usize) {
    build_rootfs(root, 4096);
    for d in 0..dirs {
        let dir = root.join(format!("usr/share/d{d:03}"));
        fs::create_dir_all(&dir).expect("mkdir");
        for f in 0..per_dir {
            fs::write(dir.join(format!("file-{f:04}")), format!("{d}/{f}")).expect("write");
        }
    }
}

#[test]
fn lookups_read_only_the_blocks_on_their_path() {
    let scratch = Scratch::new("lazy");
    build_many_files(&scratch.path("rootfs"), 40, 100);
    mksquashfs(
        &scratch.path("rootfs"),
        &scratch.path("image.sqfs"),
        Some("xz"),
    );
    let image = open(&scratch.path("image.sqfs"));
    let Source::Squashfs(sq) = &image.source else {
        panic!("not a SquashFS source");
    };
    let after_open = sq.metadata_blocks_read();
    assert!(after_open <= 2, "open read {after_open} metadata blocks");
    check_links_and_heads(&image);
    let looked_up = sq.metadata_blocks_read();
    // 4,000 files take dozens of blocks of inodes and listings; the lookups above touch the
    // root's, /bin's, /sbin's, /etc's and /usr/lib's, and the id and fragment tables.
    assert!(looked_up <= 16, "lookups read {looked_up} metadata blocks");
    let deep = image
        .read_head("/usr/share/d039/file-0099", 64)
        .expect("read");
    assert_eq!(deep, b"39/99");
    let err = image.resolve("/usr/share/d017/file-0100").err();
    assert!(
        matches!(err, Some(ImageError::NotFound { ref path, .. }) if path == "/usr/share/d017/file-0100"),
        "{err:?}"
    );
    check_errors(&image);
    // The same lookup again is answered from the blocks already read.
    let before = sq.metadata_blocks_read();
    check_links_and_heads(&image);
    assert_eq!(sq.metadata_blocks_read(), before);
    // Unpack's scan reads all of it, and finds every file.
    let plan = unpack::check_only(&scratch.path("image.sqfs")).expect("scan");
    assert!(plan.0 > 4000, "{} entries", plan.0);
}

/// /etc/inittab is read only when init will read it: a boot or an inspect of
/// an init that reads it, not a command run, not systemd.
#[test]
fn inittab_is_read_only_for_inits_that_read_it() {
    let scratch = Scratch::new("inittab");
    let root = scratch.path("rootfs");
    build_rootfs(&root, 0);
    fs::write(
        root.join("etc/inittab"),
        "::sysinit:/etc/init.d/rcS\nttyS0::respawn:/sbin/getty -L ttyS0 115200 vt100\n",
    )
    .expect("write inittab");
    let gettys = |init: &str, init_use: InitUse| {
        let image = open(&root);
        let facts = match examine(&image, init, None, init_use) {
            Ok(facts) => facts,
            Err(e) => panic!("examine {init}: {e}"),
        };
        facts.getty_ttys
    };
    let serial = vec!["ttyS0".to_string()];
    assert_eq!(
        gettys("/sbin/init", InitUse::Boot),
        serial,
        "BusyBox init boots"
    );
    assert_eq!(gettys("/sbin/init", InitUse::LookOnly), serial, "inspect");
    assert!(
        gettys("/sbin/init", InitUse::Command).is_empty(),
        "command mode"
    );
    fs::create_dir_all(root.join("lib/systemd")).expect("mkdir");
    fs::copy(ELF_SOURCE, root.join("lib/systemd/systemd")).expect("copy ELF");
    let systemd = gettys("/lib/systemd/systemd", InitUse::Boot);
    assert!(systemd.is_empty(), "systemd reads no inittab: {systemd:?}");
}
