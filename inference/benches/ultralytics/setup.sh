#!/usr/bin/env bash
# Creates the Ultralytics comparator venv for the inference benches in <repo>/target/ultralytics-venv (ignored by
# git, like every build output). Ultralytics (AGPL-3.0) and PyTorch are installed there only: the project never
# depends on them. Idempotent. About 6 GB on disk, because PyTorch from PyPI brings its CUDA libraries.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../../.." && pwd)"
venv="$root/target/ultralytics-venv"
if [ ! -x "$venv/bin/python" ]; then
  echo "ultralytics bench: creating $venv"
  python3 -m venv "$venv"
fi
if ! "$venv/bin/python" -c "import ultralytics, onnxruntime, onnx" 2>/dev/null; then
  echo "ultralytics bench: installing $here/requirements.txt"
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$here/requirements.txt"
fi
echo "ultralytics bench: ready ($venv/bin/python)"
