#!/usr/bin/env bash
# The project's test command (README: "Run the tests"). Works on a fresh machine:
#   1. makes (or reuses) a virtualenv inside the checkout, .venv/ (ignored by git), and
#      installs kernel_bridge there, editable, with its test extras: nothing installed
#      on the machine's own Python can hide a missing dependency;
#   2. makes a Docker engine and the test images available (.ci/docker-setup.sh:
#      installs Debian's docker.io, starts dockerd, builds images with debootstrap);
#   2b. installs Debian's chromium for the browser tests (.ci/browser-setup.sh);
#   3. lints and type-checks the package (ruff, mypy --strict);
#      (the loopback registry and the TLS Docker engine some tests need are installed and
#      started by the tests themselves, through .ci/registry-and-engine.sh, and stopped
#      when the session ends)
#   4. runs the whole pytest suite (extra arguments are passed to pytest).
# Environment: PYTHON, the interpreter that creates the venv (default python3, 3.11+);
# KB_VENV, the venv's folder (default .venv in the checkout).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
VENV="${KB_VENV:-$PWD/.venv}"

echo "== virtualenv $VENV"
if [ ! -x "$VENV/bin/python" ]; then
    "$PYTHON" -m venv "$VENV"
fi
VPY="$VENV/bin/python"
# Tools the tests start as commands (jupyter, papermill, kernel-bridge) come from the venv.
export PATH="$VENV/bin:$PATH"
export VIRTUAL_ENV="$VENV"
unset PYTHONPATH PYTHONHOME

echo "== install kernel_bridge[test] into the venv"
"$VPY" -m pip install --quiet --disable-pip-version-check -e ".[test]"

echo "== docker engine and test images"
bash .ci/docker-setup.sh

echo "== chromium for the browser tests"
bash .ci/browser-setup.sh

echo "== ruff, mypy"
"$VPY" -m ruff check kernel_bridge tests bench
"$VPY" -m mypy

echo "== pytest"
exec "$VPY" -m pytest "$@"
