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

step "Tests (cargo test)"
cargo test --workspace --locked
