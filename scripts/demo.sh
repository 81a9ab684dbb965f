#!/usr/bin/env bash
# The README's demo command: sets up what a fresh machine needs (the ONNX Runtime library from PyPI), builds
# the `patrol` binary in release mode and runs a whole simulated patrol:
#   embedded MQTT broker, 3 simulated drones (ArduPilot and PX4), the ground station with the shipped model,
#   the web console (URL and demo passwords printed), and a summary measured against the planted hazards.
# Arguments go to `patrol demo` (see `patrol demo --help`), e.g.:
#   scripts/demo.sh --headless --drones 2 --speedup 8
# PATROL_DEMO_PROFILE=dev uses the dev build instead (what CI does after the tests: that build already exists
# there, and the release build would take another 10 minutes on 2 cores).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

command -v cargo >/dev/null 2>&1 || { echo "demo: cargo is needed: install Rust from https://rustup.rs" >&2; exit 1; }
bash scripts/setup-onnxruntime.sh
profile="${PATROL_DEMO_PROFILE:-release}"
case "$profile" in
  release) cargo build --release --locked -p ground-station --bin patrol; bin=target/release/patrol ;;
  dev) cargo build --locked -p ground-station --bin patrol; bin=target/debug/patrol ;;
  *) echo "demo: PATROL_DEMO_PROFILE must be release or dev, not '$profile'" >&2; exit 2 ;;
esac
mkdir -p out
exec "$bin" demo --summary out/demo-summary.json "$@"
