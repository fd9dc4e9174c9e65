#!/bin/bash
# Long runs: many rootruns in a row and at once, then many execs into one
# detached container, and whether anything grows.
#
#   tests/bench/soak.sh [-s SEQ] [-r ROUNDS] [-c CONC] [-e EXECS]
#       (as root; defaults 200 sequential runs, 50 rounds of 8 concurrent,
#        200 execs)
#
# Runs `rootrun -q IMG -- /bin/sh -c 'echo run-N-$(uname -m)'` on a BusyBox
# amd64 and an arm64 image (built by tests/fixtures/build-image.sh; the
# arm64 one runs under QEMU), checking every output; the concurrent rounds
# mix both images, each twice at once. Prints, for the first and the last
# tenth of the runs, the median peak RSS of a run (/usr/bin/time), and, before
# and after, what could pile up on the host: mount lines in
# /proc/self/mountinfo, loop devices (losetup -a), cgroups named rootrun-*,
# entries under /run/rootrun and /run/lxc. Then a detached container takes
# EXECS `rootrun exec -- /bin/true`; its rootrun's open descriptors and RSS
# are printed before and after. Exits 1 if a run is wrong or anything grew.
# Host counts include other users' containers: run it on a quiet machine.
set -euo pipefail
export LC_ALL=C

seq_runs=200 rounds=50 conc=8 execs=200
usage() { echo "usage: $0 [-s SEQ] [-r ROUNDS] [-c CONC] [-e EXECS]" >&2; exit 2; }
while getopts "s:r:c:e:h" opt; do
    case $opt in
        s) seq_runs=$OPTARG ;;
        r) rounds=$OPTARG ;;
        c) conc=$OPTARG ;;
        e) execs=$OPTARG ;;
        *) usage ;;
    esac
done
[[ $(id -u) == 0 ]] || { echo "soak.sh: must run as root" >&2; exit 1; }
[[ -x /usr/bin/time ]] || { echo "soak.sh: /usr/bin/time not found (apt-get install time)" >&2; exit 1; }

repo=$(cd "$(dirname "$0")/../.." && pwd)
rootrun=${CARGO_TARGET_DIR:-$repo/target}/release/rootrun
work=$(mktemp -d /tmp/rootrun-soak.XXXXXX)
name=soak-$$
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
"$repo/tests/fixtures/build-image.sh" amd64 "$work/amd64.img" >/dev/null
"$repo/tests/fixtures/build-image.sh" arm64 "$work/arm64.img" >/dev/null

snapshot() {
    echo "mounts=$(wc -l < /proc/self/mountinfo)" \
        "loops=$(losetup -a | wc -l)" \
        "cgroups=$(find /sys/fs/cgroup -maxdepth 3 -type d -name '*rootrun-*' 2>/dev/null | wc -l)" \
        "run=$(find /run/rootrun /run/lxc -mindepth 1 -maxdepth 3 2>/dev/null | wc -l)"
}

# One run: checks its output, appends its peak RSS (kB) to FILE.
one() { # N ARCH FILE
    local n=$1 arch=$2 out expected
    out=$( { /usr/bin/time -f 'rss %M' "$rootrun" -q "$work/$arch.img" -- \
        /bin/sh -c "echo run-$n-\$(uname -m)"; } 2>"$work/err.$n")
    case $arch in amd64) expected=x86_64 ;; arm64) expected=aarch64 ;; esac
    if [[ $out != "run-$n-$expected" ]]; then
        echo "soak.sh: run $n ($arch) printed '$out'" >&2; cat "$work/err.$n" >&2; return 1
    fi
    awk '/^rss / { print $2 }' "$work/err.$n" >> "$3"
    rm -f "$work/err.$n"
}

median() { sort -n "$1" | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

before=$(snapshot)
: > "$work/seq.first" ; : > "$work/seq.last"
tenth=$(( seq_runs / 10 > 0 ? seq_runs / 10 : 1 ))
for ((n = 0; n < seq_runs; n++)); do
    arch=amd64; (( n % 2 )) && arch=arm64
    file=/dev/null
    (( n < tenth )) && file=$work/seq.first
    (( n >= seq_runs - tenth )) && file=$work/seq.last
    one "$n" "$arch" "$file"
done
: > "$work/conc.first" ; : > "$work/conc.last"
for ((r = 0; r < rounds; r++)); do
    file=/dev/null
    (( r == 0 )) && file=$work/conc.first
    (( r == rounds - 1 )) && file=$work/conc.last
    pids=()
    for ((i = 0; i < conc; i++)); do
        arch=amd64; (( i % 2 )) && arch=arm64
        one "$((100000 + r * 100 + i))" "$arch" "$file" &
        pids+=($!)
    done
    for pid in "${pids[@]}"; do wait "$pid"; done
done
after=$(snapshot)

"$rootrun" -q -d --name "$name" "$work/amd64.img" >/dev/null
running=1
supervisor=$("$rootrun" ls --json | python3 -c '
import json, sys
print(next(c["supervisor_pid"] for c in json.load(sys.stdin) if c["name"] == sys.argv[1]))' "$name")
fds() { ls "/proc/$supervisor/fd" | wc -l; }
rss() { awk '/^VmRSS:/ { print $2 }' "/proc/$supervisor/status"; }
for ((i = 0; i < 5; i++)); do "$rootrun" exec "$name" -- /bin/true </dev/null; done
fds_before=$(fds) rss_before=$(rss)
for ((i = 0; i < execs; i++)); do "$rootrun" exec "$name" -- /bin/true </dev/null; done
fds_after=$(fds) rss_after=$(rss)
"$rootrun" stop "$name" 2>/dev/null
running=

echo "soak: $seq_runs sequential runs, $rounds rounds of $conc concurrent, $execs execs ($(uname -r), $(nproc) CPUs)"
printf '%-44s %10s %10s\n' "" "first" "last"
printf '%-44s %10s %10s\n' "peak RSS of a run, sequential (median kB)" "$(median "$work/seq.first")" "$(median "$work/seq.last")"
printf '%-44s %10s %10s\n' "peak RSS of a run, concurrent (median kB)" "$(median "$work/conc.first")" "$(median "$work/conc.last")"
echo "host before: $before"
echo "host after:  $after"
echo "detached rootrun over $execs execs: fds $fds_before -> $fds_after, RSS $rss_before -> $rss_after kB"
grew=0
[[ $before == "$after" ]] || { echo "soak.sh: the host's counts changed" >&2; grew=1; }
(( fds_after == fds_before )) || { echo "soak.sh: the supervisor's descriptors grew" >&2; grew=1; }
(( rss_after <= rss_before + 512 )) || { echo "soak.sh: the supervisor's memory grew" >&2; grew=1; }
exit "$grew"
