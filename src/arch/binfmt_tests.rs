//! Unit tests for binfmt.rs: parsing entry text and the kernel's choice.

use super::*;

const AARCH64: &str = "enabled
interpreter /usr/libexec/qemu-binfmt/aarch64-binfmt-P
flags: POF
offset 0
magic 7f454c460201010000000000000000000200b700
mask ffffffffffffff00fffffffffffffffffeffffff
";

fn key(n: u64) -> OrderKey {
    OrderKey { rank: n }
}

fn aarch64_elf() -> Vec<u8> {
    super::super::test_elf::elf(64, false, 183, 0)
}

#[test]
fn parses_a_debian_entry() {
    let e = parse_entry("qemu-aarch64", AARCH64, key(1));
    let e = e.as_ref();
    assert!(e.is_ok(), "{e:?}");
    let Ok(e) = e else { return };
    assert!(e.enabled);
    assert_eq!(
        e.interpreter,
        Path::new("/usr/libexec/qemu-binfmt/aarch64-binfmt-P")
    );
    assert_eq!(e.flags.letters(), "POF");
    assert!(e.flags.fix_binary && !e.flags.credentials);
    let Kind::Magic {
        offset,
        magic,
        mask,
    } = &e.kind
    else {
        panic!("not magic: {e:?}");
    };
    assert_eq!(*offset, 0);
    assert_eq!(magic.len(), 20);
    assert_eq!(mask[7], 0);
}

#[test]
fn parses_minimal_and_extension_entries() {
    // What the kernel prints for `:n:M::RR::/i:`: empty flags, no mask.
    let e = parse_entry(
        "n",
        "disabled\ninterpreter /i\nflags: \noffset 0\nmagic 5252\n",
        key(1),
    );
    assert_eq!(
        e.as_ref().map(|e| (&e.kind, e.enabled)),
        Ok((
            &Kind::Magic {
                offset: 0,
                magic: b"RR".to_vec(),
                mask: vec![]
            },
            false
        ))
    );
    let e = parse_entry(
        "x",
        "enabled\ninterpreter /a b/wine\nflags: \nextension .exe\n",
        key(1),
    );
    assert_eq!(
        e.as_ref().map(|e| &e.kind),
        Ok(&Kind::Extension("exe".into()))
    );
    assert_eq!(e.map(|e| e.interpreter), Ok(PathBuf::from("/a b/wine")));
}

#[test]
fn garbage_entries_are_errors() {
    let bad = [
        "",
        "\n",
        "enabledx\ninterpreter /i\nmagic 00\n",
        "enabled\nmagic 00\n",
        "enabled\ninterpreter /i\n",
        "enabled\ninterpreter /i\nmagic 0\n",
        "enabled\ninterpreter /i\nmagic zz\n",
        "enabled\ninterpreter /i\nmagic \n",
        "enabled\ninterpreter /i\nmagic 00\nmask 0000\n",
        "enabled\ninterpreter /i\nmagic 00\nextension .x\n",
        "enabled\ninterpreter /i\nflags: PX\nmagic 00\n",
        "enabled\ninterpreter /i\noffset -1\nmagic 00\n",
        "enabled\ninterpreter /i\noffset 99999999999999999999999\nmagic 00\n",
        "enabled\ninterpreter /i\ninterpreter /j\nmagic 00\n",
        "enabled\ninterpreter /i\nmagic é0\n",
    ];
    for t in bad {
        assert!(parse_entry("n", t, key(1)).is_err(), "{t:?}");
    }
}

#[test]
fn parse_never_panics_on_random_text() {
    let alphabet = b"enabldisterpmfgoxck: 0123456789abcdef\n./\xc3\xa9";
    let mut x: u32 = 7;
    for len in 0..200 {
        let bytes: Vec<u8> = (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                alphabet[x as usize % alphabet.len()]
            })
            .collect();
        let text = String::from_utf8_lossy(&bytes);
        let _ = parse_entry("n", &format!("enabled\ninterpreter /i\n{text}"), key(1));
    }
}

fn magic_entry(name: &str, ino: u64, offset: usize, magic: &[u8], mask: &[u8]) -> Entry {
    Entry {
        name: name.into(),
        enabled: true,
        kind: Kind::Magic {
            offset,
            magic: magic.to_vec(),
            mask: mask.to_vec(),
        },
        interpreter: PathBuf::from(format!("/{name}")),
        flags: Flags::default(),
        order_key: key(ino),
    }
}

