#!/usr/bin/env bash
# inspect cost against image size: `rootrun inspect` reads only the
# superblock, the tables and the blocks holding init's inode and ELF header,
# so a SquashFS with a large filler file should take about as long as a tiny
# one. Builds both images (BusyBox arm64, the large one with FILLER_MB of
# random data, default 400), times N runs of each (default 20; `-n N`), and
# prints the medians and their ratio (target: under 2x).
set -euo pipefail
cd "$(dirname "$0")/../.."

runs=20
filler_mb=${FILLER_MB:-400}
while getopts n: opt; do
    case $opt in
    n) runs=$OPTARG ;;
    *) echo "usage: $0 [-n RUNS]" >&2; exit 2 ;;
    esac
done

cargo build --release --quiet
rootrun=$PWD/target/release/rootrun
work=$(mktemp -d "${TMPDIR:-/tmp}/rootrun-bench-inspect.XXXXXX")
trap 'rm -rf "$work"' EXIT

tests/fixtures/build-image.sh arm64 "$work/tiny.img"
mkdir -p "$work/extra/srv"
head -c "$((filler_mb * 1024 * 1024))" /dev/urandom > "$work/extra/srv/filler.bin"
ROOTRUN_FIXTURE_EXTRA=$work/extra tests/fixtures/build-image.sh arm64 "$work/large.img"
rm -rf "$work/extra"

# Median in ms of RUNS timed runs of `rootrun inspect IMAGE`.
# With COLD=1 (root), the page cache is dropped before each run, so every
# block read comes from disk.
median_ms() {
    local img=$1 cold=${2:-0} i t0 t1
    for ((i = 0; i < runs; i++)); do
        if ((cold)); then sync; echo 3 > /proc/sys/vm/drop_caches; fi
        t0=${EPOCHREALTIME/./}
        "$rootrun" inspect "$img" > /dev/null
        t1=${EPOCHREALTIME/./}
        echo $((t1 - t0))
    done | sort -n | awk '{ v[NR] = $1 } END {
        m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
        printf "%.2f\n", m / 1000 }'
}

"$rootrun" inspect "$work/large.img" > /dev/null   # warm the page cache for both
tiny=$(median_ms "$work/tiny.img")
large=$(median_ms "$work/large.img")
printf '%-40s %10s %12s\n' "" "image MB" "median ms"
printf '%-40s %10s %12s\n' "rootrun inspect, tiny image" "$(du -m "$work/tiny.img" | cut -f1)" "$tiny"
printf '%-40s %10s %12s\n' "rootrun inspect, image + ${filler_mb} MB filler" "$(du -m "$work/large.img" | cut -f1)" "$large"
awk -v a="$large" -v b="$tiny" 'BEGIN { r = a / b; printf "large / tiny (warm cache): %.2fx (target < 2x: %s)\n", r, (r < 2 ? "ok" : "OVER") }'
if [[ $(id -u) -eq 0 ]]; then
    tiny_cold=$(median_ms "$work/tiny.img" 1)
    large_cold=$(median_ms "$work/large.img" 1)
    printf '%-40s %10s %12s\n' "same, page cache dropped before each run" "tiny" "$tiny_cold"
    printf '%-40s %10s %12s\n' "" "large" "$large_cold"
    awk -v a="$large_cold" -v b="$tiny_cold" 'BEGIN { r = a / b; printf "large / tiny (cold cache): %.2fx (target < 2x: %s)\n", r, (r < 2 ? "ok" : "OVER") }'
fi
