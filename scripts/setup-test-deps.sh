#!/usr/bin/env bash
# Installs what the test suite needs that cargo does not: the Python MAVLink peers (pymavlink, MAVSDK) in a
# private virtual environment, Debian's mosquitto, and the ONNX Runtime shared library. Idempotent: a second run
# only checks. Run from anywhere; paths are relative to the repository root.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$root/.venv-test"

if [ ! -x "$venv/bin/python" ]; then
  echo "setup-test-deps: creating $venv"
  python3 -m venv "$venv"
fi
if ! "$venv/bin/python" -c "import pymavlink, mavsdk, onnxruntime, numpy" 2>/dev/null; then
  echo "setup-test-deps: installing Python test peers"
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$root/tests/peers/requirements.txt"
fi

need_apt=()
command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ] || need_apt+=(mosquitto)
# The web console's browser test drives headless Chromium through chromedriver.
[ -x /usr/bin/chromium ] || need_apt+=(chromium)
[ -x /usr/bin/chromedriver ] || need_apt+=(chromium-driver)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "setup-test-deps: installing ${need_apt[*]} from Debian"
  if [ "$(id -u)" -eq 0 ]; then SUDO=""; else SUDO="sudo"; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}"
fi
