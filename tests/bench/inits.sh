#!/bin/bash
# Boot-to-login and stop times of stock Debian 12 roots (sysvinit, runit,
# OpenRC, openrc-init, and systemd under emulation): rootrun in the
# foreground, rootrun -d + rootrun stop, and hand-made LXC on the same root.
#
#   tests/bench/inits.sh [-n N]     (as root; default N=3 runs of each, 1 under emulation;
#                                    ROOTRUN=PATH times that binary instead of a release build;
#                                    ONLY=REGEX times the flavours whose label matches;
#                                    EMULATED_RUNS=N runs of each arm64 flavour)
#
# The roots are the test suite's fixtures (tests/fixtures/build-debian-rootfs.sh,
# build-debian-foreign-rootfs.sh), taken from its cache
# (/var/cache/rootrun-tests/rootfs, or $ROOTRUN_TEST_CACHE/rootfs; the newest
# sealed entry of each): run `cargo test --test e2e -- inits` first to build
# them. Each flavour present is timed; arm64 ones run under QEMU user
# emulation.
#
#   rootrun   target/release/rootrun -q --rootfs TREE [--init ...], console on
#             a pipe; boot = start until 'login:' is on the console; stop =
#             SIGTERM to rootrun until it exits (rootrun asks init to halt
#             through its own path: runlevel 0 request for sysvinit, SIGPWR
#             for runit and openrc-init, SIGRTMIN+4 shifted for the
#             emulator for systemd).
#   rootrun -d  the same boot detached: `rootrun -d --name N` until 'login:'
#             is in `rootrun logs N`; stop = `rootrun stop N` until it
#             returns (everything removed).
#   lxc       lxc-start -d -n NAME -P LXCPATH with a configuration this
#             script writes to LXCPATH/NAME/config: rootrun's liblxc
#             configuration for the root (from --dry-run), the same overlay
#             (tree bound read-only under a tmpfs upper, made by the script in
#             a private mount namespace), the console logged to a file
#             (lxc.console.logfile), and /dev/tty1 a symlink to the console
#             made by an autodev hook (where the image's getty runs);
#             boot = lxc-start until 'login:' is in the log; stop = the
#             usual LXC way for the init: `lxc-attach -- telinit 0` for
#             sysvinit (lxc-stop's SIGPWR runs a powerfail script Debian no
#             longer ships), `lxc-stop` (lxc.signal.halt = SIGPWR) for runit
#             and openrc-init, until the container is STOPPED.
#
# openrc-init (Debian's openrc package ships /sbin/openrc-init) needs a
# getty service enabled: both runs get agetty.tty1 in the default runlevel
# in their writable layer (rootrun's --persist, LXC's overlay upper).
#
# Any failed or timed-out run aborts with a non-zero status. Mounts live in
# private mount namespaces only; on exit the script checks that no mount and
# no container of its own is left.
set -euo pipefail
export LC_ALL=C

runs=3
usage() { echo "usage: $0 [-n N]" >&2; exit 2; }
while getopts "n:h" opt; do
    case $opt in
        n) runs=$OPTARG ;;
        *) usage ;;
    esac
done
[[ $runs =~ ^[1-9][0-9]*$ ]] || { echo "inits.sh: -n wants a positive integer" >&2; exit 2; }
[[ $(id -u) == 0 ]] || { echo "inits.sh: must run as root" >&2; exit 1; }
for tool in lxc-start lxc-stop lxc-attach lxc-wait unshare cargo; do
    command -v "$tool" >/dev/null || { echo "inits.sh: $tool not found" >&2; exit 1; }
done

repo=$(cd "$(dirname "$0")/../.." && pwd)
rootrun=${ROOTRUN:-${CARGO_TARGET_DIR:-$repo/target}/release/rootrun}
cache=${ROOTRUN_TEST_CACHE:-/var/cache/rootrun-tests}/rootfs
work=$(mktemp -d /tmp/rootrun-bench-inits.XXXXXX)
name=rootrun-bench-inits-$$
boot_limit=300
stop_limit=60

