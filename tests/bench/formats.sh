#!/bin/bash
# Image formats: start-up of each format rootrun boots against the SquashFS
# image of the same tree.
#
#   tests/bench/formats.sh [-n N]     (as root; default N=20; FILLER_MB=64)
#
# Builds rootrun (cargo build --release) and the BusyBox amd64 SquashFS image
# (tests/fixtures/build-image.sh, gzip) with FILLER_MB of incompressible data
# and 2,000 small files added (ROOTRUN_FIXTURE_EXTRA), then repacks its tree
# with tests/fixtures/build-format.sh as ext4, erofs, tar, tar.gz, tar.xz,
# tar.zst, tar.bz2 and cpio.gz, and times N runs of
#
#   target/release/rootrun -q IMG -- /bin/true
#
# for each. The SquashFS and ext4/EROFS images are loop-mounted (read-only,
# detached); an archive is unpacked into a tmpfs on every run, so its time
# is dominated by decompression and the copy. Prints the median wall time of
# each, and its ratio to the SquashFS image's.
#
# Wall time per run comes from bash's $EPOCHREALTIME. A run exiting non-zero
# aborts the script with a non-zero status. On exit the temporary directory
# goes, and the script checks that no loop device or mount of it remains.
set -euo pipefail
export LC_ALL=C

runs=20
filler_mb=${FILLER_MB:-64}
usage() { echo "usage: $0 [-n N]" >&2; exit 2; }
while getopts "n:h" opt; do
    case $opt in
        n) runs=$OPTARG ;;
        *) usage ;;
    esac
done
[[ $runs =~ ^[1-9][0-9]*$ ]] || { echo "formats.sh: -n wants a positive integer" >&2; exit 2; }
[[ $(id -u) == 0 ]] || { echo "formats.sh: must run as root" >&2; exit 1; }
for tool in mksquashfs unsquashfs mkfs.ext4 mkfs.erofs tar cpio gzip xz zstd bzip2 cargo; do
    command -v "$tool" >/dev/null || { echo "formats.sh: $tool not found (tests/setup-host.sh)" >&2; exit 1; }
done

repo=$(cd "$(dirname "$0")/../.." && pwd)
rootrun=${CARGO_TARGET_DIR:-$repo/target}/release/rootrun
work=$(mktemp -d /tmp/rootrun-bench-formats.XXXXXX)

cleanup() {
    local status=$? leaks=0
    set +e
    if losetup -a | grep -qF "$work"; then
        echo "formats.sh: LEAK: loop device on $work: $(losetup -a | grep -F "$work")" >&2
        leaks=1
    fi
    if grep -qF "$work" /proc/self/mountinfo; then
        echo "formats.sh: LEAK: mount under $work" >&2
        leaks=1
    fi
    rm -rf "$work"
    if (( status == 0 && leaks )); then status=1; fi
    exit "$status"
}
trap cleanup EXIT

echo "building rootrun (cargo build --release) ..." >&2
(cd "$repo" && cargo build --release --quiet)

echo "building the image (BusyBox amd64 + ${filler_mb} MB filler + 2000 files) ..." >&2
mkdir -p "$work/extra/usr/share/filler" "$work/extra/usr/share/many"
head -c "$((filler_mb << 20))" /dev/urandom >"$work/extra/usr/share/filler/blob"
for i in $(seq 1 2000); do echo "file $i" >"$work/extra/usr/share/many/f$i"; done
ROOTRUN_FIXTURE_EXTRA=$work/extra "$repo/tests/fixtures/build-image.sh" amd64 "$work/img.squashfs" >/dev/null
formats=(ext4 erofs tar tar.gz tar.xz tar.zst tar.bz2 cpio.gz)
for format in "${formats[@]}"; do
    "$repo/tests/fixtures/build-format.sh" "$work/img.squashfs" "$format" "$work/img.$format"
done

median() { sort -n | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }

time_runs() {
    local image=$1 t0 t1
    "$rootrun" -q "$image" -- /bin/true # warm the page cache
    for _ in $(seq 1 "$runs"); do
        t0=${EPOCHREALTIME/./}
        "$rootrun" -q "$image" -- /bin/true
        t1=${EPOCHREALTIME/./}
        echo $(( t1 - t0 ))
    done | median
}

base=$(time_runs "$work/img.squashfs")
printf "%-10s %10s %12s %8s\n" format size median "vs squashfs"
row() { # FORMAT FILE MICROSECONDS
    awk -v f="$1" -v s="$(du -h "$2" | cut -f1)" -v us="$3" -v base="$base" \
        'BEGIN { printf "%-10s %10s %9.1f ms %8.2f\n", f, s, us / 1000, us / base }'
}
row squashfs "$work/img.squashfs" "$base"
for format in "${formats[@]}"; do
    us=$(time_runs "$work/img.$format")
    row "$format" "$work/img.$format" "$us"
done
