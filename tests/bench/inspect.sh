#!/usr/bin/env bash
# inspect cost against image size and file count: `rootrun inspect` reads the superblock and
# only the metadata blocks on the paths it looks up (init, its fallbacks, metadata.yaml,
# /etc/inittab, /dev) and the first data blocks of the files it reads, so a large image with
# many files should take about as long as a tiny one (target: under 1.2x).
#
#   tests/bench/inspect.sh [-n RUNS] [IMAGE]
#
# IMAGE defaults to the realistic generated one (tests/bench/realistic-image.sh: 100,000
# files, about 1 GB of data, xz). The tiny image is BusyBox alone, with the same compression
# and architecture as IMAGE. Times RUNS runs of each (default 20), warm and (as root) with the page cache
# dropped before each run, and prints the medians and their ratio, with `unsquashfs -s`
# (superblock only) and `unsquashfs -l` (lists every entry) on the large image as references.
set -euo pipefail
cd "$(dirname "$0")/../.."

runs=20
while getopts n: opt; do
    case $opt in
    n) runs=$OPTARG ;;
    *) echo "usage: $0 [-n RUNS] [IMAGE]" >&2; exit 2 ;;
    esac
done
shift $((OPTIND - 1))

cargo build --release --quiet
rootrun=$PWD/target/release/rootrun
work=$(mktemp -d "${TMPDIR:-/tmp}/rootrun-bench-inspect.XXXXXX")
trap 'rm -rf "$work"' EXIT

large=${1:-$(tests/bench/realistic-image.sh)}
# The tiny image has the large one's compression and architecture (a foreign one costs the
# host's binfmt_misc and interpreter checks, whatever the image's size).
read -r comp arch < <("$rootrun" inspect --json "$large" | python3 -c 'import json, sys
d = json.load(sys.stdin)
print(d["squashfs"]["compression"], (d.get("names") or {}).get("debian") or "amd64")')
ROOTRUN_FIXTURE_COMP=$comp tests/fixtures/build-image.sh "$arch" "$work/tiny.img"

# Median in ms of RUNS timed runs of a command. With COLD=1 (root), the page cache is
# dropped before each run, so every block read comes from disk.
median_ms() {
    local cold=$1 i t0 t1
    shift
    for ((i = 0; i < runs; i++)); do
        if ((cold)); then sync; echo 3 > /proc/sys/vm/drop_caches; fi
        t0=${EPOCHREALTIME/./}
        "$@" > /dev/null
        t1=${EPOCHREALTIME/./}
        echo $((t1 - t0))
    done | sort -n | awk '{ v[NR] = $1 } END {
        m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
        printf "%.2f\n", m / 1000 }'
}

entries() { unsquashfs -l "$1" | grep -c '^squashfs-root'; }
mb() { du -m "$1" | cut -f1; }

echo "load average: $(cut -d' ' -f1-3 /proc/loadavg); $(nproc) CPUs; kernel $(uname -r)"
"$rootrun" inspect "$large" > /dev/null   # warm the page cache
tiny_ms=$(median_ms 0 "$rootrun" inspect "$work/tiny.img")
large_ms=$(median_ms 0 "$rootrun" inspect "$large")
sq_s=$(median_ms 0 unsquashfs -s "$large")
sq_l=$(median_ms 0 unsquashfs -l "$large")
printf '%-46s %8s %9s %10s\n' "" "image MB" "entries" "median ms"
printf '%-46s %8s %9s %10s\n' "rootrun inspect, tiny image ($comp, $arch)" "$(mb "$work/tiny.img")" "$(entries "$work/tiny.img")" "$tiny_ms"
printf '%-46s %8s %9s %10s\n' "rootrun inspect, large image" "$(mb "$large")" "$(entries "$large")" "$large_ms"
printf '%-46s %8s %9s %10s\n' "unsquashfs -s (superblock), large image" "" "" "$sq_s"
printf '%-46s %8s %9s %10s\n' "unsquashfs -l (every entry), large image" "" "" "$sq_l"
awk -v a="$large_ms" -v b="$tiny_ms" 'BEGIN { r = a / b; printf "large / tiny (warm cache): %.2fx (target < 1.2x: %s)\n", r, (r < 1.2 ? "ok" : "OVER") }'
if [[ $(id -u) -eq 0 ]]; then
    tiny_cold=$(median_ms 1 "$rootrun" inspect "$work/tiny.img")
    large_cold=$(median_ms 1 "$rootrun" inspect "$large")
    printf '%-46s %8s %9s %10s\n' "same, page cache dropped before each run" "tiny" "" "$tiny_cold"
    printf '%-46s %8s %9s %10s\n' "" "large" "" "$large_cold"
    awk -v a="$large_cold" -v b="$tiny_cold" 'BEGIN { r = a / b; printf "large / tiny (cold cache): %.2fx (target < 1.2x: %s)\n", r, (r < 1.2 ? "ok" : "OVER") }'
fi
