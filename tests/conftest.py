"""Shared fixtures: test kernelspecs in a private JUPYTER_PATH.

Kernels are real: jupyter_client starts ``python -m kernel_bridge`` from the specs
installed here, exactly as JupyterLab, papermill and nbval do.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

SAMPLE_FUNCTIONS = REPO / "notebooks" / "demo_functions.py"


def write_kernelspec(
    root: Path,
    name: str,
    flags: list[str],
    *,
    interrupt_mode: str = "signal",
    env: dict[str, str] | None = None,
) -> Path:
    """Write a kernelspec under ``root/kernels/name`` launching this checkout's kernel."""
    spec_dir = root / "kernels" / name
    spec_dir.mkdir(parents=True, exist_ok=True)
    spec = {
        "argv": [sys.executable, "-m", "kernel_bridge", "-f", "{connection_file}", *flags],
        "display_name": f"kernel_bridge test ({name})",
        "language": "python",
        "interrupt_mode": interrupt_mode,
        "env": {"PYTHONPATH": str(REPO), **(env or {})},
        "metadata": {"debugger": False},
    }
    (spec_dir / "kernel.json").write_text(json.dumps(spec, indent=1))
    return spec_dir


LOCAL_FLAGS = [
    "--BridgeKernel.executor=local",
    f"--BridgeKernel.functions={SAMPLE_FUNCTIONS}",
]


def _make_jupyter_path() -> Path:
    root = Path(tempfile.mkdtemp(prefix="kbtest-jupyter-"))
    old = os.environ.get("JUPYTER_PATH")
    os.environ["JUPYTER_PATH"] = os.pathsep.join([str(root), *([old] if old else [])])
    write_kernelspec(root, "kbtest-local", LOCAL_FLAGS)
    write_kernelspec(root, "kbtest-local-msg", LOCAL_FLAGS, interrupt_mode="message")
    write_kernelspec(root, "kbtest-bad", ["--BridgeKernel.executor=nope"])
    broken = root / "broken_functions.py"
    broken.write_text("def half(x):\n    return x / 2\n\ndef oops(:\n    pass\n")
    write_kernelspec(
        root,
        "kbtest-broken-functions",
        [*LOCAL_FLAGS, f"--BridgeKernel.functions={broken}"],
    )
    return root


# Set at import so that unittest-style classes (jupyter_kernel_test) see it in setUpClass.
JUPYTER_ROOT = _make_jupyter_path()


@pytest.fixture(scope="session")
def jupyter_path() -> Path:
    """The private Jupyter data dir holding the test kernelspecs (first on JUPYTER_PATH)."""
    return JUPYTER_ROOT
