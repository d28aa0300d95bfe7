"""Third-party test notebooks give the same outputs on kernel_bridge as on a stock ipykernel.

The notebooks are the test notebooks of nbclient, papermill and nbval, taken at test time
from those packages' source distributions on PyPI (the versions installed here; never
committed: fetched material stays out of the repository) into a cache folder. Each is
executed with nbclient on the local kernel_bridge kernel and on ipykernel's ``python3``
kernel in the same interpreter; outputs are compared cell by cell after normalising what
changes between runs (ids, addresses, times, paths, traceback frames).
``DELIBERATE_DIFFERENCES`` lists the known differences, each with its reason.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import re
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import Any

import pytest
from _support.specs import LOCAL

pytestmark = pytest.mark.slow

SOURCES = {
    # package: folders inside the sdist whose notebooks are taken (not recursive)
    "nbclient": ("tests/files",),
    "papermill": ("papermill/tests/notebooks",),
    "nbval": ("tests", "tests/ipynb-test-samples"),
}
CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "kernel_bridge-tests"
STOCK_KERNEL = "python3"
CELL_TIMEOUT_S = 15

DELIBERATE_DIFFERENCES: dict[str, str] = {
    "nbclient/tests_files/Autokill.ipynb": (
        "the cell SIGTERMs its own process: a stock kernel dies (nbclient: DeadKernelError);"
        " here the runtime dies, the kernel lives on and the cell says that the state was"
        " lost (RuntimeDiedError), so the notebook can go on after a restart of the runtime"
    ),
    "nbclient/tests_files/Disable Stdin.ipynb": (
        "same StdinNotImplementedError, but its message says what to do (allow_stdin is"
        " false as with papermill/nbval/nbclient; put the value in the code) instead of"
        " ipykernel's 'raw_input was called, but this frontend does not support input'"
    ),
}

OUTSIDE_THE_KERNEL: dict[str, str] = {
    "papermill/papermill_tests_notebooks/binder.ipynb": (
        "a cell runs `python -m papermill` in a shell with paths relative to a checkout of"
        " papermill that is not there; the text of that subprocess's traceback depends on"
        " which `python` the shell finds and its library paths, not on the kernel: only"
        " the kinds of output (and the error's name) are compared"
    ),
}


def _kinds(outputs: object) -> object:
    """What kind of output each cell gave (and an error's name), without any text."""
    if not isinstance(outputs, list):
        return outputs
    return [
        [item[:2] if item and item[0] == "error" else item[:1] for item in cell] for cell in outputs
    ]


def _sdist_notebooks() -> dict[str, Path]:
    """Download (once) the sdists of the installed versions and extract their notebooks."""
    found: dict[str, Path] = {}
    for package, folders in SOURCES.items():
        version = importlib.metadata.version(package)
        target = CACHE / f"{package}-{version}"
        if not (target / ".complete").exists():
            target.mkdir(parents=True, exist_ok=True)
            subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "pip",
                    "download",
                    "--quiet",
                    "--disable-pip-version-check",
                    "--no-binary",
                    ":all:",
                    "--no-deps",
                    f"{package}=={version}",
                    "-d",
                    str(target),
                ],
                check=True,
                timeout=300,
            )
            (archive,) = target.glob(f"{package}-*.tar.gz")
            with tarfile.open(archive) as tar:
                for member in tar.getmembers():
                    parts = member.name.split("/", 1)
                    if len(parts) != 2 or not member.isfile():
                        continue
                    folder, _, name = parts[1].rpartition("/")
                    # names are checked here: the archive comes from outside
                    if folder in folders and name.endswith(".ipynb") and "/" not in name:
                        data = tar.extractfile(member)
                        assert data is not None
                        out = target / "notebooks" / folder.replace("/", "_") / name
                        out.parent.mkdir(parents=True, exist_ok=True)
                        out.write_bytes(data.read())
            (target / ".complete").write_text("ok")
        for path in sorted((target / "notebooks").rglob("*.ipynb")):
            found[f"{package}/{path.parent.name}/{path.name}"] = path
    return found


