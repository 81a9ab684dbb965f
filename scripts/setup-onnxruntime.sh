#!/usr/bin/env bash
# Fetches the official ONNX Runtime shared library for the `inference` crate (ort with `load-dynamic`).
#
# It downloads the `onnxruntime==1.31.1` wheel from PyPI with pip (no other host is needed), checks the wheel's
# sha256 against the pin below, and extracts `onnxruntime/capi/libonnxruntime.so.1.31.1` into
# `<repo>/.onnxruntime/lib/` (gitignored), where the `patrol` binary and `cargo test` find it without any
# environment variable. Idempotent: a second run only checks the file that is already there.
#
# Usage: scripts/setup-onnxruntime.sh            (from anywhere)
#        PATROL_ORT_LIB=/path/to/libonnxruntime.so.1.31.1 patrol detect ...   (to use another copy)
set -euo pipefail

version="1.31.1"
# manylinux_2_28 x86_64 wheel for CPython 3.11 (the library inside does not depend on the Python version).
wheel="onnxruntime-${version}-cp311-cp311-manylinux_2_28_x86_64.whl"
wheel_sha256="5752bd508126ae7c49894d3b9d2e83f0c3d487319246d04c444b393308d7ad7f"
member="onnxruntime/capi/libonnxruntime.so.${version}"

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
dest_dir="$root/.onnxruntime/lib"
dest="$dest_dir/libonnxruntime.so.${version}"
stamp="$dest_dir/.source-sha256"

say() { echo "setup-onnxruntime: $*"; }
die() { echo "setup-onnxruntime: error: $*" >&2; exit 1; }

case "$(uname -s)-$(uname -m)" in
  Linux-x86_64) ;;
  *) die "this script fetches the Linux x86_64 build only; on $(uname -s)-$(uname -m) install ONNX Runtime ${version} yourself and point PATROL_ORT_LIB at the shared library" ;;
esac

if [ -f "$dest" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$wheel_sha256" ]; then
  say "ONNX Runtime ${version} already in place: $dest"
  exit 0
fi

command -v python3 >/dev/null 2>&1 || die "python3 is needed (its pip downloads the wheel from PyPI)"
python3 -m pip --version >/dev/null 2>&1 || die "python3 has no pip; install it (Debian: apt-get install python3-pip)"

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

say "downloading ${wheel} from PyPI"
python3 -m pip download --quiet --disable-pip-version-check "onnxruntime==${version}" \
  --no-deps --only-binary=:all: --python-version 3.11 --implementation cp --abi cp311 \
  --platform manylinux_2_28_x86_64 -d "$tmp" \
  || die "pip could not download onnxruntime==${version}; check that PyPI is reachable"
[ -f "$tmp/$wheel" ] || die "pip did not produce $wheel (got: $(ls "$tmp"))"

got="$(sha256sum "$tmp/$wheel" | cut -d' ' -f1)"
[ "$got" = "$wheel_sha256" ] || die "sha256 mismatch for $wheel: expected $wheel_sha256, got $got (refusing to install it)"
say "sha256 verified"

python3 - "$tmp/$wheel" "$member" "$tmp/lib" <<'PY'
import shutil, sys, zipfile
wheel, member, out = sys.argv[1:]
with zipfile.ZipFile(wheel) as z, z.open(member) as src, open(out, "wb") as dst:
    shutil.copyfileobj(src, dst)
PY

mkdir -p "$dest_dir"
mv "$tmp/lib" "$dest"
chmod 0755 "$dest"
# Plain names next to it, for tools that look for the unversioned library.
ln -sf "libonnxruntime.so.${version}" "$dest_dir/libonnxruntime.so.1"
ln -sf "libonnxruntime.so.${version}" "$dest_dir/libonnxruntime.so"
echo "$wheel_sha256" > "$stamp"
say "installed $dest"
