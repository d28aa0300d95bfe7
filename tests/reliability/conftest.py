"""Fixtures for the adversarial tests: a running Docker engine and the test images.

The tests here play the hostile side (code in a container racing the host, odd names,
links to host files) against real containers, and check that the host is never harmed.
"""

from __future__ import annotations

import pytest
from _support.docker_fixtures import _tmp_path_belongs_to_the_code_user  # noqa: F401
from _support.environments import MINIMAL_IMAGE, RICH_IMAGE, require_docker


def _has_image(image: str) -> bool:
    import docker

    client = docker.from_env(timeout=20)
    try:
        client.images.get(image)
        return True
    except docker.errors.DockerException:
        return False
    finally:
        client.close()


@pytest.fixture(scope="session")
def minimal_image() -> str:
    """The python3-only test image (built with the rich one by require_docker if missing)."""
    if not _has_image(MINIMAL_IMAGE):
        require_docker()
    return MINIMAL_IMAGE


@pytest.fixture(scope="session")
def rich_image() -> str:
    """The test image with IPython, pip, matplotlib and numpy."""
    require_docker()
    return RICH_IMAGE