NOTEBOOKS = _sdist_notebooks()

_VOLATILE = [
    (re.compile(r"0x[0-9a-fA-F]{6,}"), "0x..."),
    (re.compile(r"\b[0-9a-f]{32}\b"), "<hex-id>"),
    (re.compile(r"\d{4}-\d\d-\d\d,?[ T]\d\d:\d\d:\d\d(\.\d+)?"), "<time>"),
    (re.compile(r"\d+(\.\d+)?\s?(s|ms|µs|it/s|s/it)\b"), "<duration>"),
    (re.compile(r"/tmp/[^\s'\"]+"), "/tmp/..."),
    (re.compile(r"\x1b\[[0-9;]*m"), ""),
    (re.compile(r"\b1\d{9}\.\d+\b"), "<epoch>"),  # time.time()
    (re.compile(r"datetime\.datetime\([\d, ]+\)"), "datetime.datetime(<now>)"),
    # the cell's file name in a SyntaxError: IPython's "<ipython-input-N-hash>" here,
    # ipykernel's hashed "NNN.py" there (cosmetic)
    (re.compile(r"\((<ipython-input-\d+-[0-9a-f]+>|\d+\.py), line (\d+)\)"), r"(<cell>, line \2)"),
]


def _clean(text: str) -> str:
    for pattern, replacement in _VOLATILE:
        text = pattern.sub(replacement, text)
    return text


def _normalise(nb: dict[str, Any]) -> list[list[Any]]:
    """Each code cell's outputs, reduced to what a reader sees and stable across runs."""
    cells: list[list[Any]] = []
    for cell in nb["cells"]:
        if cell["cell_type"] != "code":
            continue
        outs: list[Any] = []
        # stdout and stderr each keep their text, but how they interleave is not
        # compared: in ipykernel itself that depends on two independent flush timers
        streams: dict[str, str] = {}
        for out in cell.get("outputs", []):
            kind = out["output_type"]
            if kind == "stream":
                streams[out["name"]] = streams.get(out["name"], "") + _clean("".join(out["text"]))
            elif kind == "error":
                outs.append(("error", out["ename"], _clean(out["evalue"])))
            else:
                data = {
                    mime: _clean(json.dumps(value, sort_keys=True))
                    for mime, value in out.get("data", {}).items()
                }
                outs.append((kind, data))
        cells.append([*outs, *sorted(streams.items())])
    return cells


def _execute(path: Path, kernel: str, tmp_path: Path) -> list[list[Any]] | str:
    """Run a notebook with nbclient (errors allowed); its normalised outputs or the failure."""
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    workdir = tmp_path / kernel
    workdir.mkdir()
    client = NotebookClient(
        nb,
        kernel_name=kernel,
        timeout=CELL_TIMEOUT_S,
        allow_errors=True,
        resources={"metadata": {"path": str(workdir)}},
    )
    try:
        client.execute()
    except Exception as exc:  # both kernels must fail the same way
        return f"{type(exc).__name__}: {_clean(str(exc)).splitlines()[0] if str(exc) else ''}"
    return _normalise(nb)


@pytest.mark.parametrize("notebook", sorted(NOTEBOOKS), ids=str)
def test_outputs_match_a_stock_ipykernel(notebook: str, tmp_path: Path) -> None:
    bridge = _execute(NOTEBOOKS[notebook], LOCAL.ready(), tmp_path)
    stock = _execute(NOTEBOOKS[notebook], STOCK_KERNEL, tmp_path)
    if notebook in DELIBERATE_DIFFERENCES:
        assert bridge != stock, f"{notebook} now matches: drop it from DELIBERATE_DIFFERENCES"
        return
    if notebook in OUTSIDE_THE_KERNEL:
        assert _kinds(bridge) == _kinds(stock)
        return
    assert bridge == stock