cleanup() {
    local status=$? leaks=0
    set +e
    if grep -qF "$work" /proc/self/mountinfo; then
        echo "inits.sh: LEAK: mount left under $work" >&2; leaks=1
    fi
    if compgen -G "/sys/fs/cgroup/*/lxc.*.$name-*" >/dev/null ||
        compgen -G "/sys/fs/cgroup/lxc.*.$name-*" >/dev/null; then
        echo "inits.sh: LEAK: cgroups of $name left" >&2; leaks=1
    fi
    rm -rf --one-file-system "$work"
    if (( status == 0 && leaks )); then status=1; fi
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# The newest sealed cache entry named PREFIX-<16 hex digits>.
newest() {
    local found
    found=$(ls -dt "$cache/$1"-???????????????? 2>/dev/null | while read -r d; do
        [[ -e $d.seal ]] && { echo "$d"; break; }
    done)
    echo "$found"
}

# label|cache prefix|rootrun options|lxc init|how LXC stops it
flavours=(
    "sysvinit|debian-sysvinit-core||/sbin/init|telinit"
    "runit|debian-runit-init||/sbin/init|lxc-stop"
    "openrc (sysvinit)|debian-sysvinit-core--openrc||/sbin/init|telinit"
    "openrc-init|debian-sysvinit-core--openrc|--init /sbin/openrc-init|/sbin/openrc-init|lxc-stop"
    "sysvinit arm64|debian-arm64-sysvinit-core||/sbin/init|telinit"
    "runit arm64|debian-arm64-runit-init||/sbin/init|lxc-stop"
    "openrc (sysvinit) arm64|debian-arm64-sysvinit-core--openrc||/sbin/init|telinit"
    "openrc-init arm64|debian-arm64-sysvinit-core--openrc|--init /sbin/openrc-init|/sbin/openrc-init|lxc-stop"
    "systemd arm64|systemd-arm64||/sbin/init|lxc-stop"
)

if [[ -z ${ROOTRUN:-} ]]; then
    echo "building rootrun (cargo build --release) ..." >&2
    (cd "$repo" && cargo build --release --quiet)
fi

# The writable layer's getty service for openrc-init, in DIR.
enable_agetty() {
    mkdir -p "$1/etc/init.d" "$1/etc/runlevels/default"
    ln -s agetty "$1/etc/init.d/agetty.tty1"
    ln -s /etc/init.d/agetty.tty1 "$1/etc/runlevels/default/agetty.tty1"
}

# Waits until FILE contains 'login:'; fails after boot_limit seconds or
# when process PID (if given) is gone.
wait_login() { # FILE [PID]
    local deadline=$((SECONDS + boot_limit))
    until grep -q 'login:' "$1" 2>/dev/null; do
        if (( SECONDS > deadline )); then echo "no login: within ${boot_limit}s" >&2; return 1; fi
        if [[ -n ${2:-} ]] && ! kill -0 "$2" 2>/dev/null; then echo "ended before login:" >&2; return 1; fi
        sleep 0.02
    done
}

# One rootrun boot and stop of TREE; appends "boot_us stop_us" to OUT.
time_rootrun() { # OUT TREE LABEL OPTIONS...
    local out=$1 tree=$2 label=$3 t0 t1 t2 pid rc=0; shift 3
    local log=$work/rootrun.out persist=$work/persist
    local extra=()
    if [[ " $* " == *" /sbin/openrc-init "* ]]; then
        rm -rf "$persist"; enable_agetty "$persist/upper"
        extra=(--persist "$persist")
    fi
    : > "$log"
    # stdin a pipe that stays open (held by a sleep of ours): pipe mode,
    # nothing typed.
    local keep holder
    exec {keep}< <(exec sleep $((boot_limit + stop_limit)))
    holder=$!
    t0=${EPOCHREALTIME/./}
    "$rootrun" -q --stop-timeout "$stop_limit" "$@" "${extra[@]}" --rootfs "$tree" \
        <&"$keep" > "$log" 2>&1 &
    pid=$!
    exec {keep}<&-
    wait_login "$log" "$pid" || { kill -KILL "$pid" "$holder"; tail -20 "$log" >&2; return 1; }
    t1=${EPOCHREALTIME/./}
    kill -TERM "$pid"
    wait "$pid" || rc=$?
    t2=${EPOCHREALTIME/./}
    kill "$holder" 2>/dev/null || true
    if (( rc != 143 )); then
        echo "inits.sh: rootrun $label: exit $rc after SIGTERM (want 143)" >&2; tail -20 "$log" >&2; return 1
    fi
    echo "$((t1 - t0)) $((t2 - t1))" >> "$out"
}

# One detached boot and `rootrun stop` of TREE; appends "boot_us stop_us"
# to OUT.
time_detached() { # OUT TREE LABEL OPTIONS...
    local out=$1 tree=$2 label=$3 t0 t1 t2 deadline; shift 3
    local cname=bench-inits-$$-$RANDOM persist=$work/persist-d
    local extra=()
    if [[ " $* " == *" /sbin/openrc-init "* ]]; then
        rm -rf "$persist"; enable_agetty "$persist/upper"
        extra=(--persist "$persist")
    fi
    t0=${EPOCHREALTIME/./}
    "$rootrun" -q -d --name "$cname" --stop-timeout "$stop_limit" "$@" "${extra[@]}" \
        --rootfs "$tree" >/dev/null
    deadline=$((SECONDS + boot_limit))
    until "$rootrun" logs "$cname" 2>/dev/null | grep -q 'login:'; do
        if (( SECONDS > deadline )); then
            echo "inits.sh: rootrun -d $label: no login: within ${boot_limit}s" >&2
            "$rootrun" stop --kill "$cname" >/dev/null 2>&1; return 1
        fi
        sleep 0.02
    done
    t1=${EPOCHREALTIME/./}
    "$rootrun" stop "$cname" 2>/dev/null
    t2=${EPOCHREALTIME/./}
    echo "$((t1 - t0)) $((t2 - t1))" >> "$out"
}

# Hand-made LXC: the part that runs in a private mount namespace.
lxc_inner=$(cat <<'INNER'
set -euo pipefail
export LC_ALL=C
out=$1 tree=$2 init=$3 stop=$4 conf=$5
# A name of its own per run: liblxc removes a stopped container's cgroups
# asynchronously, and a start under the same name right after can abort.
name=$name-$6
mnt=$work/mnt lxcpath=$work/mnt/lxc
mkdir -p "$mnt" /run/lxc
mount -t tmpfs -o nodev,nosuid tmpfs /run/lxc
mount -t tmpfs -o nodev,nosuid tmpfs "$mnt"
mkdir -p "$mnt/lower" "$mnt/upper" "$mnt/work" "$mnt/rootfs" "$mnt/rootfs-mount" "$lxcpath/$name"
mount --bind -o ro "$tree" "$mnt/lower"
mount -o remount,bind,ro,nosuid,nodev "$mnt/lower"
if [[ $init == /sbin/openrc-init ]]; then
    mkdir -p "$mnt/upper/etc/init.d" "$mnt/upper/etc/runlevels/default"
    ln -s agetty "$mnt/upper/etc/init.d/agetty.tty1"
    ln -s /etc/init.d/agetty.tty1 "$mnt/upper/etc/runlevels/default/agetty.tty1"
fi
mount -t overlay -o "nodev,lowerdir=$mnt/lower,upperdir=$mnt/upper,workdir=$mnt/work" \
    overlay "$mnt/rootfs"
console=$mnt/console.log
: > "$console"
{
    cat "$conf"
    echo "lxc.rootfs.path = dir:$mnt/rootfs"
    echo "lxc.rootfs.mount = $mnt/rootfs-mount"
    echo "lxc.init.cmd = $init"
    echo "lxc.console.logfile = $console"
    echo "lxc.log.file = $work/lxc.log"
    echo "lxc.hook.autodev = sh -c 'ln -s console \"\$LXC_ROOTFS_MOUNT/dev/tty1\"'"
} > "$lxcpath/$name/config"
t0=${EPOCHREALTIME/./}
: > "$work/lxc.log"
lxc-start -d -n "$name" -P "$lxcpath" || { tail -20 "$work/lxc.log" >&2; exit 1; }
deadline=$((SECONDS + boot_limit))
until grep -q 'login:' "$console"; do
    if (( SECONDS > deadline )); then
        echo "lxc: no login: within ${boot_limit}s" >&2; tail -20 "$console" >&2
        lxc-stop -k -n "$name" -P "$lxcpath"; exit 1
    fi
    sleep 0.02
done
t1=${EPOCHREALTIME/./}
case $stop in
telinit)
    lxc-attach -n "$name" -P "$lxcpath" -- /sbin/telinit 0
    lxc-wait -n "$name" -P "$lxcpath" -s STOPPED -t "$stop_limit" ;;
lxc-stop)
    lxc-stop -n "$name" -P "$lxcpath" -t "$stop_limit" ;;
