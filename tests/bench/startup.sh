#!/bin/bash
# Start-up benchmark: rootrun against the liblxc floor (lxc-execute).
#
#   tests/bench/startup.sh [-n N] [IMAGE | realistic]
#                               (as root; default N=20; COMP=gzip|lz4|lzo|xz|zstd)
#
# Builds rootrun (cargo build --release) and a BusyBox amd64 image
# (tests/fixtures/build-image.sh, compressed with COMP, gzip by default) in a
# temporary directory, or copies IMAGE there (any image with /bin/true; the
# copy keeps the script's loop-device cleanup to its own file; `realistic` is
# tests/bench/realistic-image.sh's, xz), then times N runs of each of:
#
#   rootrun          target/release/rootrun -q IMG -- /bin/true
#                    (includes rootrun's own namespace + loop + mounts per run)
#   floor            lxc-execute -n NAME -P LXCPATH -f CONFIG -- /bin/true on a
#                    root that the script mounted ONCE, outside the timing loop
#   floor+mounts     the same lxc-execute, with loop device + squashfs + tmpfs
#                    + overlay set up and torn down by losetup/mount/umount in
#                    every timed iteration
#   mounts only      (information) that per-iteration setup/teardown alone
#
# Both floors run inside `unshare --mount --propagation private`, with a
# liblxc configuration taken from `rootrun --dry-run` (only the paths
# changed), a private lxcpath under the temporary directory, and a tmpfs over
# /run/lxc (as rootrun does) so liblxc's lock files stay out of the host.
#
# Wall time per run comes from bash's $EPOCHREALTIME (microseconds, no fork).
# Any run exiting non-zero aborts the script with a non-zero status. On exit
# (also on failure or Ctrl-C) every mount and loop device the script made is
# removed, and the script checks `losetup -a` and /proc/self/mountinfo.
set -euo pipefail
export LC_ALL=C

target_ratio=1.15
runs=20
usage() { echo "usage: $0 [-n N] [IMAGE | realistic]" >&2; exit 2; }
while getopts "n:h" opt; do
    case $opt in
        n) runs=$OPTARG ;;
        *) usage ;;
    esac
done
shift $((OPTIND - 1))
source_image=${1:-}
[[ $runs =~ ^[1-9][0-9]*$ ]] || { echo "startup.sh: -n wants a positive integer" >&2; exit 2; }
[[ $(id -u) == 0 ]] || { echo "startup.sh: must run as root" >&2; exit 1; }
for tool in lxc-execute losetup unshare mksquashfs cargo; do
    command -v "$tool" >/dev/null || { echo "startup.sh: $tool not found" >&2; exit 1; }
done

repo=$(cd "$(dirname "$0")/../.." && pwd)
rootrun=${CARGO_TARGET_DIR:-$repo/target}/release/rootrun
work=$(mktemp -d /tmp/rootrun-bench.XXXXXX)
img=$work/bench.img
name=rootrun-bench-$$
made_run_lxc=

