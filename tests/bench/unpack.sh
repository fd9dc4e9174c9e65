#!/bin/sh
# Benchmark (not a test): `rootrun unpack` against squashfs-tools' `unsquashfs -d` on the same
# generated ~100 MB image of mixed small and large files, some compressible, some not.
#
#   sudo tests/bench/unpack.sh [WORKDIR]      (COMP=gzip|xz|lzo|lz4|zstd, RUNS=5)
#
# The image is generated once into WORKDIR (default /var/tmp/rootrun-bench) and reused.
# Runs are on a WARM page cache: one untimed run of each tool first, then RUNS timed runs of
# each, alternating, each into a fresh directory on the same file system. The medians of the
# wall times are compared; peak RSS comes from /usr/bin/time -v (package `time`).
set -eu

work=${1:-/var/tmp/rootrun-bench}
comp=${COMP:-gzip}
runs=${RUNS:-5}
here=$(cd "$(dirname "$0")/../.." && pwd)
target=${CARGO_TARGET_DIR:-$here/target}

if [ ! -x /usr/bin/time ]; then
    echo "unpack.sh: /usr/bin/time is missing (apt-get install time, or tests/setup-host.sh)" >&2
    exit 1
fi
(cd "$here" && cargo build --release --quiet)
rootrun=$target/release/rootrun

mkdir -p "$work"
image=$work/bench-$comp.img
if [ ! -f "$image" ]; then
    tree=$work/tree
    rm -rf "$tree"
    mkdir -p "$tree"
    # Deterministic content: python3's random with a fixed seed.
    python3 - "$tree" <<'PY'
import os, random, sys
root = sys.argv[1]
rng = random.Random(42)
words = [("w%d" % i) for i in range(5000)]
def text(n):
    out = []
    size = 0
    while size < n:
        w = rng.choice(words)
        out.append(w)
        size += len(w) + 1
    return (" ".join(out))[:n].encode()
# ~20000 small files (200 B - 8 KiB) in 400 directories: a /usr-like tree (~80 MB raw text,
# compresses well), a few medium binaries, and two large files (one random, one text).
for d in range(400):
    dpath = os.path.join(root, "usr", "share", "d%03d" % (d // 20), "p%03d" % d)
    os.makedirs(dpath, exist_ok=True)
    for f in range(50):
        with open(os.path.join(dpath, "f%02d.txt" % f), "wb") as fh:
            fh.write(text(rng.randint(200, 8192)))
os.makedirs(os.path.join(root, "usr", "lib"), exist_ok=True)
for i in range(20):
    with open(os.path.join(root, "usr", "lib", "lib%02d.so" % i), "wb") as fh:
        fh.write(rng.randbytes(rng.randint(100_000, 1_000_000)))
with open(os.path.join(root, "usr", "lib", "big-random.bin"), "wb") as fh:
    fh.write(rng.randbytes(25 << 20))
with open(os.path.join(root, "usr", "lib", "big-text.txt"), "wb") as fh:
    fh.write(text(25 << 20))
PY
    mksquashfs "$tree" "$image" -noappend -quiet -no-progress -comp "$comp" >/dev/null
    rm -rf "$tree"
fi

out=$work/out
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
# Prints "wall_seconds max_rss_kib" for one run of "$@" into a fresh $out.
measure() {
    rm -rf "$out"
    /usr/bin/time -v -o "$work/time.txt" "$@" >/dev/null 2>&1
    wall=$(awk -F': ' '/Elapsed \(wall clock\)/ {print $2}' "$work/time.txt" |
        awk -F: '{ if (NF == 3) print $1*3600 + $2*60 + $3; else print $1*60 + $2 }')
    rss=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$work/time.txt")
    echo "$wall $rss"
}

echo "image: $image ($(du -m "$image" | cut -f1) MB, $comp), $(nproc) CPUs, warm cache, $runs runs"
measure "$rootrun" unpack --quiet "$image" "$out" >/dev/null
measure unsquashfs -q -n -d "$out" "$image" >/dev/null
: > "$work/rootrun.txt"
: > "$work/unsquashfs.txt"
i=0
while [ "$i" -lt "$runs" ]; do
    measure "$rootrun" unpack --quiet "$image" "$out" >> "$work/rootrun.txt"
    measure unsquashfs -q -n -d "$out" "$image" >> "$work/unsquashfs.txt"
    i=$((i + 1))
done
rm -rf "$out"

r_wall=$(cut -d' ' -f1 "$work/rootrun.txt" | median)
u_wall=$(cut -d' ' -f1 "$work/unsquashfs.txt" | median)
r_rss=$(cut -d' ' -f2 "$work/rootrun.txt" | sort -n | tail -n 1)
u_rss=$(cut -d' ' -f2 "$work/unsquashfs.txt" | sort -n | tail -n 1)
echo "rootrun unpack: median ${r_wall}s, peak RSS ${r_rss} KiB (runs: $(cut -d' ' -f1 "$work/rootrun.txt" | tr '\n' ' '))"
echo "unsquashfs -d:  median ${u_wall}s, peak RSS ${u_rss} KiB (runs: $(cut -d' ' -f1 "$work/unsquashfs.txt" | tr '\n' ' '))"
awk -v r="$r_wall" -v u="$u_wall" 'BEGIN { printf "ratio rootrun/unsquashfs: %.2fx (target <= 0.80x)\n", r / u }'
