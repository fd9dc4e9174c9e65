#!/usr/bin/env bash
# inspect cost against image size and file count: `rootrun inspect` reads the superblock and
# only the metadata blocks on the paths it looks up (init and what its flavour needs:
# /etc/inittab for BusyBox init and sysvinit, /metadata.yaml, /dev), each decoded only as far
# as the lookup needs, and the first bytes of the files it reads, so a large image with many
# files should take about as long as a tiny one (target: under 1.2x).
#
#   tests/bench/inspect.sh [-n RUNS] [-s] [IMAGE...]
#
# IMAGE defaults to the realistic generated one (tests/bench/realistic-image.sh: 100,000
# files, about 1 GB of data, xz); -s adds the same shape with 1,000, 10,000 and 30,000 files
# (built once, cached), to show the cost against the file count. Each image is compared with
# a tiny one (BusyBox alone) of the same compression and architecture. Times RUNS runs of each
# (default 20), warm and (as root) with the page cache dropped before each run, and prints the
# medians and their ratio, what each run decoded (from rootrun's own trace: metadata blocks,
# file data, fragments), and `unsquashfs -s` (superblock only) and `unsquashfs -l` (lists every
# entry) as references.
set -euo pipefail
cd "$(dirname "$0")/../.."

runs=20
sweep=0
while getopts n:s opt; do
    case $opt in
    n) runs=$OPTARG ;;
    s) sweep=1 ;;
    *) echo "usage: $0 [-n RUNS] [-s] [IMAGE...]" >&2; exit 2 ;;
    esac
done
shift $((OPTIND - 1))
[[ $runs =~ ^[1-9][0-9]*$ ]] || { echo "$0: -n wants a positive number of runs" >&2; exit 2; }

cargo build --release --quiet
rootrun=$PWD/target/release/rootrun
work=$(mktemp -d "${TMPDIR:-/tmp}/rootrun-bench-inspect.XXXXXX")
trap 'rm -rf "$work"' EXIT

images=("$@")
if ((sweep)); then
    for files in 1000 10000 30000; do
        images+=("$(FILES=$files tests/bench/realistic-image.sh)")
    done
fi
if ((${#images[@]} == 0 || sweep)); then
    images+=("$(tests/bench/realistic-image.sh)")
fi

# Median in ms of RUNS timed runs of a command. With COLD=1 (root), the page cache is
# dropped before each run, so every block read comes from disk.
median_ms() {
    local cold=$1 i t0 t1
    shift
    for ((i = 0; i < runs; i++)); do
        if ((cold)); then sync; echo 3 > /proc/sys/vm/drop_caches; fi
        t0=${EPOCHREALTIME//[!0-9]/}
        "$@" > /dev/null
        t1=${EPOCHREALTIME//[!0-9]/}
        echo $((t1 - t0))
    done | sort -n | awk '{ v[NR] = $1 } END {
        m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
        printf "%.2f\n", m / 1000 }'
}

# What one inspect decodes, from its trace events (src/image/metablock.rs, data.rs).
decoded() {
    RUST_LOG=rootrun::image=trace "$rootrun" inspect "$1" 2>&1 >/dev/null | awk '
        / metadata block at / {
            match($0, /block at [0-9]+/); pos = substr($0, RSTART + 9, RLENGTH - 9)
            match($0, /(to byte|stored,) [0-9]+/); v = substr($0, RSTART, RLENGTH); sub(/[^0-9]+/, "", v)
            if (v + 0 > upto[pos] + 0) upto[pos] = v + 0
        }
        / data block at / { data += $(NF - 1) }
        / fragment [0-9]+: decoded / { frag += $(NF - 1) }
        END {
            for (p in upto) { n++; meta += upto[p] }
            printf "decoded: %d metadata blocks, %.1f KiB; file heads %.1f KiB; fragments %.1f KiB\n",
                n, meta / 1024, data / 1024, frag / 1024 }'
}

entries() { unsquashfs -l "$1" | grep -c '^squashfs-root'; }
mb() { du -m "$1" | cut -f1; }
row() { printf '%-50s %8s %9s %10s\n' "$@"; }

echo "load average: $(cut -d' ' -f1-3 /proc/loadavg); $(nproc) CPUs; kernel $(uname -r); $runs runs each"
for large in "${images[@]}"; do
    # The tiny image has the large one's compression and architecture (a foreign one costs
    # the host's binfmt_misc and interpreter checks, whatever the image's size).
    if ! kind=$("$rootrun" inspect --json "$large" | python3 -c 'import json, sys
d = json.load(sys.stdin)
if not d.get("squashfs"):
    sys.exit(1)
print(d["squashfs"]["compression"], (d.get("names") or {}).get("debian") or "amd64")' 2>/dev/null); then
        echo "$0: $large: not a SquashFS image rootrun can inspect (this benchmark compares SquashFS images)" >&2
        exit 1
    fi
    read -r comp arch <<<"$kind"
    tiny=$work/tiny-$comp-$arch.img
    [[ -f $tiny ]] || ROOTRUN_FIXTURE_COMP=$comp tests/fixtures/build-image.sh "$arch" "$tiny" >/dev/null
    "$rootrun" inspect "$large" > /dev/null   # warm the page cache
    tiny_ms=$(median_ms 0 "$rootrun" inspect "$tiny")
    large_ms=$(median_ms 0 "$rootrun" inspect "$large")
    echo
    echo "== $large"
    row "" "image MB" "entries" "median ms"
    row "rootrun inspect, tiny image ($comp, $arch)" "$(mb "$tiny")" "$(entries "$tiny")" "$tiny_ms"
    row "rootrun inspect, large image" "$(mb "$large")" "$(entries "$large")" "$large_ms"
    row "unsquashfs -s (superblock), large image" "" "" "$(median_ms 0 unsquashfs -s "$large")"
    row "unsquashfs -l (every entry), large image" "" "" "$(median_ms 0 unsquashfs -l "$large")"
    echo "tiny:  $(decoded "$tiny")"
    echo "large: $(decoded "$large")"
    awk -v a="$large_ms" -v b="$tiny_ms" 'BEGIN { r = a / b; printf "large / tiny (warm cache): %.2fx (target < 1.2x: %s)\n", r, (r < 1.2 ? "ok" : "OVER") }'
    if [[ $(id -u) -eq 0 ]]; then
        tiny_cold=$(median_ms 1 "$rootrun" inspect "$tiny")
        large_cold=$(median_ms 1 "$rootrun" inspect "$large")
        row "same, page cache dropped before each run" "tiny" "" "$tiny_cold"
        row "" "large" "" "$large_cold"
        awk -v a="$large_cold" -v b="$tiny_cold" 'BEGIN { r = a / b; printf "large / tiny (cold cache): %.2fx (target < 1.2x: %s)\n", r, (r < 1.2 ? "ok" : "OVER") }'
    fi
done
