#!/usr/bin/env bash
# A bounded libFuzzer run of every fuzz target in fuzz/ (cargo fuzz), as CI
# runs it: SECONDS each (default 45), one process, a per-input time limit and
# a memory limit, seeds rebuilt from the fixtures first (fuzz/seeds.sh).
#
#   tests/fuzz.sh [SECONDS] [TARGET...]
#
# Any crash, timeout or out-of-memory input fails the run; libFuzzer leaves it
# in fuzz/artifacts/TARGET/ (reproduce: cargo +nightly fuzz run TARGET FILE).
# libFuzzer runs in this one process (no -jobs: that would fork and log
# to fuzz-N.log). Needs cargo-fuzz (installed here with `cargo install cargo-fuzz` when
# missing) and a nightly toolchain for its sanitizer flags. Without nightly
# it builds with the stable toolchain and RUSTC_BOOTSTRAP=1, no sanitizer
# (`-s none`): coverage-guided fuzzing still runs, but without
# AddressSanitizer. FUZZ_TOOLCHAIN=stable forces that (the default toolchain).
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-45}
shift || true
targets=("$@")
if [ "${#targets[@]}" -eq 0 ]; then
    targets=(image_probe unpack_check archive_check elf_identify binfmt_entry metadata_yaml)
fi

if ! cargo fuzz --help >/dev/null 2>&1; then
    echo "fuzz.sh: installing cargo-fuzz (cargo install cargo-fuzz --locked)"
    cargo install cargo-fuzz --locked
fi
toolchain=${FUZZ_TOOLCHAIN:-}
if [ -z "$toolchain" ]; then
    if rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
        toolchain=nightly
    else
        toolchain=stable
    fi
fi
build_flags=(-O --debug-assertions)
# The default toolchain unless nightly is there (a fresh machine's one
# toolchain need not be called "stable").
toolchain_arg=()
if [ "$toolchain" = nightly ]; then
    toolchain_arg=(+nightly)
    echo "fuzz.sh: nightly toolchain: libFuzzer with AddressSanitizer"
else
    # cargo-fuzz passes -Z flags; RUSTC_BOOTSTRAP lets stable rustc take them.
    if [ -n "${FUZZ_TOOLCHAIN:-}" ]; then
        why="FUZZ_TOOLCHAIN=$FUZZ_TOOLCHAIN"
    else
        why="no nightly toolchain on this machine"
    fi
    echo "fuzz.sh: $why: libFuzzer on the default toolchain" \
        "(RUSTC_BOOTSTRAP=1), without AddressSanitizer"
    export RUSTC_BOOTSTRAP=1
    build_flags+=(-s none --target-dir "$PWD/fuzz/target-stable")
fi

fuzz/seeds.sh
failed=()
for target in "${targets[@]}"; do
    echo "fuzz.sh: $target: ${seconds}s"
    log=fuzz/artifacts/$target.log
    mkdir -p "fuzz/artifacts/$target"
    # -timeout: an input that takes longer is a hang; -rss_limit_mb and
    # -malloc_limit_mb: a memory blow-up is a finding, not a dead machine.
    # Image inputs are kept to 64 KiB: the seeds are 2-7 KiB.
    if cargo "${toolchain_arg[@]}" fuzz run "${build_flags[@]}" "$target" -- \
        -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
        -malloc_limit_mb=1024 -max_len=65536 \
        -print_final_stats=1 >"$log" 2>&1; then
        execs=$(awk '/stat::number_of_executed_units/ { print $2 }' "$log")
        speed=$(awk '/stat::average_exec_per_sec/ { print $2 }' "$log")
        echo "fuzz.sh: $target: ok, ${execs:-?} inputs, ${speed:-?}/s"
    else
        echo "fuzz.sh: $target: FAILED (last lines of $log):" >&2
        tail -n 40 "$log" >&2
        failed+=("$target")
    fi
done
if [ "${#failed[@]}" -gt 0 ]; then
    echo "fuzz.sh: findings in: ${failed[*]} (inputs in fuzz/artifacts/)" >&2
    exit 1
fi
echo "fuzz.sh: all ${#targets[@]} targets ran ${seconds}s each without a finding"
