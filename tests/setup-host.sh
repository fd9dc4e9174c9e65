#!/bin/sh
# Prepares a Debian 12 host (as root) for building rootrun, running it on
# images of several architectures, and running its test suite:
#   - liblxc and its headers, libclang (bindgen), pkg-config;
#   - qemu-user-static and squashfs-tools;
#   - the foreign Debian architectures whose busybox-static packages the
#     tests download to build fixture images;
#   - binfmt_misc mounted, with Debian's QEMU handlers registered.
# Safe to run again: it only adds what is missing.
set -eu

FOREIGN_ARCHS="arm64 armhf i386 ppc64el s390x"

if [ "$(id -u)" -ne 0 ]; then
    echo "setup-host.sh: run as root (sudo $0)" >&2
    exit 1
fi

added=""
for arch in $FOREIGN_ARCHS; do
    if ! dpkg --print-foreign-architectures | grep -qx "$arch"; then
        dpkg --add-architecture "$arch"
        added="$added $arch"
    fi
done

export DEBIAN_FRONTEND=noninteractive
# A foreign architecture's index on a mirror that is mid-sync fails the
# whole update; what the tests need comes from the main suite, so go on and
# let the install or a download say clearly what is missing.
if ! apt-get update -q; then
    echo "setup-host.sh: warning: apt-get update reported errors (see above); continuing" >&2
fi
apt-get install -y -q --no-install-recommends \
    lxc liblxc1 lxc-dev libclang-dev pkg-config \
    qemu-user-static squashfs-tools busybox-static util-linux ca-certificates \
    libcap2-bin python3 time debootstrap

binfmt=/proc/sys/fs/binfmt_misc
if [ ! -e "$binfmt/register" ]; then
    mount -t binfmt_misc binfmt_misc "$binfmt"
fi
# Debian's qemu-user-static ships one handler per file; register the ones
# the kernel does not know yet (what systemd-binfmt does at boot).
for conf in /usr/lib/binfmt.d/qemu-*.conf; do
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