#[test]
fn mask_and_offset() {
    let e = [magic_entry("m", 1, 2, b"\x40\x01", b"\xf0\xff")];
    assert!(select(&e, b"xx\x4f\x01", "/p").is_some());
    assert!(select(&e, b"xx\x5f\x01", "/p").is_none());
    assert!(select(&e, b"\x40\x01", "/p").is_none());
    // No mask: exact bytes.
    let e = [magic_entry("m", 1, 0, b"AB", b"")];
    assert!(select(&e, b"ABC", "/p").is_some());
    assert!(select(&e, b"AC", "/p").is_none());
}

#[test]
fn bytes_past_the_head_compare_as_zero() {
    // The kernel zero-fills its 256-byte buffer, so a short file whose
    // missing bytes the magic wants as zero still matches.
    let e = [magic_entry("z", 1, 0, b"A\0\0", b"")];
    assert!(select(&e, b"A", "/p").is_some());
    let e = [magic_entry("far", 1, 250, b"1234567", b"")];
    assert!(select(&e, &[0u8; 300], "/p").is_none());
}

#[test]
fn newest_matching_enabled_entry_wins() {
    let h = aarch64_elf();
    let mut debian =
        parse_entry("qemu-aarch64", AARCH64, key(10)).unwrap_or_else(|e| panic!("{e}"));
    let mut other = debian.clone();
    other.name = "other-aarch64".into();
    other.flags = Flags::default();
    other.order_key = key(20);
    let x86 = magic_entry("x86", 30, 18, b"\x3e\x00", b"");
    let all = [debian.clone(), other.clone(), x86.clone()];
    assert_eq!(
        select(&all, &h, "/sbin/init").map(|e| e.name.as_str()),
        Some("other-aarch64")
    );
    // Slice order does not matter; order_key does.
    let rev = [x86.clone(), other.clone(), debian.clone()];
    assert_eq!(
        select(&rev, &h, "/sbin/init").map(|e| e.name.as_str()),
        Some("other-aarch64")
    );
    // A disabled entry is skipped, not a stop.
    other.enabled = false;
    let all = [debian.clone(), other.clone()];
    assert_eq!(
        select(&all, &h, "/sbin/init").map(|e| e.name.as_str()),
        Some("qemu-aarch64")
    );
    debian.enabled = false;
    assert!(select(&[debian, other], &h, "/sbin/init").is_none());
}

#[test]
fn extension_uses_the_last_dot_of_the_path() {
    let e = [Entry {
        kind: Kind::Extension("exe".into()),
        ..magic_entry("wine", 1, 0, b"x", b"")
    }];
    assert!(select(&e, b"MZ", "/tmp/setup.exe").is_some());
    assert!(select(&e, b"MZ", "/tmp/setup.exe.txt").is_none());
    assert!(select(&e, b"MZ", "/tmp/exe").is_none());
    assert!(select(&e, b"MZ", "/tmp.exe/setup").is_none());
}

#[test]
fn reads_a_directory_like_proc() {
    let dir = std::env::temp_dir().join(format!("rootrun-binfmt-test-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    let made = fs::create_dir(&dir)
        .and_then(|_| fs::write(dir.join("status"), "enabled\n"))
        .and_then(|_| fs::write(dir.join("register"), ""))
        .and_then(|_| fs::write(dir.join("qemu-aarch64"), AARCH64))
        .and_then(|_| {
            fs::write(
                dir.join("rootrun-x"),
                "enabled\ninterpreter /b\nflags: F\nextension .rr\n",
            )
        });
    assert!(made.is_ok(), "{made:?}");
    let got = read_entries(&dir);
    let names: Option<Vec<String>> = got
        .as_ref()
        .ok()
        .map(|v| v.iter().map(|e| e.name.clone()).collect());
    assert_eq!(global_enabled(&dir).ok(), Some(true));
    let bad = fs::write(dir.join("broken"), "nonsense\n");
    assert!(bad.is_ok());
    let err = read_entries(&dir)
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    let _ = fs::remove_dir_all(&dir);
    let mut names = names.unwrap_or_default();
    names.sort();
    assert_eq!(names, ["qemu-aarch64", "rootrun-x"]);
    assert!(err.contains("broken") && err.contains("nonsense"), "{err}");
}

#[test]
fn reads_the_hosts_entries_when_mounted() {
    let dir = Path::new("/proc/sys/fs/binfmt_misc");
    if !dir.join("status").exists() {
        println!(
            "note: binfmt_misc is not mounted at {}; host entries not read",
            dir.display()
        );
        return;
    }
    let got = read_entries(dir);
    assert!(got.is_ok(), "{got:?}");
    println!(
        "read {} host binfmt_misc entries",
        got.map(|v| v.len()).unwrap_or(0)
    );
}
