"""The emulator's docker backend: one container per session, its directory at /mnt/data."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from .conftest import Pool

IMAGE = "kernel-bridge-test/minimal:bookworm"
Q = {"api-version": "2024-02-02-preview", "identifier": "docker-session-1"}

pytestmark = pytest.mark.docker


def test_docker_sessions_see_their_files_at_mnt_data(make_pool: Callable[..., Pool]) -> None:
    pool = make_pool(backend="docker", image=IMAGE)
    upload = pool.http.post(
        pool.url("files/upload"), params=Q, files={"file": ("in.txt", b"hey", "text/plain")}
    )
    assert upload.status_code == 200
    props = pool.props("x = open('/mnt/data/in.txt').read()\nx.upper()", "docker-session-1")
    assert props["status"] == "Success", props["stderr"]
    assert props["result"] == "'HEY'"
    pool.props("open('/mnt/data/out.txt', 'w').write(x * 2)", "docker-session-1")
    content = pool.http.get(pool.url("files/content/out.txt"), params=Q)
    assert content.content == b"heyhey"
    failed = pool.props("1/0", "docker-session-1")
    assert failed["status"] == "Failure"
    assert failed["stderr"].rstrip().endswith("ZeroDivisionError: division by zero")
    other = pool.props("import os\nos.listdir('/mnt/data')", "docker-session-2")
    assert other["result"] == "[]"