cleanup() {
    local status=$? leaks=0
    set +e
    # The namespaces are gone by now (their last process exited), and with
    # them every mount; a loop device set up by losetup has no autoclear, so
    # detach whatever still points at our image (an aborted iteration).
    if [[ -e $img ]]; then
        for dev in $(losetup -j "$img" -O NAME -n 2>/dev/null); do
            losetup -d "$dev"
        done
    fi
    # Mounts only exist inside the private namespaces, but be thorough.
    grep -F " $work" /proc/self/mountinfo | awk '{print $5}' | sort -r |
        while read -r mnt; do umount -l "$mnt"; done
    if [[ -n $made_run_lxc ]]; then rmdir /run/lxc 2>/dev/null; fi
    if [[ -e $img ]] && [[ -n $(losetup -j "$img" 2>/dev/null) ]]; then
        echo "startup.sh: LEAK: loop device still bound: $(losetup -j "$img")" >&2; leaks=1
    fi
    if grep -qF "$work" /proc/self/mountinfo; then
        echo "startup.sh: LEAK: mount left under $work" >&2; leaks=1
    fi
    if compgen -G "/sys/fs/cgroup/*/lxc.*.$name" >/dev/null ||
        compgen -G "/sys/fs/cgroup/lxc.*.$name" >/dev/null; then
        echo "startup.sh: LEAK: cgroups of $name left" >&2; leaks=1
    fi
    rm -rf "$work"
    if (( status == 0 && leaks )); then status=1; fi
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

echo "building rootrun (cargo build --release) ..." >&2
(cd "$repo" && cargo build --release --quiet)
if [[ $source_image == realistic ]]; then
    echo "building or finding the realistic image (tests/bench/realistic-image.sh) ..." >&2
    source_image=$("$repo/tests/bench/realistic-image.sh")
fi
if [[ -n $source_image ]]; then
    cp --reflink=auto "$source_image" "$img"
    comp=$("$rootrun" inspect --json "$img" |
        python3 -c 'import json, sys; print(json.load(sys.stdin)["squashfs"]["compression"])')
    what="$source_image"
else
    comp=${COMP:-gzip}
    echo "building image (tests/fixtures/build-image.sh amd64, $comp) ..." >&2
    ROOTRUN_FIXTURE_COMP=$comp "$repo/tests/fixtures/build-image.sh" amd64 "$img"
    what="a BusyBox amd64 image"
fi

# liblxc configuration: rootrun's own plan, with our paths.
mnt=$work/run
"$rootrun" --dry-run "$img" -- /bin/true > "$work/plan.txt"
sed -n 's/^#| //p' "$work/plan.txt" > "$work/seccomp"
grep -v '^#' "$work/plan.txt" |
    sed -e "s|^lxc.rootfs.path = .*|lxc.rootfs.path = dir:$mnt/rootfs|" \
        -e "s|^lxc.log.file = .*|lxc.log.file = $mnt/lxc.log|" \
        -e "s|^lxc.seccomp.profile = .*|lxc.seccomp.profile = $work/seccomp|" \
        -e "s|^lxc.rootfs.mount = .*|lxc.rootfs.mount = $work/rootfs-mount|" \
        > "$work/lxc.conf"
mkdir -p "$work/rootfs-mount"
grep -q '^lxc.rootfs.path = dir:' "$work/lxc.conf" ||
    { echo "startup.sh: unexpected --dry-run output" >&2; cat "$work/lxc.conf" >&2; exit 1; }
# The same configuration on the image file itself through liblxc's loop:
# backend, which sets the loop device up and mounts the SquashFS on every run,
# as rootrun does (rootrun avoids that backend: it opens the image read-write
# and attaches the loop device in two steps).
sed "s|^lxc.rootfs.path = .*|lxc.rootfs.path = loop:$img|" "$work/lxc.conf" > "$work/lxc-loop.conf"
mkdir -p "$mnt"
if [[ ! -d /run/lxc ]]; then mkdir /run/lxc; made_run_lxc=1; fi

# Fails (non-zero) on the first run that fails, naming it.
run_timed() { # OUT LABEL CMD...
    local out=$1 label=$2 i t0 t1 rc; shift 2
    : > "$out"
    for ((i = 1; i <= runs; i++)); do
        t0=${EPOCHREALTIME/./}
        rc=0; "$@" >"$work/last.out" 2>&1 || rc=$?
        t1=${EPOCHREALTIME/./}
        if (( rc != 0 )); then
            echo "startup.sh: $label run $i/$runs failed with status $rc:" >&2
            cat "$work/last.out" >&2
            return 1
        fi
        echo $((t1 - t0)) >> "$out"
    done
}

echo "timing $runs runs of rootrun ..." >&2
run_timed "$work/t.rootrun" rootrun "$rootrun" -q "$img" -- /bin/true

# The floors run in a private mount namespace; everything below is
# exported so the inner bash can use it.
export work img mnt name runs
export -f run_timed
inner=$(cat <<'INNER'
set -euo pipefail
export LC_ALL=C
dev=
# Called under `||` in run_timed, where errexit is off: every step checks.
setup() {
    mount -t tmpfs -o nodev,nosuid tmpfs /run/lxc || return   # liblxc lock files (as rootrun)
    mount -t tmpfs -o nodev,nosuid tmpfs "$mnt" || return
    mkdir "$mnt/lower" "$mnt/upper" "$mnt/work" "$mnt/rootfs" "$mnt/lxc" || return
    dev=$(losetup -r --show -f "$img") || return
    mount -t squashfs -o ro,nodev,nosuid "$dev" "$mnt/lower" || return
    mount -t overlay -o "nodev,lowerdir=$mnt/lower,upperdir=$mnt/upper,workdir=$mnt/work" \
        overlay "$mnt/rootfs" || return
}
teardown() {
    umount "$mnt/rootfs" || return
    umount "$mnt/lower" || return
    losetup -d "$dev" || return
    dev=
    umount "$mnt" || return
    umount /run/lxc || return
}
trap '[[ -z $dev ]] || { umount -l "$mnt/lower" 2>/dev/null; losetup -d "$dev"; }' EXIT
execute() { lxc-execute -n "$name" -P "$mnt/lxc" -f "$work/lxc.conf" -- /bin/true; }
execute_loop() { lxc-execute -n "$name" -P "$mnt/lxc" -f "$work/lxc-loop.conf" -- /bin/true; }
setup_execute_teardown() { setup && execute && teardown; }
setup_teardown() { setup && teardown; }

case $1 in
floor)
    setup
    run_timed "$work/t.floor" floor execute
    teardown ;;
loop)
    mount -t tmpfs -o nodev,nosuid tmpfs /run/lxc
    mount -t tmpfs -o nodev,nosuid tmpfs "$mnt"
    mkdir "$mnt/lxc"
    run_timed "$work/t.loop" "loop backend" execute_loop
    umount "$mnt"
    umount /run/lxc ;;
