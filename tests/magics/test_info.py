"""%bridge info, at kernel level, on every executor: what it says and what it never says."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import docker
from _support.environments import ACA_TOKEN, EMULATORS, MINIMAL_IMAGE
from _support.kernel_client import run_cell
from _support.notebook_kernel import info_of, kernel_in
from _support.specs import ACA_LOCAL, DOCKER, LOCAL

FUNCTIONS = ["circle_area", "shout"]


def test_local_info(tmp_path: Path) -> None:
    with kernel_in(LOCAL.ready(), tmp_path) as kc:
        run_cell(kc, "x = 1")
        info = info_of(run_cell(kc, "%bridge"))
        assert run_cell(kc, "%bridge info").status == "ok"
    assert info["executor"] == "local"
    assert info["python"] == ".".join(map(str, sys.version_info[:3]))
    assert info["session"] == "running" and info["session_age_s"] >= 0
    assert info["working_directory"] == str(tmp_path.resolve())
    assert info["notebook_dir"] == str(tmp_path.resolve())
    assert sorted(info["functions"]) == FUNCTIONS
    assert info["mounts"] == ["none: the code runs on this host"]


def test_docker_info_names_the_image_id_limits_and_mount(tmp_path: Path) -> None:
    with kernel_in(DOCKER.ready(), tmp_path) as kc:
        probe = run_cell(kc, "import socket; print(socket.gethostname())")
        info = info_of(run_cell(kc, "%bridge info"))
    client = docker.from_env()
    try:
        image_id = client.images.get(MINIMAL_IMAGE).id
    finally:
        client.close()
    assert info["executor"] == "docker"
    assert info["image"] == MINIMAL_IMAGE
    assert info["image_id"] == image_id
    assert info["container"] == probe.stream_text().strip()[:12]
    assert info["python"] == "3.11.2"
    assert info["limits"]["pids_limit"] == 4096
    assert info["working_directory"] == "/workspace"
    assert sorted(info["functions"]) == FUNCTIONS
    assert any("private temporary folder -> /workspace" in m for m in info["mounts"])


def test_aca_info_names_the_pool_host_and_no_secret(tmp_path: Path) -> None:
    emulator = EMULATORS["local"].emulator
    with kernel_in(ACA_LOCAL.ready(), tmp_path) as kc:
        before = {s.identifier for s in emulator.state.sessions.live()}
        first = run_cell(kc, "%bridge info")
        ran = run_cell(kc, "y = 2")
        second = run_cell(kc, "%bridge info")
        identifiers = {s.identifier for s in emulator.state.sessions.live()} - before
    assert info_of(first)["session"].startswith("not started"), "info must not start a session"
    assert ran.status == "ok"
    info = info_of(second)
    assert info["executor"] == "aca"
    assert info["pool_host"] == "127.0.0.1"
    assert info["python"] == ".".join(map(str, sys.version_info[:3]))
    assert info["session"] == "running"
    assert info["working_directory"] == "/mnt/data"
    assert sorted(info["functions"]) == FUNCTIONS
    assert len(identifiers) == 1
    shown = json.dumps([m["content"] for m in first.outputs + second.outputs])
    assert ACA_TOKEN not in shown
    assert identifiers.pop() not in shown
