"""What the executor-specific test kernels need: a Docker engine with the test images,
and ACA emulators (local and docker backends) serving in this test process.

Readiness is checked (and set up) once per session. Without Docker, tests that need it
fail when ``CI`` is set and are skipped, with the reason, otherwise.
"""

from __future__ import annotations

import atexit
import functools
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
DOCKER_SETUP = REPO / ".ci" / "docker-setup.sh"
MINIMAL_IMAGE = "kernel-bridge-test/minimal:bookworm"
RICH_IMAGE = "kernel-bridge-test/rich:bookworm-3"
ACA_TOKEN = "kernel-bridge-test-token-5f0c"


def docker_problem() -> str | None:
    """Return None when an engine answers and both test images exist, else why not."""
    try:
        import docker

        client = docker.from_env(timeout=20)
        try:
            client.ping()
            for image in (MINIMAL_IMAGE, RICH_IMAGE):
                client.images.get(image)
        finally:
            client.close()
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"
    return None


@functools.cache
def _docker_setup_result() -> str | None:
    if docker_problem() is None:
        return None
    proc = subprocess.run(
        ["bash", str(DOCKER_SETUP)], capture_output=True, text=True, timeout=1500, check=False
    )
    problem = docker_problem()
    if problem is None:
        return None
    return f"{problem}; .ci/docker-setup.sh exited {proc.returncode}: {proc.stderr[-2000:]}"


def require_docker() -> None:
    """Make sure Docker and the test images are there; fail in CI, skip elsewhere."""
    problem = _docker_setup_result()
    if problem is None:
        return
    if os.environ.get("CI"):
        pytest.fail(f"Docker is required in CI: {problem}")
    pytest.skip(f"Docker unavailable: {problem}")


class _LazyEmulator:
    """An emulator whose port is reserved at import time and which serves on first use."""

    def __init__(self, backend: str) -> None:
        from kernel_bridge.emulator import Emulator, EmulatorConfig

        # The service runs an IPython kernel: so do the docker backend's sessions.
        config = EmulatorConfig(token=ACA_TOKEN, backend=backend, image=RICH_IMAGE)
        self.emulator: Any = Emulator(config)
        self.started = False

    @property
    def endpoint(self) -> str:
        return str(self.emulator.endpoint)

    def ensure_serving(self) -> Any:
        if not self.started:
            self.emulator.start()
            self.started = True
            atexit.register(self.stop)
        return self.emulator

    def stop(self) -> None:
        if self.started:
            self.started = False
            self.emulator.stop()


EMULATORS = {"local": _LazyEmulator("local"), "docker": _LazyEmulator("docker")}


def stop_emulators() -> None:
    """Stop the emulators (and their sessions' runtimes or containers)."""
    for emulator in EMULATORS.values():
        emulator.stop()


def require(needs: tuple[str, ...]) -> None:
    """Bring up what a kernelspec needs: ``docker``, ``remote-engine``, ``aca-local``,
    ``aca-docker``."""
    for need in needs:
        if need == "docker":
            require_docker()
        elif need == "remote-engine":
            from .services import REMOTE_ENGINE

            REMOTE_ENGINE.ensure()
        elif need.startswith("aca-"):
            backend = need.removeprefix("aca-")
            if backend == "docker":
                require_docker()
            EMULATORS[backend].ensure_serving()


CODE_USER = (1000, 1000)
"""The uid:gid hardened containers run the code as when the tests run as root."""


def give_to_code_user(*paths: Path) -> None:
    """On a root host, hand directories to the containers' default code user (uid 1000).

    The Docker executor never runs code as root by default, so a work_dir (or bind_dir,
    or a mounted data dir) must be writable by that user, like on a developer's machine
    where the directories are the user's own. A non-root host needs nothing.
    """
    if os.getuid() == 0:
        for path in paths:
            os.chown(path, *CODE_USER)
