#!/usr/bin/env bash
# Make Debian's chromium available for the browser tests (tests/browser/), idempotently.
# Playwright drives it through executable_path=/usr/bin/chromium: Playwright's own
# browser downloads are neither possible nor needed here.
set -euo pipefail
if [ -x /usr/bin/chromium ]; then
    exit 0
fi
SUDO=""
if [ "$(id -u)" != 0 ]; then
    command -v sudo >/dev/null 2>&1 && SUDO="sudo -n" || true
fi
export DEBIAN_FRONTEND=noninteractive
echo "[browser-setup] installing chromium" >&2
if ! $SUDO apt-get -o DPkg::Lock::Timeout=600 install -y --no-install-recommends chromium; then
    $SUDO apt-get -o DPkg::Lock::Timeout=600 update
    $SUDO apt-get -o DPkg::Lock::Timeout=600 install -y --no-install-recommends chromium
fi
[ -x /usr/bin/chromium ] || { echo "[browser-setup] ERROR: /usr/bin/chromium missing after install" >&2; exit 1; }
