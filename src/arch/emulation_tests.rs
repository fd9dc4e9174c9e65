use super::*;
use crate::arch::binfmt::{Flags, Kind, OrderKey};
use crate::arch::qemu_pattern;
use crate::arch::test_elf::elf;

const EM_AARCH64: u16 = 183;
const EM_X86_64: u16 = 62;

fn entry(name: &str, arch: Arch, interpreter: &str, fix: bool, enabled: bool, order: u64) -> Entry {
    let pattern = qemu_pattern(arch);
    Entry {
        name: name.into(),
        enabled,
        kind: Kind::Magic {
            offset: 0,
            magic: pattern.magic,
            mask: pattern.mask,
        },
        interpreter: PathBuf::from(interpreter),
        flags: Flags {
            preserve_argv0: true,
            open_binary: fix,
            credentials: false,
            fix_binary: fix,
        },
        order_key: OrderKey { rank: order },
    }
}

fn mounted(entries: Vec<Entry>) -> Binfmt {
    Binfmt::Mounted {
        enabled: true,
        entries,
    }
}

fn static_file(path: &Path) -> InterpreterFacts {
    InterpreterFacts::Static {
        host_file: path.with_extension("real"),
    }
}

fn aarch64() -> Vec<u8> {
    elf(64, false, EM_AARCH64, 0)
}

#[test]
fn f_flag_handler_needs_nothing_in_the_container() {
    let binfmt = mounted(vec![entry(
        "qemu-aarch64",
        Arch::Aarch64,
        "/usr/libexec/qemu-binfmt/aarch64-binfmt-P",
        true,
        true,
        1,
    )]);
    let got = decide(
        Arch::Aarch64,
        &aarch64(),
        "init",
        Arch::X86_64,
        &binfmt,
        &static_file,
    )
    .unwrap();
    assert!(
        matches!(got, Emulation::Preloaded { ref entry, .. } if entry == "qemu-aarch64"),
        "{got:?}"
    );
}

#[test]
fn handler_without_f_is_bind_mounted_from_the_resolved_host_file() {
    let binfmt = mounted(vec![entry(
        "qemu-aarch64",
        Arch::Aarch64,
        "/usr/bin/qemu-aarch64-static",
        false,
        true,
        1,
    )]);
    let got = decide(
        Arch::Aarch64,
        &aarch64(),
        "init",
        Arch::X86_64,
        &binfmt,
        &static_file,
    )
    .unwrap();
    assert_eq!(
        got,
        Emulation::BindMount {
            entry: "qemu-aarch64".into(),
            interpreter: "/usr/bin/qemu-aarch64-static".into(),
            host_file: "/usr/bin/qemu-aarch64-static.real".into(),
        }
    );
    assert_eq!(
        got.describe(Arch::Aarch64),
        "aarch64 under /usr/bin/qemu-aarch64-static, bind-mounted"
    );
}

#[test]
fn the_most_recently_registered_match_wins_as_in_the_kernel() {
    let binfmt = mounted(vec![
        entry(
            "qemu-aarch64",
            Arch::Aarch64,
            "/usr/libexec/qemu-binfmt/aarch64-binfmt-P",
            true,
            true,
            1,
        ),
        entry("late", Arch::Aarch64, "/opt/qemu-aarch64", false, true, 2),
    ]);
    let got = decide(
        Arch::Aarch64,
        &aarch64(),
        "init",
        Arch::X86_64,
        &binfmt,
        &static_file,
    )
    .unwrap();
    assert!(
        matches!(got, Emulation::BindMount { ref entry, .. } if entry == "late"),
        "{got:?}"
    );
}

#[test]
fn native_images_need_no_handler_but_a_matching_one_still_wins() {
    let x86 = elf(64, false, EM_X86_64, 0);
    let got = decide(
        Arch::X86_64,
        &x86,
        "init",
        Arch::X86_64,
        &mounted(vec![]),
        &static_file,
    )
    .unwrap();
    assert_eq!(got, Emulation::Native);
    assert_eq!(
        decide(
            Arch::X86_64,
            &x86,
            "init",
            Arch::X86_64,
            &Binfmt::NotMounted,
            &static_file
        ),
        Ok(Emulation::Native)
    );
    let hijack = mounted(vec![entry(
        "qemu-x86_64",
        Arch::X86_64,
        "/usr/bin/qemu-x86_64-static",
        true,
        true,
        1,
    )]);
    let got = decide(
        Arch::X86_64,
        &x86,
        "init",
        Arch::X86_64,
        &hijack,
        &static_file,
    )
    .unwrap();
    assert!(matches!(got, Emulation::Preloaded { .. }), "{got:?}");
}

#[test]
fn missing_disabled_and_unmounted_handlers_name_the_arch_and_the_fix() {
    let err = decide(
        Arch::Aarch64,
        &aarch64(),
        "init",
        Arch::X86_64,
        &mounted(vec![]),
        &static_file,
    )
    .unwrap_err();
    assert_eq!(
        err,
        EmulationError::NoHandler {
            arch: Arch::Aarch64
        }
    );
    let text = err.to_string();
    assert!(
        text.contains("aarch64") && text.contains("qemu-user-static") && text.contains("register"),
        "{text}"
    );

    let off = mounted(vec![entry(
        "qemu-aarch64",
        Arch::Aarch64,
        "/usr/bin/q",
        true,
        false,
        1,
    )]);
    let err = decide(
        Arch::Aarch64,
        &aarch64(),
        "init",
        Arch::X86_64,
        &off,
        &static_file,
    )
    .unwrap_err();
    assert!(
        err.to_string()
            .contains("echo 1 > /proc/sys/fs/binfmt_misc/qemu-aarch64"),
        "{err}"
    );

    let err = decide(
        Arch::Aarch64,
        &aarch64(),
        "init",
        Arch::X86_64,
        &Binfmt::NotMounted,
        &static_file,
    )
    .unwrap_err();
    assert!(err.to_string().contains("mount -t binfmt_misc"), "{err}");
}

#[test]
fn missing_or_dynamic_interpreters_are_refused() {
    let binfmt = mounted(vec![entry(
        "q",
        Arch::Aarch64,
        "/gone/qemu",
        false,
        true,
        1,
    )]);
    let gone = |_: &Path| InterpreterFacts::Missing;
    let err = decide(
        Arch::Aarch64,
        &aarch64(),
        "init",
        Arch::X86_64,
        &binfmt,
        &gone,
    )
    .unwrap_err();
    assert!(
        err.to_string().contains("/gone/qemu, which does not exist"),
        "{err}"
    );
    let dynamic = |_: &Path| InterpreterFacts::Dynamic {
        loader: "/lib64/ld-linux-x86-64.so.2".into(),
    };
    let err = decide(
        Arch::Aarch64,
        &aarch64(),
        "init",
        Arch::X86_64,
        &binfmt,
        &dynamic,
    )
    .unwrap_err();
    assert!(err.to_string().contains("dynamically linked"), "{err}");
}

#[test]
fn host_binaries_are_told_apart() {
    assert!(matches!(
        inspect_interpreter(Path::new("/bin/ls")),
        InterpreterFacts::Dynamic { .. }
    ));
    assert_eq!(
        inspect_interpreter(Path::new("/nonexistent/qemu")),
        InterpreterFacts::Missing
    );
    if Path::new("/usr/bin/qemu-aarch64-static").exists() {
        assert!(matches!(
            inspect_interpreter(Path::new("/usr/bin/qemu-aarch64-static")),
            InterpreterFacts::Static { .. }
        ));
    }
}
