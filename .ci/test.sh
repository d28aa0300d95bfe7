#!/usr/bin/env bash
# The project's test command (README: "Run the tests"). Works on a fresh machine:
#   1. installs kernel_bridge with its test extras (editable, so the checkout is tested);
#   2. makes a Docker engine and the test images available (.ci/docker-setup.sh:
#      installs Debian's docker.io, starts dockerd, builds images with debootstrap);
#   3. lints and type-checks the package (ruff, mypy --strict);
#   4. runs the whole pytest suite (extra arguments are passed to pytest).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"

echo "== install kernel_bridge[test]"
"$PYTHON" -m pip install --quiet --disable-pip-version-check -e ".[test]"

echo "== docker engine and test images"
bash .ci/docker-setup.sh

echo "== ruff, mypy"
"$PYTHON" -m ruff check kernel_bridge tests bench
"$PYTHON" -m mypy

echo "== pytest"
exec "$PYTHON" -m pytest "$@"
