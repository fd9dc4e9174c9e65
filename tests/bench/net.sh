#!/bin/bash
# Network benchmark: what each --net mode adds to rootrun's start-up.
#
#   tests/bench/net.sh [-n N]        (as root; default N=10)
#
# Builds rootrun (cargo build --release) and a BusyBox amd64 image
# (tests/fixtures/build-image.sh) in a temporary directory, then times N runs
# of `rootrun -q --net MODE IMG -- /bin/true` for:
#
#   none         loopback only (the default; the reference)
#   host         the host's network namespace
#   bridge       a veth into a bridge the script made (rrbench0, no address)
#   nat first    --net nat with nobody else on it: every run sets the whole
#                network up (bridge, nftables, ip_forward, dnsmasq) and takes
#                it down again
#   nat joined   --net nat while another rootrun holds the network (a
#                background `--net nat ... sleep`): the run only joins it
#   nat lease    --net nat first, the guest taking a DHCP lease (udhcpc) too
#
# and prints each median, and its difference from none. Wall time from
# bash's $EPOCHREALTIME. Any run exiting non-zero aborts the script. On exit
# the bridge and the background rootrun go, and the script checks that
# nothing of the NAT network is left. Nothing is sent anywhere but between
# the guest and rootrun's bridge (DHCP).
set -euo pipefail
export LC_ALL=C

runs=10
while getopts "n:h" opt; do
    case $opt in
        n) runs=$OPTARG ;;
        *) echo "usage: $0 [-n N]" >&2; exit 2 ;;
    esac
done
[[ $runs =~ ^[1-9][0-9]*$ ]] || { echo "net.sh: -n wants a positive integer" >&2; exit 2; }
[ "$(id -u)" -eq 0 ] || { echo "net.sh: run as root" >&2; exit 1; }
if [ -e /run/rootrun/.net ] || ip link show rootrun0 >/dev/null 2>&1; then
    echo "net.sh: a rootrun --net nat is running; run the benchmark alone" >&2
    exit 1
fi

repo=$(cd "$(dirname "$0")/../.." && pwd)
work=$(mktemp -d)
holder=
cleanup() {
    [ -n "$holder" ] && kill "$holder" 2>/dev/null && wait "$holder" 2>/dev/null || true
    ip link delete rrbench0 2>/dev/null || true
    rm -rf "$work"
    if [ -e /run/rootrun/.net ] || ip link show rootrun0 >/dev/null 2>&1; then
        echo "net.sh: the NAT network was left behind" >&2
        exit 1
    fi
}
trap cleanup EXIT

(cd "$repo" && cargo build --release -q)
rootrun=$repo/target/release/rootrun
"$repo/tests/fixtures/build-image.sh" amd64 "$work/bb.img" >/dev/null
ip link add name rrbench0 type bridge
ip link set dev rrbench0 up

median() { sort -n | awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }
time_runs() { # label, rootrun arguments...
    local label=$1; shift
    local times=() start
    for _ in $(seq "$runs"); do
        start=$EPOCHREALTIME
        "$rootrun" -q "$@" >/dev/null
        times+=("$(awk -v a="$start" -v b="$EPOCHREALTIME" 'BEGIN { print (b - a) * 1000 }')")
    done
    printf '%s\n' "${times[@]}" | median > "$work/$label"
}
lease='busybox udhcpc -n -q -i eth0 -s /bin/true >/dev/null 2>&1'

time_runs none --net none "$work/bb.img" -- /bin/true
time_runs host --net host "$work/bb.img" -- /bin/true
time_runs bridge --net bridge=rrbench0 "$work/bb.img" -- /bin/true
time_runs nat-first --net nat "$work/bb.img" -- /bin/true
time_runs nat-lease --net nat "$work/bb.img" -- /bin/sh -c "$lease"
"$rootrun" -q --net nat "$work/bb.img" -- /bin/sleep 3600 </dev/null >/dev/null 2>&1 &
holder=$!
while [ ! -d /run/rootrun/.net/users ] || [ -z "$(ls /run/rootrun/.net/users)" ]; do sleep 0.1; done
time_runs nat-joined --net nat "$work/bb.img" -- /bin/true
kill "$holder"; wait "$holder" 2>/dev/null || true; holder=

base=$(cat "$work/none")
printf '%-12s %10s %10s   (median of %d runs)\n' mode "ms" "+ms" "$runs"
for label in none host bridge nat-first nat-joined nat-lease; do
    value=$(cat "$work/$label")
    printf '%-12s %10.1f %+10.1f\n' "$label" "$value" "$(awk -v a="$base" -v b="$value" 'BEGIN { print b - a }')"
done
