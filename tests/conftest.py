"""Shared test set-up: the test kernelspecs live in a private JUPYTER_PATH.

Kernels are real: jupyter_client starts ``python -m kernel_bridge`` from the specs
written by ``_support.specs`` at import, exactly as JupyterLab, papermill and nbval do.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from _support.environments import stop_emulators
from _support.specs import JUPYTER_ROOT


@pytest.fixture(scope="session")
def jupyter_path() -> Path:
    """The private Jupyter data dir holding the test kernelspecs (first on JUPYTER_PATH)."""
    return JUPYTER_ROOT


def _ours(labels: dict[str, str]) -> bool:
    """A container belongs to this run: its owner is this process, or a process now gone."""
    try:
        pid = int(labels.get("kernel_bridge.pid", ""))
    except ValueError:
        return True
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Fail the run if any container kernel_bridge created is still there at the end."""
    stop_emulators()
    try:
        import docker

        client = docker.from_env(timeout=10)
        left = client.containers.list(all=True, filters={"label": "kernel_bridge.managed=1"})
        names = [
            c.name for c in left if c.labels.get("kernel_bridge.linger") != "1" and _ours(c.labels)
        ]
        client.close()
    except Exception:
        return
    if names:
        print(f"\nkernel_bridge containers left behind by the tests: {names}")
        session.exitstatus = 1
