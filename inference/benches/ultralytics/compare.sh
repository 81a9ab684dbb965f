#!/usr/bin/env bash
# One run of every inference comparison, back to back on the same machine:
#   1. Ultralytics predict (12 MP JPEG paths, decoded 1080p frames) and bare onnxruntime session.run, in the
#      private AGPL venv (setup.sh);
#   2. our criterion benches (inference/benches/pipeline.rs) on the same model and images;
#   3. folder throughput (photos/s) on the 12 MP photos, plain and tiled, through the same threads as
#      `patrol detect` (inference/benches/throughput.rs: a reader thread decodes the next photo while the
#      DetectorThread runs this one). `patrol detect` prints its own images/s summary on a real folder too.
# Everything is compiled before the first timing, and `uptime` is printed before and after the timed part (the
# load average says how much the numbers can be trusted on a shared machine).
# Usage: inference/benches/ultralytics/compare.sh   (from anywhere; writes target/bench-data/results-*.txt)
#        nice -n 19 inference/benches/ultralytics/compare.sh   (on a machine shared with others)
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../../.." && pwd)"
data="$root/target/bench-data"
cd "$root"
"$here/setup.sh"
scripts/setup-onnxruntime.sh
py="$root/target/ultralytics-venv/bin/python"
"$py" "$here/bench.py" prepare "$data" >/dev/null
cargo bench -p inference --no-run -q

echo "== uptime before: $(uptime)" | tee "$data/results-uptime.txt"

echo "== Ultralytics $(date -u +%FT%TZ)"
"$py" "$here/bench.py" run "$data" | tee "$data/results-ultralytics.json"

echo "== criterion $(date -u +%FT%TZ)"
cargo bench -p inference --bench pipeline -- --noplot 2>&1 | grep -E "^[a-z0-9_/]+ +time:|^[a-z0-9_/]+$|time:" | tee "$data/results-criterion.txt"

echo "== throughput $(date -u +%FT%TZ)"
cargo bench -p inference --bench throughput 2>&1 | grep -E "^throughput/" | tee "$data/results-throughput.txt"

echo "== uptime after: $(uptime)" | tee -a "$data/results-uptime.txt"
