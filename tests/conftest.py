"""Shared test set-up: the test kernelspecs live in a private JUPYTER_PATH.

Kernels are real: jupyter_client starts ``python -m kernel_bridge`` from the specs the
``jupyter_path`` session fixture writes, exactly as JupyterLab, papermill and nbval do.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from _support.environments import stop_emulators
from _support.services import stop_services
from _support.specs import install_test_kernelspecs


@pytest.fixture(scope="session", autouse=True)
def jupyter_path(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The private Jupyter data dir holding the test kernelspecs, first on JUPYTER_PATH.

    Autouse for the session: the kernel-level suites (including unittest-style ones,
    whose setUpClass cannot ask for fixtures) find the specs by name. JUPYTER_PATH is
    restored when the session ends.
    """
    root = tmp_path_factory.mktemp("jupyter")
    with pytest.MonkeyPatch.context() as patch:
        old = os.environ.get("JUPYTER_PATH")
        patch.setenv("JUPYTER_PATH", os.pathsep.join([str(root), *([old] if old else [])]))
        yield install_test_kernelspecs(root)


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
    """Fail the run if any container kernel_bridge created is still there at the end.

    Stops the emulators and the loopback services (registries, the TLS engine) first;
    a container left in the TLS engine fails the run too.
    """
    stop_emulators()
    remote_left = stop_services()
    if remote_left:
        print(f"\nkernel_bridge containers left behind in the remote engine: {remote_left}")
        session.exitstatus = 1
    try:
        import docker

        client = docker.from_env(timeout=10)
        left = client.containers.list(
            all=True, ignore_removed=True, filters={"label": "kernel_bridge.managed=1"}
        )
        names = [
            c.name for c in left if c.labels.get("kernel_bridge.linger") != "1" and _ours(c.labels)
        ]
        client.close()
    except Exception:
        return
    if names:
        print(f"\nkernel_bridge containers left behind by the tests: {names}")
        session.exitstatus = 1
