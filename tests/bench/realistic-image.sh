#!/bin/sh
# Builds a SquashFS image shaped like a distribution's root file system, with no download but
# Debian's busybox-static (as tests/fixtures/build-image.sh): BusyBox as init, plus a /usr of
# FILES files (default 100,000) in some 3,000 directories up to five levels deep, of varied
# small sizes (most a few KiB of text or of binary-like bytes that compress about 3:1), some
# larger "binaries" (BIG files of 1 to 8 MiB, default 60), symlinks (one in 20) and a few hard
# links; xz compression unless COMP says otherwise. Deterministic: the same parameters give the
# same tree.
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

# BusyBox first (build-image.sh caches it), so its bytes are part of the key.
tiny=$(mktemp "${TMPDIR:-/tmp}/rootrun-realistic-tiny.XXXXXX")
trap 'rm -f "$tiny"' EXIT
"$here/tests/fixtures/build-image.sh" "$arch" "$tiny" >/dev/null
key=$( (cat "$0" "$here/tests/fixtures/build-image.sh" "$tiny"; echo "$arch $files $big $comp") |
    sha256sum | cut -c1-16)
image=$cache/realistic-$arch-$comp-$files-$key.img

if [ ! -f "$image" ]; then
    extra=$(mktemp -d "${TMPDIR:-/var/tmp}/rootrun-realistic.XXXXXX")
    trap 'rm -f "$tiny"; rm -rf "$extra"' EXIT
    python3 - "$extra" "$files" "$big" <<'PY'
import os, random, sys

root, files, big = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
rng = random.Random(14)
words = ["lib%s" % w for w in ("c", "m", "z", "ssl", "crypto", "x11", "gtk", "glib")]
words += ["w%d" % i for i in range(3000)]
text_pool = " ".join(rng.choice(words) for _ in range(400000)).encode()
# Binary-like: random bytes broken by runs that repeat, about 3:1 under xz.
binary_pool = bytearray()
while len(binary_pool) < 4 << 20:
    binary_pool += rng.randbytes(rng.randint(16, 256))
    binary_pool += bytes(rng.randint(0, 3)) * rng.randint(64, 512)
binary_pool = bytes(binary_pool)

def content(size):
    pool = text_pool if rng.random() < 0.6 else binary_pool
    start = rng.randrange(0, len(pool) - size)
    return pool[start:start + size]

def small_size():
    # Log-uniform from 16 bytes to 64 KiB: many tiny files, a long tail.
    return int(2 ** rng.uniform(4, 16))

top = ["usr/lib", "usr/share", "usr/bin", "usr/lib/x86_64-linux-gnu", "usr/share/doc",
       "usr/share/locale", "usr/include", "etc", "var/lib"]
dirs = []
for t in top:
    os.makedirs(os.path.join(root, t), exist_ok=True)
    dirs.append(t)
while len(dirs) < 3000:
    parent = rng.choice(dirs)
    if parent.count("/") >= 5:
        continue
    d = "%s/d%d" % (parent, len(dirs))
    os.makedirs(os.path.join(root, d))
    dirs.append(d)

made = []
for i in range(files):
    d = rng.choice(dirs)
    path = os.path.join(root, d, "f%d" % i)
    r = rng.random()
    if r < 0.05 and made:
        os.symlink(os.path.relpath(rng.choice(made), os.path.dirname(path)), path)
    elif r < 0.052 and made:
        os.link(rng.choice(made), path)
    else:
        with open(path, "wb") as f:
            f.write(content(small_size()))
        if rng.random() < 0.3:
            os.chmod(path, 0o755)
        made.append(path)
for i in range(big):
    path = os.path.join(root, "usr/lib/x86_64-linux-gnu", "libbig%d.so" % i)
    size = rng.randint(1 << 20, 8 << 20)
    with open(path, "wb") as f:
        while size > 0:
            chunk = min(size, 1 << 20)
            start = rng.randrange(0, len(binary_pool) - chunk)
            f.write(binary_pool[start:start + chunk])
            size -= chunk
PY
    part=$cache/.realistic.$$.img
    ROOTRUN_FIXTURE_EXTRA=$extra ROOTRUN_FIXTURE_COMP=$comp \
        "$here/tests/fixtures/build-image.sh" "$arch" "$part" >/dev/null
    mv "$part" "$image"
fi
if [ $# -ge 1 ]; then
    cp "$image" "$1"
    echo "$1"
else
    echo "$image"
fi
