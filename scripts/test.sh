#!/usr/bin/env bash
# The README's test command: installs what the tests need where it is missing (Python MAVLink peers, Debian's
# mosquitto, the ONNX Runtime library), then runs the formatting and lint gates and every test in the workspace.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

step() { printf '\n== %s ==\n' "$*"; }

step "Test dependencies"
bash scripts/setup-test-deps.sh
if [ -f scripts/setup-onnxruntime.sh ]; then
  bash scripts/setup-onnxruntime.sh
fi

step "Formatting (cargo fmt --check)"
cargo fmt --all --check

step "Lints (cargo clippy -D warnings)"
cargo clippy --workspace --all-targets --locked -- -D warnings

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
