#!/usr/bin/env bash
# One run of every inference comparison, back to back on the same machine:
#   1. Ultralytics predict (12 MP JPEG paths, decoded 1080p frames) and bare onnxruntime session.run, in the
#      private AGPL venv (setup.sh);
#   2. our criterion benches (inference/benches/pipeline.rs) on the same model and images;
#   3. `patrol detect` throughput on the folder of 12 MP photos, plain and tiled.
# Usage: inference/benches/ultralytics/compare.sh   (from anywhere; writes target/bench-data/results-*.txt)
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../../.." && pwd)"
data="$root/target/bench-data"
cd "$root"
"$here/setup.sh"
scripts/setup-onnxruntime.sh
py="$root/target/ultralytics-venv/bin/python"
"$py" "$here/bench.py" prepare "$data" >/dev/null

echo "== Ultralytics $(date -u +%FT%TZ)"
"$py" "$here/bench.py" run "$data" | tee "$data/results-ultralytics.json"

echo "== criterion"
cargo bench -p inference --bench pipeline -- --noplot 2>&1 | grep -E "^[a-z0-9_/]+ +time:|^[a-z0-9_/]+$|time:" | tee "$data/results-criterion.txt"

echo "== patrol detect"
cargo build --release -q -p ground-station --bin patrol
patrol="$root/target/release/patrol"
for mode in plain tiled; do
  extra=()
  [ "$mode" = tiled ] && extra=(--tile)
  start=$(date +%s.%N)
  "$patrol" detect --model "$data/yolov8n.onnx" "${extra[@]}" -o /dev/null "$data/photos" 2>"$data/detect-$mode.log" || true
  end=$(date +%s.%N)
  n=$(ls "$data/photos" | wc -l)
  echo "patrol detect ($mode): $n photos in $(echo "$end - $start" | bc) s" | tee -a "$data/results-detect.txt"
  tail -n 3 "$data/detect-$mode.log"
done
