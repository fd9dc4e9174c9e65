//! The Debian package: built with cargo-deb by tests/package/deb.sh, then
//! its control fields and contents checked with dpkg-deb.

use std::path::Path;
use std::process::Command;

use crate::harness::{text, Frame};

fn dpkg_deb(args: &[&str], deb: &Path) -> String {
    let out = Command::new("dpkg-deb")
        .args(args)
        .arg(deb)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "dpkg-deb {args:?}: {}",
        text(&out.stderr)
    );
    text(&out.stdout)
}

#[test]
fn the_debian_package_depends_on_liblxc_and_ships_man_page_and_completions() {
    let Some(frame) = Frame::setup("debian package")
        .tools(&["cargo-deb", "dpkg-deb"])
        .start()
    else {
        return;
    };
    let out_dir = frame.dir("deb");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/package/deb.sh");
    let out = Command::new(&script).arg(&out_dir).output().unwrap();
    assert!(out.status.success(), "deb.sh: {}", text(&out.stderr));
    let deb = out_dir.join(format!("rootrun_{}-1_amd64.deb", env!("CARGO_PKG_VERSION")));
    assert!(deb.exists(), "{}", text(&out.stdout));

    let control = dpkg_deb(&["-f"], &deb);
    let field = |name: &str| {
        control
            .lines()
            .find_map(|line| line.strip_prefix(&format!("{name}: ")))
            .unwrap_or_else(|| panic!("no {name} in:\n{control}"))
            .to_owned()
    };
    assert_eq!(field("Package"), "rootrun");
    assert!(
        field("Depends").contains("liblxc1 | liblxc1t64"),
        "{control}"
    );
    assert!(
        field("Recommends").contains("qemu-user-static | qemu-user"),
        "{control}"
    );

    let contents = dpkg_deb(&["-c"], &deb);
    for path in [
        "./usr/bin/rootrun",
        "./usr/share/man/man1/rootrun.1.gz",
        "./usr/share/bash-completion/completions/rootrun",
        "./usr/share/zsh/vendor-completions/_rootrun",
        "./usr/share/fish/vendor_completions.d/rootrun.fish",
        "./usr/share/doc/rootrun/copyright",
    ] {
        assert!(
            contents.lines().any(|line| line.ends_with(path)),
            "{path} missing:\n{contents}"
        );
    }
    // The packaged program runs and is the version packaged.
    let unpacked = frame.dir("unpacked");
    let out = Command::new("dpkg-deb")
        .arg("-x")
        .arg(&deb)
        .arg(&unpacked)
        .output()
        .unwrap();
    assert!(out.status.success());
    let out = Command::new(unpacked.join("usr/bin/rootrun"))
        .arg("--version")
        .output()
        .unwrap();
    assert!(text(&out.stdout).starts_with(&format!("rootrun {}", env!("CARGO_PKG_VERSION"))));
    frame.check();
}