mounts)
    run_timed "$work/t.mounts" "floor+mounts" setup_execute_teardown
    run_timed "$work/t.setup" "mounts only" setup_teardown ;;
esac
INNER
)
echo "timing $runs runs of lxc-execute on a root mounted once ..." >&2
unshare --mount --propagation private bash -c "$inner" inner floor
echo "timing $runs runs of lxc-execute with the loop: backend on the image ..." >&2
unshare --mount --propagation private bash -c "$inner" inner loop
echo "timing $runs runs of mount setup + lxc-execute + teardown ..." >&2
unshare --mount --propagation private bash -c "$inner" inner mounts

# Median / min / max in ms of a file of microsecond samples.
stats() {
    sort -n "$1" | awk '{ v[NR] = $1 } END {
        m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
        printf "%.1f %.1f %.1f\n", m / 1000, v[1] / 1000, v[NR] / 1000 }'
}
read -r rr_med rr_min rr_max < <(stats "$work/t.rootrun")
read -r fl_med fl_min fl_max < <(stats "$work/t.floor")
read -r fm_med fm_min fm_max < <(stats "$work/t.mounts")
read -r su_med su_min su_max < <(stats "$work/t.setup")
read -r lp_med lp_min lp_max < <(stats "$work/t.loop")
ratio() { awk -v a="$1" -v b="$2" -v t="$target_ratio" 'BEGIN {
    r = a / b; printf "%.2fx (target <= %.2fx: %s)", r, t, (r <= t ? "ok" : "OVER") }'; }

echo
echo "rootrun start-up, $runs runs each, /bin/true in $what, $comp ($(uname -r), $(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg))"
printf '%-44s %9s %9s %9s\n' "" "median ms" "min ms" "max ms"
printf '%-44s %9s %9s %9s\n' "rootrun -q IMG -- /bin/true (*)" "$rr_med" "$rr_min" "$rr_max"
printf '%-44s %9s %9s %9s\n' "lxc-execute, root mounted once (floor)" "$fl_med" "$fl_min" "$fl_max"
printf '%-44s %9s %9s %9s\n' "lxc-execute + mounts per run (floor+mounts)" "$fm_med" "$fm_min" "$fm_max"
printf '%-44s %9s %9s %9s\n' "  of which mounts only (losetup/mount/umount)" "$su_med" "$su_min" "$su_max"
printf '%-44s %9s %9s %9s\n' "lxc-execute, loop: backend on the image file" "$lp_med" "$lp_min" "$lp_max"
echo "rootrun / floor:        $(ratio "$rr_med" "$fl_med")"
echo "rootrun / floor+mounts: $(ratio "$rr_med" "$fm_med")"
echo "rootrun / loop backend: $(ratio "$rr_med" "$lp_med")"
echo "(*) rootrun's time includes its own namespace, loop device and 3 tmpfs/squashfs/overlay"
echo "    mounts (+ a tmpfs on /run/lxc) every run; the floor+mounts row does that work with"
echo "    forked losetup/mount/umount tools, which cost more than rootrun's direct syscalls."
