"""Docker kernels on images pulled from a real registry (Debian's docker-registry, loopback).

The first cell of a kernel whose image is not on the engine shows the pull as one
display updated in place, then runs; a wrong tag, missing credentials and an
unreachable registry each give one clear error and leave the kernel alive. Credentials
come from the user's Docker config (HOME or DOCKER_CONFIG), never from kernel.json.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from _support.environments import require_docker
from _support.kernel_client import CellRun, run_cell, start_kernel
from _support.services import (
    AUTH_REGISTRY,
    REGISTRY,
    REGISTRY_PASSWORD,
    Registry,
    build_marked_image,
    free_port,
)
from _support.specs import FUNCTIONS_FLAG, BridgeSpec, jupyter_root, write_kernelspec


@pytest.fixture(scope="module")
def docker_client() -> Iterator[Any]:
    """The main engine, where these kernels run."""
    import docker

    require_docker()
    client = docker.from_env(timeout=60)
    yield client
    client.close()


def _pushed(client: Any, registry: Registry, name: str, blobs_mb: tuple[int, ...] = (1,)) -> str:
    """Push a fresh image (layers no engine has) and forget it locally; return its name."""
    registry.ensure()
    source = f"kbtest-local/{name}:{uuid.uuid4().hex[:8]}"
    build_marked_image(client, source, name, blobs_mb=blobs_mb)
    tag = uuid.uuid4().hex[:8]
    registry.push(client, source, f"kbtest/{name}", tag)
    client.images.remove(source)
    return f"{registry.address}/kbtest/{name}:{tag}"


def _spec(image: str) -> str:
    """Write a kernelspec running the minimal-image suite's flags on ``image``."""
    spec = BridgeSpec(
        f"kbtest-registry-{uuid.uuid4().hex[:8]}",
        (
            "--BridgeKernel.executor=docker",
            f"--DockerCommandLineCodeExecutor.image={image}",
            FUNCTIONS_FLAG,
        ),
    )
    path = write_kernelspec(jupyter_root(), spec)
    assert REGISTRY_PASSWORD not in (path / "kernel.json").read_text()
    return spec.name


def _environment(**changes: str | None) -> dict[str, str]:
    env = dict(os.environ)
    for key, value in changes.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    return env


def _run_first_cell(name: str, env: dict[str, str], code: str) -> tuple[CellRun, bool]:
    """Start a kernel, run its first cell; return the run and whether the kernel lived on."""
    km, kc = start_kernel(name, env=env)
    try:
        run = run_cell(kc, code, timeout=300)
        kc.kernel_info()
        info = kc.get_shell_msg(timeout=30)
        alive = km.is_alive() and info["msg_type"] == "kernel_info_reply"
        return run, alive
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)


def _one_error(run: CellRun, image: str) -> str:
    errors = run.of_type("error")
    assert len(errors) == 1, run.outputs
    assert run.status == "error"
    text = str(errors[0]["content"]["evalue"])
    assert image in text
    assert REGISTRY_PASSWORD not in str(run.outputs)
    return text


def test_first_cell_shows_pull_progress_then_runs(docker_client: Any, tmp_path: Path) -> None:
    image = _pushed(docker_client, REGISTRY, "pull", blobs_mb=(48, 48, 48))
    env = _environment(DOCKER_CONFIG=str(REGISTRY.docker_config(tmp_path, with_credentials=False)))
    run, alive = _run_first_cell(_spec(image), env, "print('ran')")
    assert run.status == "ok", run.outputs
    assert alive

    kinds = [m["msg_type"] for m in run.outputs]
    first_output = next(i for i, m in enumerate(run.outputs) if m["msg_type"] == "stream")
    assert run.stream_text() == "ran\n"  # no pull lines as stream text
    progress = [i for i, m in enumerate(run.outputs) if m["msg_type"].endswith("display_data")]
    assert progress and max(progress) < first_output, kinds  # all progress came first
    first = run.outputs[progress[0]]
    assert first["msg_type"] == "display_data"
    display_id = first["content"]["transient"]["display_id"]
    assert first["content"]["data"]["text/plain"].startswith(f"Pulling {image}")
    updates = [run.outputs[i] for i in progress[1:]]
    assert updates and all(m["msg_type"] == "update_display_data" for m in updates)
    assert all(m["content"]["transient"]["display_id"] == display_id for m in updates)
    assert len(updates) < 200, f"{len(updates)} updates: one line per layer, not a log"
    last = updates[-1]["content"]["data"]["text/plain"]
    assert f"Pulled {image}" in last and "Pull complete" in last and "digest sha256:" in last
    # one line per layer: the base the engine has, the marker and three blob layers
    assert last.count("Already exists") == 1 and last.count("Pull complete") == 4, last
    # the cell followed the pull (begun when the kernel started) while it happened
    spread = run.arrivals[progress[-1]] - run.arrivals[progress[0]]
    assert spread > 0.1, f"progress arrived in one burst ({spread:.3f} s)"
    print(f"pull progress: 1 display + {len(updates)} updates over {spread:.2f} s")
    assert docker_client.images.get(image)  # the engine has it now
    docker_client.images.remove(image, force=True)  # its container may still be going


def test_registry_credentials_come_from_the_users_docker_config(
    docker_client: Any, tmp_path: Path
) -> None:
    image = _pushed(docker_client, AUTH_REGISTRY, "private")
    home = tmp_path / "home"
    AUTH_REGISTRY.docker_config(home / ".docker")  # what `docker login` writes
    env = _environment(HOME=str(home), DOCKER_CONFIG=None)
    run, _ = _run_first_cell(_spec(image), env, "print('private ran')")
    assert run.status == "ok", run.outputs
    assert run.stream_text() == "private ran\n"
    assert REGISTRY_PASSWORD not in str(run.outputs)
    docker_client.images.remove(image, force=True)  # its container may still be going


def test_missing_credentials_give_one_error_saying_docker_login(
    docker_client: Any, tmp_path: Path
) -> None:
    image = _pushed(docker_client, AUTH_REGISTRY, "private-nologin")
    env = _environment(
        DOCKER_CONFIG=str(AUTH_REGISTRY.docker_config(tmp_path, with_credentials=False))
    )
    run, alive = _run_first_cell(_spec(image), env, "print('never')")
    text = _one_error(run, image)
    assert f"docker login {AUTH_REGISTRY.address}" in text
    assert "requires credentials" in text
    assert "never" not in run.stream_text()
    assert alive


def test_wrong_tag_gives_one_error_naming_the_image(docker_client: Any, tmp_path: Path) -> None:
    REGISTRY.ensure()
    image = f"{REGISTRY.address}/kbtest/pull:no-such-tag"
    env = _environment(DOCKER_CONFIG=str(REGISTRY.docker_config(tmp_path, with_credentials=False)))
    run, alive = _run_first_cell(_spec(image), env, "print('never')")
    text = _one_error(run, image)
    assert "has no such image" in text and "tag" in text
    assert alive


def test_unreachable_registry_gives_one_error_naming_the_image(
    docker_client: Any, tmp_path: Path
) -> None:
    image = f"127.0.0.1:{free_port()}/kbtest/pull:any"  # nothing listens there
    env = _environment(DOCKER_CONFIG=str(tmp_path))
    run, alive = _run_first_cell(_spec(image), env, "print('never')")
    text = _one_error(run, image)
    assert "cannot be reached" in text and "docker load" in text
    assert alive
