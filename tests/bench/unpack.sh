#!/bin/sh
# Benchmark (not a test): `rootrun unpack` against squashfs-tools' `unsquashfs -d` on the same
# image.
#
#   sudo tests/bench/unpack.sh [IMAGE | realistic | mixed]      (RUNS=5, WORKDIR)
#
# IMAGE is any SquashFS image. `realistic` (the default) is tests/bench/realistic-image.sh's
# (100,000 files, about 1 GB of data, xz). `mixed` is a generated ~100 MB image of 20,000
# small text files and a few large files, some compressible, some not (COMP=gzip|xz|lzo|lz4|
# zstd, default gzip), built once into WORKDIR (default /var/tmp/rootrun-bench) and reused.
# Runs are on a WARM page cache: one untimed run of each tool first, then RUNS timed runs of
# each, alternating. Each run writes into a fresh ext4 file system (a sparse file on WORKDIR,
# loop-mounted): deleting the previous run's tree just before would make the next run pay for
# it (ext4 without a journal, as this VM's root, skips inodes deleted in the last minute
# when it allocates, and that scan took a third of the CPU time of 100,000 creations).
# DEST=dir writes into WORKDIR itself instead. The medians of the
# wall times are compared; peak RSS comes from /usr/bin/time -v (package `time`).
set -eu

which=${1:-realistic}
work=${WORKDIR:-/var/tmp/rootrun-bench}
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
case $which in
realistic) image=$("$here/tests/bench/realistic-image.sh") ;;
mixed) image=$work/bench-$comp.img ;;
*) image=$which ;;
esac
if [ "$which" = mixed ] && [ ! -f "$image" ]; then
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

dest=${DEST:-ext4}
mnt=$work/mnt
out=$mnt/out
mkdir -p "$mnt"
cleanup() { if mountpoint -q "$mnt"; then umount "$mnt"; fi; rm -f "$work/fs.img"; }
trap cleanup EXIT
# A fresh destination file system (or, with DEST=dir, an empty directory).
fresh() {
    if [ "$dest" = dir ]; then rm -rf "$out"; return; fi
    cleanup
    truncate -s 16G "$work/fs.img"
    mkfs.ext4 -q -F "$work/fs.img"
    mount -o loop "$work/fs.img" "$mnt"
}
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
# Prints "wall_seconds max_rss_kib cpu_seconds" for one run of "$@" into a fresh $out.
measure() {
    fresh
    /usr/bin/time -v -o "$work/time.txt" "$@" >/dev/null 2>&1
    wall=$(awk -F': ' '/Elapsed \(wall clock\)/ {print $2}' "$work/time.txt" |
        awk -F: '{ if (NF == 3) print $1*3600 + $2*60 + $3; else print $1*60 + $2 }')
    rss=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$work/time.txt")
    cpu=$(awk -F': ' '/User time|System time/ {s += $2} END {print s}' "$work/time.txt")
    echo "$wall $rss $cpu"
}

echo "image: $image ($(du -m "$image" | cut -f1) MB), $(nproc) CPUs, kernel $(uname -r), warm cache, $runs runs"
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg); destination: $([ "$dest" = dir ] && df -T "$work" | awk 'NR == 2 {print $2 " in " $7}' || echo "fresh ext4 per run")"
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
cleanup

r_wall=$(cut -d' ' -f1 "$work/rootrun.txt" | median)
u_wall=$(cut -d' ' -f1 "$work/unsquashfs.txt" | median)
r_cpu=$(cut -d' ' -f3 "$work/rootrun.txt" | median)
u_cpu=$(cut -d' ' -f3 "$work/unsquashfs.txt" | median)
r_rss=$(cut -d' ' -f2 "$work/rootrun.txt" | sort -n | tail -n 1)
u_rss=$(cut -d' ' -f2 "$work/unsquashfs.txt" | sort -n | tail -n 1)
echo "rootrun unpack: median ${r_wall}s (CPU ${r_cpu}s), peak RSS ${r_rss} KiB (runs: $(cut -d' ' -f1 "$work/rootrun.txt" | tr '\n' ' '))"
echo "unsquashfs -d:  median ${u_wall}s (CPU ${u_cpu}s), peak RSS ${u_rss} KiB (runs: $(cut -d' ' -f1 "$work/unsquashfs.txt" | tr '\n' ' '))"
awk -v r="$r_wall" -v u="$u_wall" 'BEGIN { printf "ratio rootrun/unsquashfs: %.2fx (target <= 0.80x)\n", r / u }'
awk -v r="$r_cpu" -v u="$u_cpu" 'BEGIN { printf "CPU time ratio (steadier under load): %.2fx\n", r / u }'
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
