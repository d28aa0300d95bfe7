"""The shipped notebooks are regression tests: papermill and nbval run them through real kernels."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from _support.specs import ACA_LOCAL, DOCKER_RICH, LOCAL, NOTEBOOK_SPECS, BridgeSpec

REPO = Path(__file__).resolve().parents[2]
NOTEBOOKS = REPO / "notebooks"

SPECS = NOTEBOOK_SPECS


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO)}


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.name)
def test_papermill_parameters_take_effect(spec: BridgeSpec, tmp_path: Path) -> None:
    name = spec.ready()
    out = tmp_path / "out.ipynb"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "papermill",
            "-k",
            name,
            "-p",
            "name",
            "bridge",
            "-p",
            "repeat",
            "3",
            str(NOTEBOOKS / "parameters.ipynb"),
            str(out),
        ],
        capture_output=True,
        text=True,
        env=_env(),
        timeout=300,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    nb = json.loads(out.read_text())
    injected = [c for c in nb["cells"] if "injected-parameters" in c["metadata"].get("tags", [])]
    assert injected and 'name = "bridge"' in "".join(injected[0]["source"])
    text = "".join(
        "".join(o.get("text", ""))
        for c in nb["cells"]
        if c["cell_type"] == "code"
        for o in c.get("outputs", [])
    )
    assert text.count("hello, bridge") == 3
    results = [
        "".join(o["data"]["text/plain"])
        for c in nb["cells"]
        if c["cell_type"] == "code"
        for o in c.get("outputs", [])
        if o["output_type"] == "execute_result"
    ]
    assert results == [str(len("hello, bridge") * 3)]
    assert nb["metadata"]["language_info"]["name"] == "python"


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.name)
def test_quickstart_executes_with_its_expected_error(spec: BridgeSpec, tmp_path: Path) -> None:
    name = spec.ready()
    """nbclient (``jupyter execute``, the README's command) honours the raises-exception tag."""
    out = tmp_path / "quick.ipynb"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "jupyter",
            "execute",
            f"--kernel_name={name}",
            f"--output={out.with_suffix('')}",
            str(NOTEBOOKS / "quickstart.ipynb"),
        ],
        capture_output=True,
        text=True,
        env=_env(),
        timeout=300,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    nb = json.loads(out.read_text())
    errors = [o for c in nb["cells"] for o in c.get("outputs", []) if o["output_type"] == "error"]
    assert [e["ename"] for e in errors] == ["ZeroDivisionError"]
    texts = "".join(
        "".join(o.get("text", "")) + "".join(o.get("data", {}).get("text/plain", ""))
        for c in nb["cells"]
        for o in c.get("outputs", [])
    )
    assert "42" in texts and "12.566371" in texts and "BRIDGED!" in texts


WIDGETS_NOTEBOOK = NOTEBOOKS / "widgets.ipynb"
"""Needs ipywidgets and tqdm where the code runs: checked on the local, rich Docker and
ACA (emulator) kernels."""


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.name)
def test_nbval_passes_on_the_notebooks(spec: BridgeSpec, tmp_path: Path) -> None:
    notebooks = sorted(p for p in NOTEBOOKS.glob("*.ipynb") if p != WIDGETS_NOTEBOOK)
    _run_nbval(spec, notebooks, tmp_path)


@pytest.mark.parametrize("spec", [LOCAL, DOCKER_RICH, ACA_LOCAL], ids=lambda s: s.name)
def test_nbval_passes_on_the_widgets_notebook(spec: BridgeSpec, tmp_path: Path) -> None:
    _run_nbval(spec, [WIDGETS_NOTEBOOK], tmp_path)


def _run_nbval(spec: BridgeSpec, notebooks: list[Path], tmp_path: Path) -> None:
    name = spec.ready()
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "no:cacheprovider",
            "-q",
            "--nbval",
            "--nbval-kernel-name",
            name,
            *map(str, notebooks),
            "-o",
            "addopts=",
            "-o",
            "testpaths=",
            "--rootdir",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        env=_env(),
        timeout=600,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stdout[-5000:] + proc.stderr[-2000:]
    assert " passed" in proc.stdout and "failed" not in proc.stdout