esac
t2=${EPOCHREALTIME/./}
if lxc-info -n "$name" -P "$lxcpath" -s 2>/dev/null | grep -q RUNNING; then
    echo "lxc: did not stop within ${stop_limit}s" >&2
    lxc-stop -k -n "$name" -P "$lxcpath"; exit 1
fi
echo "$((t1 - t0)) $((t2 - t1))" >> "$out"
umount "$mnt/rootfs" "$mnt/lower"
INNER
)
export work name boot_limit stop_limit

# rootrun's liblxc configuration for TREE without what the script sets.
lxc_conf() { # TREE OUT
    "$rootrun" --dry-run --rootfs "$1" | grep -v '^#' |
        grep -Ev '^lxc\.(rootfs\.|log\.file|init\.cmd|console\.path|mount\.entry = <pty|seccomp\.profile)' \
        > "$2"
    # The seccomp policy as rootrun writes it.
    "$rootrun" --dry-run --rootfs "$1" | sed -n 's/^#| //p' > "$2.seccomp"
    echo "lxc.seccomp.profile = $2.seccomp" >> "$2"
}

# Median of column COL (1 boot, 2 stop) of FILE, in seconds.
median() {
    awk -v c="$2" '{ print $c }' "$1" | sort -n | awk '{ v[NR] = $1 } END {
        m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
        printf "%.2f\n", m / 1e6 }'
}

