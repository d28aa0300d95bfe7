"""Fixtures for the adversarial tests: a running Docker engine and the test images.

The tests here play the hostile side (code in a container racing the host, odd names,
links to host files) against real containers, and check that the host is never harmed.
"""

from __future__ import annotations

import pytest
from _support.environments import MINIMAL_IMAGE, RICH_IMAGE, give_to_code_user, require_docker


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


@pytest.fixture(autouse=True)
def _tmp_path_belongs_to_the_code_user(request: pytest.FixtureRequest) -> None:
    """On a root host, give tmp_path to uid 1000, the hardened containers' default user.

    Containers never run the code as root by default, and a work_dir must be writable by
    the code's user (the executor refuses it otherwise); a root-owned 0700 pytest
    directory is not. A non-root host runs the code under its own uid: nothing to do.
    """
    if "tmp_path" in request.fixturenames:
        give_to_code_user(request.getfixturevalue("tmp_path"))
