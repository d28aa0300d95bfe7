"""The wheel ships the kernel-bridge-local spec (hatch_build.py + shared-data) and the logos."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from kernel_bridge.kernelspecs import LOGO_FILES, RESOURCES_DIR

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
         "--no-index", str(REPO), "-w", str(out)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (found,) = out.glob("kernel_bridge-*.whl")
    return found


@pytest.mark.slow
def test_wheel_contains_the_local_kernelspec(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
        (data,) = {n.split("/")[0] for n in names if n.split("/")[0].endswith(".data")}
        base = f"{data}/data/share/jupyter/kernels/kernel-bridge-local/"
        spec = json.loads(zf.read(base + "kernel.json"))
        for logo in LOGO_FILES:
            assert zf.read(base + logo) == (RESOURCES_DIR / logo).read_bytes()
            assert zf.read(f"kernel_bridge/resources/{logo}") == (RESOURCES_DIR / logo).read_bytes()
        assert "kernel_bridge/cli/__init__.py" in names
        assert "kernel_bridge/kernelspecs.py" in names
    assert spec["argv"] == [
        "python", "-m", "kernel_bridge", "-f", "{connection_file}", "--BridgeKernel.executor=local",
    ]  # fmt: skip
    assert spec["display_name"] == "Python (kernel_bridge: local)"
    assert spec["metadata"]["kernel_bridge"] == {"executor": "local"}
    # the committed template in kernelspec/ is the same spec
    assert json.loads((REPO / "kernelspec" / "kernel.json").read_text()) == spec


@pytest.mark.slow
def test_wheel_declares_the_console_script(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as zf:
        (entry_points,) = [n for n in zf.namelist() if n.endswith(".dist-info/entry_points.txt")]
        text = zf.read(entry_points).decode()
    assert "kernel-bridge = kernel_bridge.cli:main" in text
