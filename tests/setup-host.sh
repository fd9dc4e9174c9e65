#!/bin/sh
# Prepares a Debian host (12 or 13, as root) for building rootrun, running it
# on images of several architectures, and running its test suite:
#   - the runtime: liblxc, QEMU user-mode emulators with their binfmt_misc
#     handlers (Debian 12: qemu-user-static; Debian 13: qemu-user and
#     qemu-user-binfmt), squashfs-tools, what --net nat runs (iproute2's ip,
#     nftables' nft, dnsmasq-base's dnsmasq) and the tests' tools;
#   - best effort, build only: liblxc's headers and libclang for bindgen.
#     Without them build.rs uses the vendored bindings, so a header package
#     that apt cannot install (a -dev dependency out of step with the
#     installed runtime, seen on Debian 12) must not stop the setup;
#   - the foreign Debian architectures whose busybox-static packages the
#     tests download to build fixture images;
#   - binfmt_misc mounted, with the distribution's QEMU handlers registered.
# Safe to run again: it only adds what is missing.
set -eu

FOREIGN_ARCHS="arm64 armhf i386 ppc64el s390x"

if [ "$(id -u)" -ne 0 ]; then
    echo "setup-host.sh: run as root (sudo $0)" >&2
    exit 1
fi

for arch in $FOREIGN_ARCHS; do
    if ! dpkg --print-foreign-architectures | grep -qx "$arch"; then
        dpkg --add-architecture "$arch"
    fi
done

export DEBIAN_FRONTEND=noninteractive
# A foreign architecture's index on a mirror that is mid-sync fails the
# whole update; what the tests need comes from the main suite, so go on and
# let the install or a download say clearly what is missing.
if ! apt-get update -q; then
    echo "setup-host.sh: warning: apt-get update reported errors (see above); continuing" >&2
fi

# The package that brings static QEMU user-mode emulators and registers
# their handlers: Debian 13 dropped qemu-user-static (qemu-user is static
# there, its handlers are in qemu-user-binfmt).
available() { apt-cache show "$1" >/dev/null 2>&1; }
if available qemu-user-static; then
    qemu="qemu-user-static"
else
    qemu="qemu-user qemu-user-binfmt"
fi
# liblxc's runtime library: liblxc1 on Debian 12, liblxc1t64 on Debian 13.
if available liblxc1t64; then liblxc=liblxc1t64; else liblxc=liblxc1; fi

# shellcheck disable=SC2086 # word splitting of $qemu is wanted
apt-get install -y -q --no-install-recommends \
    lxc "$liblxc" pkg-config $qemu squashfs-tools busybox-static util-linux \
    ca-certificates libcap2-bin python3 time debootstrap \
    iproute2 nftables dnsmasq-base gdb-multiarch \
    e2fsprogs erofs-utils cpio xz-utils zstd bzip2

# One at a time: on Debian 12, lxc-dev's libselinux1-dev -> libpcre2-dev
# can be out of step with the installed libpcre2-8-0 while libclang-dev
# installs fine (and bindgen can then read headers from elsewhere, see
# ROOTRUN_LXC_HEADERS in build.rs).
for package in libclang-dev lxc-dev; do
    if ! apt-get install -y -q --no-install-recommends "$package" >/dev/null 2>&1; then
        echo "setup-host.sh: note: $package is not installable here; the build uses the vendored liblxc bindings"
    fi
done

# cargo-deb, for the package test (tests/package/deb.sh): a pinned version
# from crates.io, built once (about 2 minutes) into cargo's bin directory.
if ! command -v cargo-deb >/dev/null 2>&1 && command -v cargo >/dev/null 2>&1; then
    cargo install cargo-deb --locked --version 3.8.0 --quiet
fi

binfmt=/proc/sys/fs/binfmt_misc
if [ ! -e "$binfmt/register" ]; then
    mount -t binfmt_misc binfmt_misc "$binfmt"
fi
# Debian ships one handler per file; register the ones the kernel does not
# know yet (what systemd-binfmt does at boot).
for conf in /usr/lib/binfmt.d/qemu-*.conf; do
    [ -e "$conf" ] || continue
    line=$(grep '^:' "$conf" | head -n 1) || continue
    name=$(echo "$line" | cut -d: -f2)
    if [ ! -e "$binfmt/$name" ]; then
        printf '%s' "$line" > "$binfmt/register"
    fi
done
# A test run that was killed (SIGKILL skips its clean-up) can leave the host's
# handlers changed: a Debian handler disabled (re-enabled here; a removed
# one was registered again above), or entries and interpreter copies named
# rootrun-test-...-PID of a test process that no longer exists (removed).
for conf in /usr/lib/binfmt.d/qemu-*.conf; do
    [ -e "$conf" ] || continue
    name=$(basename "$conf" .conf)
    if [ -e "$binfmt/$name" ] && head -n 1 "$binfmt/$name" | grep -qx disabled; then
        echo "setup-host.sh: enabling $name, left disabled (by a killed test run?)"
        echo 1 > "$binfmt/$name"
    fi
done
test_pid() { # the PID in rootrun-test-PID-... or rootrun-test-WORD-PID
    echo "$1" | sed -n 's/^rootrun-test-\([a-z]*-\)\{0,1\}\([0-9][0-9]*\).*/\2/p'
}
for entry in "$binfmt"/rootrun-test-* /usr/local/lib/rootrun-test-*; do
    [ -e "$entry" ] || continue
    pid=$(test_pid "$(basename "$entry")")
    if [ -n "$pid" ] && [ ! -d "/proc/$pid" ]; then
        echo "setup-host.sh: removing $entry, left by test process $pid (gone)"
        case $entry in
            "$binfmt"/*) echo -1 > "$entry" ;;
            *) rm -rf "$entry" ;;
        esac
    fi
done
echo "setup-host.sh: ready (binfmt handlers: $(ls "$binfmt" | grep -c '^qemu-'))"