results=()
for entry in "${flavours[@]}"; do
    IFS='|' read -r label prefix options init stop <<< "$entry"
    [[ $label =~ ${ONLY:-.} ]] || continue
    tree=$(newest "$prefix")
    if [[ -z $tree ]]; then
        echo "inits.sh: $label: no $cache/$prefix-* (run cargo test --test e2e -- inits); skipped" >&2
        continue
    fi
    n=$runs
    [[ $label == *arm64* ]] && n=${EMULATED_RUNS:-1}
    echo "timing $label ($n run(s) each): $tree" >&2
    rr=$work/rr.$RANDOM rd=$work/rd.$RANDOM lx=$work/lx.$RANDOM conf=$work/lxc.conf
    lxc_conf "$tree" "$conf"
    for ((i = 1; i <= n; i++)); do
        # shellcheck disable=SC2086 # options are words
        time_rootrun "$rr" "$tree" "$label" $options
        # shellcheck disable=SC2086 # options are words
        time_detached "$rd" "$tree" "$label" $options
        runs_made=$((${runs_made:-0} + 1))
        unshare --mount --propagation private bash -c "$lxc_inner" inner \
            "$lx" "$tree" "$init" "$stop" "$conf" "$runs_made"
    done
    results+=("$label|$n|$(median "$rr" 1)|$(median "$rd" 1)|$(median "$lx" 1)|$(median "$rr" 2)|$(median "$rd" 2)|$(median "$lx" 2)")
done

echo
echo "boot to 'login:' and stop, Debian 12 roots, median of N runs ($(uname -r), $(nproc) CPUs)"
echo "(fg: rootrun in the foreground; -d: rootrun -d and rootrun stop; ratios against lxc)"
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2fx", (b > 0 ? a / b : 0) }'; }
row() { printf '%-24s %2s | %7s %7s %7s %6s %6s | %7s %7s %7s %6s %6s\n' "$@"; }
row "" "N" "boot s" "" "" "" "" "stop s" "" "" "" ""
row "init" "" "fg" "-d" "lxc" "fg" "-d" "fg" "-d" "lxc" "fg" "-d"
for r in "${results[@]}"; do
    IFS='|' read -r label n rb db lb rs ds ls <<< "$r"
    row "$label" "$n" "$rb" "$db" "$lb" "$(ratio "$rb" "$lb")" "$(ratio "$db" "$lb")" \
        "$rs" "$ds" "$ls" "$(ratio "$rs" "$ls")" "$(ratio "$ds" "$ls")"
done
