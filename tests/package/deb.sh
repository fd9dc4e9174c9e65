#!/bin/bash
# Builds rootrun's Debian package with cargo-deb:
#
#   tests/package/deb.sh [OUTDIR]      (default OUTDIR: target/debian)
#
# cargo build --release, then the man page and the shell completions are
# generated from the binary (rootrun man, rootrun completions SHELL) into
# target/deb-assets, then `cargo deb --no-build` packs what Cargo.toml's
# [package.metadata.deb] lists. Needs cargo-deb (cargo install cargo-deb).
# Prints the package's path.
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
target=${CARGO_TARGET_DIR:-$repo/target}
out=${1:-$target/debian}
command -v cargo-deb >/dev/null || {
    echo "deb.sh: cargo-deb not found (cargo install cargo-deb)" >&2
    exit 1
}
cd "$repo"
cargo build --release --quiet
assets=$target/deb-assets
mkdir -p "$assets" "$out"
"$target/release/rootrun" man | gzip -9n > "$assets/rootrun.1.gz"
"$target/release/rootrun" completions bash > "$assets/rootrun.bash"
"$target/release/rootrun" completions zsh > "$assets/_rootrun"
"$target/release/rootrun" completions fish > "$assets/rootrun.fish"
# cargo-deb reads the asset paths relative to the package; with another
# CARGO_TARGET_DIR they are copied where Cargo.toml says.
if [[ $target != "$repo/target" ]]; then
    mkdir -p "$repo/target/release" "$repo/target/deb-assets"
    cp "$target/release/rootrun" "$repo/target/release/rootrun"
    cp "$assets"/* "$repo/target/deb-assets/"
fi
cargo deb --no-build --no-strip --output "$out" 2>&1 | tail -1
