#!/bin/bash
# Named-container benchmark: `rootrun exec` against `lxc-attach` on the same
# running container, the supervising processes' memory, and a detached
# start plus `rootrun stop` against a foreground boot stopped by SIGTERM.
#
#   tests/bench/instances.sh [-n N] [IMAGE]     (as root; default N=30)
#
# IMAGE defaults to a BusyBox amd64 image built by tests/fixtures/build-image.sh
# in a temporary directory. Builds rootrun with cargo build --release.
#
#   exec        rootrun exec NAME -- /bin/true (re-executes itself from a
#               sealed memfd, joins the supervisor's mount namespace, then
#               liblxc's attach_run_wait)
#   lxc-attach  nsenter -t SUPERVISOR -m lxc-attach -P LXCPATH -n LXCNAME --
#               /bin/true: the same attach by liblxc's own tool, which needs
#               the same mount namespace to find the configuration
#   memory      VmRSS of the supervisor and its liblxc monitor, summed
#   detached    rootrun -d (returns once init runs) + rootrun stop, wall time
#
# Wall time per run from bash's $EPOCHREALTIME. A failing run aborts the
# script; on exit the container is stopped and the temporary directory goes.
set -euo pipefail
export LC_ALL=C

runs=30
usage() { echo "usage: $0 [-n N] [IMAGE]" >&2; exit 2; }
while getopts "n:h" opt; do
    case $opt in
        n) runs=$OPTARG ;;
        *) usage ;;
    esac
done
shift $((OPTIND - 1))
[[ $runs =~ ^[1-9][0-9]*$ ]] || usage
[[ $(id -u) == 0 ]] || { echo "instances.sh: must run as root" >&2; exit 1; }
for tool in lxc-attach nsenter cargo; do
    command -v "$tool" >/dev/null || { echo "instances.sh: $tool not found" >&2; exit 1; }
done

repo=$(cd "$(dirname "$0")/../.." && pwd)
rootrun=${CARGO_TARGET_DIR:-$repo/target}/release/rootrun
work=$(mktemp -d /tmp/rootrun-bench.XXXXXX)
name=bench-$$
running=

cleanup() {
    local status=$?
    set +e
    [[ -n $running ]] && "$rootrun" stop --kill "$name" >/dev/null 2>&1
    rm -rf "$work"
    exit "$status"
}
trap cleanup EXIT INT TERM

(cd "$repo" && cargo build --release --quiet)
img=${1:-}
if [[ -z $img ]]; then
    img=$work/bench.img
    "$repo/tests/fixtures/build-image.sh" amd64 "$img" >/dev/null
fi

median() { sort -n | awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }
ms_since() { awk -v s="$1" -v e="$EPOCHREALTIME" 'BEGIN { printf "%.2f\n", (e - s) * 1000 }'; }

"$rootrun" -q -d --name "$name" "$img" >/dev/null
running=1
read -r supervisor lxcname < <("$rootrun" ls --json | python3 -c '
import json, sys
for c in json.load(sys.stdin):
    if c["name"] == sys.argv[1]:
        print(c["supervisor_pid"], "rootrun-%d" % c["supervisor_pid"])
' "$name")
lxcpath=/run/rootrun/lxc

exec_times=() attach_times=()
for ((i = 0; i < runs; i++)); do
    start=$EPOCHREALTIME
    "$rootrun" exec "$name" -- /bin/true </dev/null
    exec_times+=("$(ms_since "$start")")
    start=$EPOCHREALTIME
    nsenter -t "$supervisor" -m lxc-attach -P "$lxcpath" -n "$lxcname" -- /bin/true </dev/null
    attach_times+=("$(ms_since "$start")")
done
exec_ms=$(printf '%s\n' "${exec_times[@]}" | median)
attach_ms=$(printf '%s\n' "${attach_times[@]}" | median)

rss() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }
sup_kb=$(rss "$supervisor")
# Its children: the liblxc monitor (the prefetch child has exited).
mon_kb=0
for child in $(cat "/proc/$supervisor/task/$supervisor/children"); do
    kb=$(rss "$child")
    mon_kb=$((mon_kb + ${kb:-0}))
done

"$rootrun" stop "$name" 2>/dev/null
running=

detach_times=() stop_times=()
for ((i = 0; i < runs && i < 10; i++)); do
    start=$EPOCHREALTIME
    "$rootrun" -q -d --name "$name" "$img" >/dev/null
    running=1
    detach_times+=("$(ms_since "$start")")
    start=$EPOCHREALTIME
    "$rootrun" stop "$name" 2>/dev/null
    running=
    stop_times+=("$(ms_since "$start")")
done
detach_ms=$(printf '%s\n' "${detach_times[@]}" | median)
stop_ms=$(printf '%s\n' "${stop_times[@]}" | median)

echo "image: $img"
echo "runs: $runs (detached start/stop: ${#detach_times[@]})"
printf '%-34s %10s\n' "" "median"
printf '%-34s %8s ms\n' "rootrun exec -- /bin/true" "$exec_ms"
printf '%-34s %8s ms\n' "lxc-attach -- /bin/true" "$attach_ms"
awk -v a="$exec_ms" -v b="$attach_ms" 'BEGIN { printf "%-34s %8.2fx   (target: at most 1.10x)\n", "ratio exec / lxc-attach", a / b }'
printf '%-34s %8.1f MB  (%s + %s kB; target: under 10 MB)\n' "supervisor + monitor RSS" \
    "$(awk -v a="$sup_kb" -v b="$mon_kb" 'BEGIN { print (a + b) / 1024 }')" "$sup_kb" "$mon_kb"
printf '%-34s %8s ms\n' "rootrun -d (until init runs)" "$detach_ms"
printf '%-34s %8s ms\n' "rootrun stop (clean halt)" "$stop_ms"
