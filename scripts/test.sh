#!/usr/bin/env bash
# The README's test command: installs what the tests need where it is missing (Python MAVLink peers, Debian's
# mosquitto, the ONNX Runtime library, cargo-deny), then runs the formatting, lint and dependency-policy gates and
# every test in the workspace.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

step() { printf '\n== %s ==\n' "$*"; }

# cargo-deny (the licence and source policy in deny.toml) builds from crates.io where it is missing, in the
# background while the network-bound set-up below runs.
deny_version="0.20.2"
deny_log="$(mktemp)"
deny_install=""
if ! cargo deny --version 2>/dev/null | grep -q "$deny_version"; then
  cargo install cargo-deny --locked --version "$deny_version" >"$deny_log" 2>&1 &
  deny_install=$!
fi

step "Test dependencies"
bash scripts/setup-test-deps.sh
if [ -f scripts/setup-onnxruntime.sh ]; then
  bash scripts/setup-onnxruntime.sh
fi

step "Formatting (cargo fmt --check)"
cargo fmt --all --check

step "Lints (cargo clippy -D warnings)"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "Dependency licences and sources (cargo deny, deny.toml)"
if [ -n "$deny_install" ] && ! wait "$deny_install"; then
  cat "$deny_log"
  echo "test.sh: installing cargo-deny failed (above); install it with: cargo install cargo-deny --locked" >&2
  exit 1
fi
rm -f "$deny_log"
cargo deny --locked check licenses bans sources

# cargo-nextest (on this project's CI machines; `cargo install cargo-nextest --locked` elsewhere) runs all test
# binaries from one pool, longest first (.config/nextest.toml); the doc tests run with cargo test. Without it,
# cargo test runs everything, one binary after another.
if cargo nextest --version >/dev/null 2>&1; then
  step "Tests (cargo nextest)"
  cargo nextest run --workspace --locked
  step "Doc tests (cargo test --doc)"
  cargo test --workspace --locked --doc
else
  step "Tests (cargo test)"
  cargo test --workspace --locked
fi
