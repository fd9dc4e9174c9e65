#!/usr/bin/env bash
# Builds the seed corpora of the fuzz targets into fuzz/corpus/TARGET/ from
# the test fixtures: tiny SquashFS images made with mksquashfs (every
# compressor, init symlinked, a script init, systemd's library name,
# metadata.yaml, inittab, passwd, hard links, device nodes, xattrs), tar and
# cpio archives of the same tree (plain and compressed), ELF
# heads of the BusyBox binaries the tests download (tests/fixtures, cached
# in /var/cache/rootrun-tests) or of host programs, binfmt_misc entry texts
# and registration lines, and metadata.yaml samples. Nothing here is
# committed: run it again whenever (it replaces the seed_* files only and
# keeps what fuzzing added). Needs mksquashfs (squashfs-tools) and root for
# the device node (skipped otherwise).
set -euo pipefail
cd "$(dirname "$0")"
corpus=corpus
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
for target in image_probe unpack_check archive_check elf_identify binfmt_entry metadata_yaml; do
    mkdir -p "$corpus/$target"
    rm -f "$corpus/$target"/seed_*
done

# ELF heads: the fixtures' BusyBox builds (one per architecture), else the host's programs.
elves=()
for busybox in /var/cache/rootrun-tests/busybox-static/*/*/bin/busybox; do
    [ -f "$busybox" ] && elves+=("$busybox")
done
for prog in /bin/true /bin/ls /usr/bin/qemu-aarch64-static /usr/bin/qemu-s390x-static; do
    [ -f "$prog" ] && elves+=("$prog")
done
n=0
for elf in "${elves[@]}"; do
    n=$((n + 1))
    # The first 4 KiB are what rootrun reads (ELF header, program headers, PT_INTERP).
    head -c 4096 "$elf" >"$corpus/elf_identify/seed_elf_$n"
    head -c 64 "$elf" >"$corpus/elf_identify/seed_hdr_$n"
done
printf '#!/bin/sh\necho hi\n' >"$corpus/elf_identify/seed_script"
printf 'xxlibsystemd-shared-252.so\0' >"$corpus/elf_identify/seed_systemd"

