"""Fixtures for the Docker executor tests: a running engine and the test images.

``docker_ready`` (session) makes sure an engine answers and the two test images exist,
running ``.ci/docker-setup.sh`` when they do not. Without Docker the tests fail when
``CI`` is set and are skipped (with the reason) otherwise. After every test module no
container created by this process may remain.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest
from _support.docker_fixtures import _tmp_path_belongs_to_the_code_user  # noqa: F401
from _support.environments import MINIMAL_IMAGE as MINIMAL
from _support.environments import RICH_IMAGE as RICH
from _support.environments import docker_problem, require_docker


@pytest.fixture(scope="session")
def docker_ready() -> None:
    """Make sure a Docker engine runs and the test images exist (builds them if needed)."""
    require_docker()


@pytest.fixture(scope="session")
def docker_client(docker_ready: None) -> Iterator[Any]:
    """A docker SDK client for assertions on the engine's state."""
    import docker

    client = docker.from_env()
    yield client
    client.close()


@pytest.fixture(scope="module", autouse=True)
def _no_container_left_behind(request: pytest.FixtureRequest) -> Iterator[None]:
    """After each test module, no container labelled with this process's pid may remain."""
    yield
    if docker_problem() is not None:
        return
    import docker

    client = docker.from_env()
    try:
        left = client.containers.list(
            all=True, ignore_removed=True, filters={"label": f"kernel_bridge.pid={os.getpid()}"}
        )
        names = [c.name for c in left]
        for container in left:  # clean up so one failure does not cascade
            container.remove(force=True)
    finally:
        client.close()
    assert not names, f"containers left behind by {request.module.__name__}: {names}"


@pytest.fixture(scope="session")
def minimal_image(docker_ready: None) -> str:
    """The python3-only test image (debootstrap minbase)."""
    return MINIMAL


@pytest.fixture(scope="session")
def rich_image(docker_ready: None) -> str:
    """The test image with IPython, matplotlib and numpy."""
    return RICH
