"""A kernel started in a given folder (the notebook's folder), for the %bridge tests."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from jupyter_client.blocking.client import BlockingKernelClient

from .kernel_client import CellRun, start_kernel


@contextlib.contextmanager
def kernel_in(name: str, folder: Path) -> Iterator[BlockingKernelClient]:
    """Start kernelspec ``name`` with ``folder`` as its working directory; shut it down after."""
    km, kc = start_kernel(name, cwd=str(folder))
    try:
        yield kc
    finally:
        kc.stop_channels()
        km.shutdown_kernel()


def info_of(run: CellRun) -> dict[str, Any]:
    """The JSON facts of a ``%bridge info`` cell."""
    displays = run.of_type("display_data")
    assert displays, f"no display in {run.outputs}"
    data = displays[0]["content"]["data"]
    assert "application/json" in data, data
    value = data["application/json"]
    return value if isinstance(value, dict) else json.loads(value)


def error_text(run: CellRun) -> str:
    """The evalue of the cell's error output (empty when there is none)."""
    return "".join(m["content"]["evalue"] for m in run.of_type("error"))
