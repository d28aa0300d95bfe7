"""Fixtures shared by the suites that start Docker containers (executors/docker, reliability).

Imported into those suites' conftest.py files, so pytest registers them there.
"""

from __future__ import annotations

import pytest

from _support.environments import give_to_code_user


@pytest.fixture(autouse=True)
def _tmp_path_belongs_to_the_code_user(request: pytest.FixtureRequest) -> None:
    """On a root host, give tmp_path to uid 1000, the hardened containers' default user.

    Containers never run the code as root by default, and a work_dir must be writable by
    the code's user (the executor refuses it otherwise); a root-owned 0700 pytest
    directory is not. A non-root host runs the code under its own uid: nothing to do.
    """
    if "tmp_path" in request.fixturenames:
        give_to_code_user(request.getfixturevalue("tmp_path"))