# binfmt_misc: live entries (read only) and Debian's registration lines.
n=0
if [ -d /proc/sys/fs/binfmt_misc ]; then
    for entry in /proc/sys/fs/binfmt_misc/*; do
        case $(basename "$entry") in register | status) continue ;; esac
        [ -r "$entry" ] || continue
        n=$((n + 1))
        cat "$entry" >"$corpus/binfmt_entry/seed_entry_$n" 2>/dev/null || true
    done
fi
for conf in /usr/lib/binfmt.d/*.conf; do
    [ -f "$conf" ] || continue
    n=$((n + 1))
    grep -v '^#' "$conf" | head -1 >"$corpus/binfmt_entry/seed_line_$n" || true
done
cat >"$corpus/binfmt_entry/seed_magic" <<'TEXT'
enabled
interpreter /usr/libexec/qemu-binfmt/aarch64-binfmt-P
flags: POF
offset 0
magic 7f454c460201010000000000000000000200b700
mask ffffffffffffff00fffffffffffffffffeffffff
TEXT
printf 'disabled\ninterpreter /usr/bin/wine\nflags: \nextension .exe\n' \
    >"$corpus/binfmt_entry/seed_extension"
if [ "${#elves[@]}" -gt 0 ]; then
    { cat "$corpus/binfmt_entry/seed_magic"; printf '\0'; head -c 256 "${elves[0]}"; } \
        >"$corpus/binfmt_entry/seed_magic_head"
fi
printf ':qemu-arm:M:0:\\x7fELF\\x01\\x01\\x01\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x02\\x00\\x28\\x00:\\xff\\xff\\xff\\xff\\xff\\xff\\xff\\x00\\xff\\xff\\xff\\xff\\xff\\xff\\xff\\xff\\xfe\\xff\\xff\\xff:/usr/bin/qemu-arm-static:F\n' \
    >"$corpus/binfmt_entry/seed_register_arm"
printf ':exe:E::exe::/usr/bin/wine:\n' >"$corpus/binfmt_entry/seed_register_ext"

# metadata.yaml samples (LXD's image format, as distrobuilder writes it).
cat >"$corpus/metadata_yaml/seed_lxd" <<'TEXT'
architecture: aarch64
creation_date: 1700000000
properties:
  os: debian
  release: 12
  description: Debian bookworm arm64
  variant: default
  architecture: arm64
templates:
  /etc/hostname:
    when:
      - create
      - copy
    template: hostname.tpl
TEXT
printf 'architecture: x86_64\n' >"$corpus/metadata_yaml/seed_arch"
printf 'architecture: [unclosed\n' >"$corpus/metadata_yaml/seed_bad"
printf 'a: &x [1, 2]\nb: *x\nproperties: {release: 3.19, os: alpine}\n' \
    >"$corpus/metadata_yaml/seed_alias"
printf -- '---\narchitecture: ~\ncreation_date: -1\nproperties: {}\n...\n' \
    >"$corpus/metadata_yaml/seed_doc"

# SquashFS images: a tiny tree, written with each compressor.
if ! command -v mksquashfs >/dev/null; then
    echo "seeds.sh: no mksquashfs (squashfs-tools): image seeds skipped" >&2
    exit 0
fi
tree=$work/tree
mkdir -p "$tree"/{bin,sbin,etc/runit,lib/systemd,usr/lib/x86_64-linux-gnu,dev,proc,empty}
if [ "${#elves[@]}" -gt 0 ]; then
    head -c 4096 "${elves[0]}" >"$tree/bin/busybox"
else
    printf '\177ELF\2\1\1' >"$tree/bin/busybox"
fi
chmod 755 "$tree/bin/busybox"
ln -s busybox "$tree/bin/sh"
ln -s ../bin/busybox "$tree/sbin/init"
ln "$tree/bin/busybox" "$tree/bin/ls"
printf 'xxlibsystemd-shared-257.so\0' >"$tree/lib/systemd/systemd"
printf '#!/bin/sh\nexec /bin/sh\n' >"$tree/sbin/init.sh"
ln -s /proc/self "$tree/usr/lib/x86_64-linux-gnu/escape"
ln -s loop "$tree/etc/loop"
printf 'root:x:0:0:root:/root:/bin/sh\nuser:x:1000:1000::/home/user:/bin/sh\n' >"$tree/etc/passwd"
printf '::sysinit:/etc/init.d/rcS\nttyS0::respawn:/sbin/getty -L 115200 ttyS0\n' >"$tree/etc/inittab"
printf 'fw\n' >"$tree/etc/hostname"
: >"$tree/etc/runit/1"
cp "$corpus/metadata_yaml/seed_lxd" "$tree/metadata.yaml"
mkfifo "$tree/etc/fifo"
if [ "$(id -u)" = 0 ]; then
    mknod "$tree/dev/null" c 1 3
fi
setfattr -n user.rootrun -v fuzz "$tree/etc/hostname" 2>/dev/null || true
setfattr -n security.capability -v 0sAQAAAgAgAAAAAAAAAAAAAAAAAAA= "$tree/bin/ls" 2>/dev/null || true
make_image() { # NAME MKSQUASHFS-OPTIONS...
    local name=$1
    shift
    mksquashfs "$tree" "$work/$name.img" -quiet -no-progress -nopad -all-time 0 \
        -mkfs-time 0 "$@" >/dev/null
    cp "$work/$name.img" "$corpus/image_probe/seed_$name"
    cp "$work/$name.img" "$corpus/unpack_check/seed_$name"
}
make_image plain -noI -noD -noF -noX
make_image gzip -comp gzip
make_image xz -comp xz
make_image lz4 -comp lz4
make_image zstd -comp zstd
make_image lzo -comp lzo
make_image gzip_nofrag -comp gzip -no-fragments -no-xattrs
rm "$tree/sbin/init"
ln -s init.sh "$tree/sbin/init"
make_image script_init -noI -noD -noF -noX
rm "$tree/sbin/init"
ln -s /lib/systemd/systemd "$tree/sbin/init"
make_image systemd -noI -noD -noF -noX

# Archives of the same tree: tar (GNU, with xattrs) and cpio newc, plain and
# compressed with each compressor rootrun reads (those whose tool is here).
(cd "$tree" && tar --xattrs --numeric-owner -cf "$work/tree.tar" .)
(cd "$tree" && find . | LC_ALL=C sort | cpio --quiet -o -H newc >"$work/tree.cpio")
for kind in tar cpio; do
    cp "$work/tree.$kind" "$corpus/archive_check/seed_$kind"
    for zip in gzip xz zstd bzip2; do
        if command -v "$zip" >/dev/null; then
            "$zip" -c <"$work/tree.$kind" >"$corpus/archive_check/seed_$kind.$zip"
        fi
    done
done
for target in image_probe unpack_check archive_check elf_identify binfmt_entry metadata_yaml; do
    echo "seeds.sh: $target: $(ls "$corpus/$target" | wc -l) inputs"
done
