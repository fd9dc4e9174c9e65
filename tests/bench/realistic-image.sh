#!/bin/sh
# Builds a SquashFS image shaped like a distribution's root file system, with no download but
# Debian's busybox-static (as tests/fixtures/build-image.sh): BusyBox as init, plus the tree
# of tests/fixtures/realistic-tree.py: FILES files (default 100,000) in some 3,000 directories
# up to five levels deep, of varied small sizes (most a few KiB of text or of binary-like bytes
# that compress about 3:1), BIG larger "binaries" of 1 to 8 MiB (default 60), symlinks (one in
# 20) and a few hard links; xz compression unless COMP says otherwise. Deterministic: the same
# parameters give the same tree.
#
#   tests/bench/realistic-image.sh [OUTPUT.img]     (ARCH=amd64, FILES, BIG, COMP=xz)
#
# Prints the image's path. Images are cached by content (this script, the parameters and the
# BusyBox binary) in /var/cache/rootrun-tests/bench, or $ROOTRUN_BENCH_CACHE; OUTPUT, when
# given, is a copy of the cached one.
set -eu

here=$(cd "$(dirname "$0")/../.." && pwd)
arch=${ARCH:-amd64}
files=${FILES:-100000}
big=${BIG:-60}
comp=${COMP:-xz}
cache=${ROOTRUN_BENCH_CACHE:-/var/cache/rootrun-tests/bench}
mkdir -p "$cache"

# BusyBox first (build-image.sh downloads it into its cache), so its bytes are part of the key.
fixtures=${TMPDIR:-/tmp}/rootrun-fixtures
tiny=$(mktemp "${TMPDIR:-/tmp}/rootrun-realistic-tiny.XXXXXX")
trap 'rm -f "$tiny"' EXIT
"$here/tests/fixtures/build-image.sh" "$arch" "$tiny" "$fixtures" >/dev/null
key=$( (cat "$0" "$here/tests/fixtures/realistic-tree.py" "$here/tests/fixtures/build-image.sh" \
    "$fixtures/$arch/bin/busybox"
    echo "$arch $files $big $comp") | sha256sum | cut -c1-16)
image=$cache/realistic-$arch-$comp-$files-$key.img

if [ ! -f "$image" ]; then
    extra=$(mktemp -d "${TMPDIR:-/var/tmp}/rootrun-realistic.XXXXXX")
    trap 'rm -f "$tiny"; rm -rf "$extra"' EXIT
    python3 "$here/tests/fixtures/realistic-tree.py" "$extra" "$files" "$big"
    part=$cache/.realistic.$$.img
    ROOTRUN_FIXTURE_EXTRA=$extra ROOTRUN_FIXTURE_COMP=$comp \
        "$here/tests/fixtures/build-image.sh" "$arch" "$part" "$fixtures" >/dev/null
    mv "$part" "$image"
fi
if [ $# -ge 1 ]; then
    cp "$image" "$1"
    echo "$1"
else
    echo "$image"
fi
