"""%bridge use and %bridge restart at kernel level: a new session each time, said plainly."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import docker
from _support.environments import MINIMAL_IMAGE
from _support.kernel_client import run_cell
from _support.notebook_kernel import error_text, info_of, kernel_in
from _support.specs import DOCKER, LOCAL

# A container's hostname is its short id; this machine may itself be a container, so
# /.dockerenv alone would not tell the two apart.
WHERE = "import socket\nprint(socket.gethostname(), 'kept' in globals(), shout('hi'))"


def _container_gone(container: str, deadline_s: float = 15.0) -> bool:
    client = docker.from_env()
    try:
        deadline = time.monotonic() + deadline_s
        while time.monotonic() < deadline:
            if not client.containers.list(all=True, ignore_removed=True, filters={"id": container}):
                return True
            time.sleep(0.1)
        return False
    finally:
        client.close()


def test_use_docker_from_local_and_back(tmp_path: Path) -> None:
    DOCKER.ready()
    with kernel_in(LOCAL.ready(), tmp_path) as kc:
        assert run_cell(kc, "kept = 1").status == "ok"
        to_docker = run_cell(kc, f"%bridge use docker --image {MINIMAL_IMAGE} --memory 512m")
        in_docker = run_cell(kc, WHERE)
        docker_info = info_of(run_cell(kc, "%bridge info"))
        back = run_cell(kc, "kept = 2\n%bridge use local")
        misplaced = run_cell(kc, "print('never')")
        to_local = run_cell(kc, "%bridge use local")
        in_local = run_cell(kc, WHERE)
        local_info = info_of(run_cell(kc, "%bridge"))
    assert to_docker.status == "ok", to_docker.outputs
    said = to_docker.stream_text()
    assert "now using the docker executor" in said and "State was reset" in said
    assert "injected again: circle_area, shout" in said
    assert docker_info["executor"] == "docker" and docker_info["image"] == MINIMAL_IMAGE
    assert in_docker.stream_text() == f"{docker_info['container']} False HI!\n"
    assert docker_info["limits"]["mem_limit"] == "512m"
    assert back.status == "error" and "must come first" in error_text(back)
    assert misplaced.stream_text() == "never\n"
    assert to_local.status == "ok" and "State was reset" in to_local.stream_text()
    assert in_local.stream_text() == f"{socket.gethostname()} False HI!\n"
    assert local_info["executor"] == "local"
    assert _container_gone(docker_info["container"]), "the docker session must be removed"


def test_use_alone_lists_and_bad_options_keep_the_session(tmp_path: Path) -> None:
    with kernel_in(LOCAL.ready(), tmp_path) as kc:
        run_cell(kc, "kept = 1")
        listing = run_cell(kc, "%bridge use")
        wrong_kind = run_cell(kc, "%bridge use local --image x")
        unknown = run_cell(kc, "%bridge use podman")
        no_endpoint = run_cell(kc, "%bridge use aca")
        still = run_cell(kc, "print(kept)")
    assert "this notebook uses: local" in listing.stream_text()
    assert "%bridge use docker --image IMAGE" in listing.stream_text()
    assert "--image applies to the docker executor, not to local" in error_text(wrong_kind)
    assert "invalid choice: 'podman'" in error_text(unknown)
    assert no_endpoint.status == "error"
    assert "pool_management_endpoint" in error_text(no_endpoint)
    assert "stays on local" in error_text(no_endpoint)
    assert still.stream_text() == "1\n"


def test_restart_gives_a_fresh_session_with_the_functions(tmp_path: Path) -> None:
    with kernel_in(DOCKER.ready(), tmp_path) as kc:
        run_cell(kc, "kept = 1")
        before = info_of(run_cell(kc, "%bridge info"))
        restarted = run_cell(kc, "%bridge restart\nprint('kept' in globals(), shout('x'))")
        after = info_of(run_cell(kc, "%bridge info"))
    assert restarted.status == "ok"
    assert "restarted: a fresh docker session. State was reset" in restarted.stream_text()
    assert restarted.stream_text().endswith("False X!\n")
    assert after["container"] != before["container"]
