#!/bin/bash
# Start-up cost of --unprivileged: the same command, privileged and
# unprivileged, on the same images, in one run.
#
#   tests/bench/unprivileged.sh [-n N]     (as root; default N=20)
#
# Builds rootrun (cargo build --release) and BusyBox images for amd64
# (native) and arm64 (emulated; tests/fixtures/build-image.sh) in a
# temporary directory, then times N runs of
#
#   rootrun -q --privileged   IMG -- /bin/true
#   rootrun -q --unprivileged IMG -- /bin/true
#
# alternating the two, so that a change in the machine's load falls on both.
# Unprivileged runs also make a user namespace for the idmapped lower layer,
# and for the arm64 image bind rootrun's own binary as liblxc's mount hook,
# which mounts the container's binfmt_misc and registers the emulator.
# Prints the medians and the median of the pairs' ratios (target: at most
# 1.10), and the ratio of the medians for reference. Wall time per run
# comes from bash's $EPOCHREALTIME. Any failed run aborts with its output.
set -euo pipefail
export LC_ALL=C

target_ratio=1.10
runs=20
while getopts "n:h" opt; do
    case $opt in
        n) runs=$OPTARG ;;
        *) echo "usage: $0 [-n N]" >&2; exit 2 ;;
    esac
done
[[ $runs =~ ^[1-9][0-9]*$ ]] || { echo "unprivileged.sh: -n wants a positive integer" >&2; exit 2; }
[[ $(id -u) == 0 ]] || { echo "unprivileged.sh: must run as root" >&2; exit 1; }

repo=$(cd "$(dirname "$0")/../.." && pwd)
rootrun=${CARGO_TARGET_DIR:-$repo/target}/release/rootrun
work=$(mktemp -d /tmp/rootrun-bench-unpriv.XXXXXX)
trap 'rm -rf "$work"' EXIT

echo "building rootrun (cargo build --release) ..." >&2
(cd "$repo" && cargo build --release --quiet)
for arch in amd64 arm64; do
    echo "building image (tests/fixtures/build-image.sh $arch) ..." >&2
    "$repo/tests/fixtures/build-image.sh" "$arch" "$work/$arch.img" >/dev/null
done

once() { # OUT MODE IMG
    local t0 t1 rc=0
    t0=${EPOCHREALTIME/./}
    "$rootrun" -q "$2" "$3" -- /bin/true >"$work/last.out" 2>&1 || rc=$?
    t1=${EPOCHREALTIME/./}
    if (( rc != 0 )); then
        echo "unprivileged.sh: $2 $3 failed with status $rc:" >&2
        cat "$work/last.out" >&2
        exit 1
    fi
    echo $((t1 - t0)) >> "$1"
}
median_ms() { sort -n "$1" | awk '{ a[NR] = $1 } END { m = (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2; printf "%.1f", m / 1000 }'; }

echo "machine: $(nproc) CPUs, kernel $(uname -r), load $(cut -d' ' -f1-3 /proc/loadavg)"
printf "%-8s %14s %14s %8s %10s\n" image privileged unprivileged ratio "(medians)"
worst=0
for arch in amd64 arm64; do
    img=$work/$arch.img
    : > "$work/p.$arch"; : > "$work/u.$arch"
    # One warm-up run each (page cache, first loop device).
    once /dev/null --privileged "$img"; once /dev/null --unprivileged "$img"
    for ((i = 1; i <= runs; i++)); do
        once "$work/p.$arch" --privileged "$img"
        once "$work/u.$arch" --unprivileged "$img"
    done
    p=$(median_ms "$work/p.$arch"); u=$(median_ms "$work/u.$arch")
    # Run i of each mode ran back to back: the median of the N ratios of
    # such pairs follows the machine's load drift less than the ratio of
    # the two medians.
    ratio=$(paste "$work/u.$arch" "$work/p.$arch" | awk '{ print $1 / $2 }' | sort -n |
        awk '{ a[NR] = $1 } END { m = (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2; printf "%.2f", m }')
    of_medians=$(awk -v p="$p" -v u="$u" 'BEGIN { printf "%.2f", u / p }')
    printf "%-8s %11s ms %11s ms %7sx %9sx\n" "$arch" "$p" "$u" "$ratio" "$of_medians"
    worst=$(awk -v a="$worst" -v b="$ratio" 'BEGIN { print (b > a) ? b : a }')
done
echo "median of $runs runs each; ratio: the median of the $runs back-to-back pairs' ratios"
echo "(medians: the ratio of the two medians); target: ratio within ${target_ratio}x"
awk -v w="$worst" -v t="$target_ratio" 'BEGIN { exit !(w <= t) }' &&
    echo "target met (worst ${worst}x)" || echo "target MISSED (worst ${worst}x)"
