"""``kernel-bridge install --pin``: a tag resolved to its registry digest at install time.

Against a real registry on loopback (Debian's docker-registry): the spec keeps naming
the same image after the tag moves. Images given as ``NAME@sha256:...`` are accepted
as they are; a malformed digest and an image no registry knows are refused.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from _support.environments import MINIMAL_IMAGE, require_docker
from _support.services import REGISTRY, build_marked_image

from kernel_bridge.events import Finished, Stream
from kernel_bridge.executors.docker import DockerCommandLineCodeExecutor

IMAGE_FLAG = "--DockerCommandLineCodeExecutor.image="


@pytest.fixture
def docker_client(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """The main engine; the user's Docker config is an empty one (no credentials needed)."""
    import docker

    require_docker()
    config = tmp_path / "docker-config"
    config.mkdir()
    (config / "config.json").write_text('{"auths": {}}')
    monkeypatch.setenv("DOCKER_CONFIG", str(config))
    client = docker.from_env(timeout=60)
    yield client
    client.close()


def _image_of(prefix: Path, name: str) -> str:
    path = prefix / "share" / "jupyter" / "kernels" / name / "kernel.json"
    argv = json.loads(path.read_text())["argv"]
    [flag] = [a for a in argv if a.startswith(IMAGE_FLAG)]
    return str(flag.removeprefix(IMAGE_FLAG))


def _marker(image: str) -> str:
    """What /opt/kbtest-marker says in a container of ``image`` (pulled as needed)."""

    async def main() -> str:
        ex = DockerCommandLineCodeExecutor(image, network_mode="none")
        try:
            events = [e async for e in ex.execute("print(open('/opt/kbtest-marker').read())")]
        finally:
            await ex.stop()
        assert isinstance(events[-1], Finished) and events[-1].ok, events
        return "".join(e.text for e in events if isinstance(e, Stream)).strip()

    return asyncio.run(main())


def test_pin_writes_the_digest_and_the_spec_keeps_its_image_when_the_tag_moves(
    cli: Callable[..., Any], prefix: Path, docker_client: Any
) -> None:
    REGISTRY.ensure()
    repository = f"kbtest/pinned-{uuid.uuid4().hex[:6]}"
    tagged = f"{REGISTRY.address}/{repository}:stable"
    sources = [f"kbtest-local/pin:{uuid.uuid4().hex[:8]}" for _ in range(2)]
    pinned = ""
    try:
        build_marked_image(docker_client, sources[0], "first")
        first = REGISTRY.push(docker_client, sources[0], repository, "stable")

        done = cli("install", "--executor", "docker", "--image", tagged, "--pin",
                   "--prefix", str(prefix), "--name", "pinned")  # fmt: skip
        assert done.code == 0, done.err
        pinned = f"{REGISTRY.address}/{repository}@{first}"
        assert _image_of(prefix, "pinned") == pinned
        assert f"Pinned {tagged} to {pinned}" in done.out

        build_marked_image(docker_client, sources[1], "second")
        second = REGISTRY.push(docker_client, sources[1], repository, "stable")
        assert second != first  # the tag moved
        assert _marker(tagged) == "second"
        assert _marker(pinned) == "first"  # the pinned spec still runs the first image
    finally:
        for image in (*sources, tagged, pinned):
            with contextlib.suppress(Exception):  # some were never made
                docker_client.images.remove(image, force=True)


def test_pin_refuses_an_image_without_a_registry_digest(
    cli: Callable[..., Any], prefix: Path, docker_client: Any
) -> None:
    done = cli("install", "--executor", "docker", "--image", MINIMAL_IMAGE, "--pin",
               "--prefix", str(prefix), "--name", "local-only")  # fmt: skip
    assert done.code == 2
    assert f"cannot pin '{MINIMAL_IMAGE}': it has no registry digest" in done.err
    assert "docker push" in done.err
    assert not (prefix / "share" / "jupyter" / "kernels" / "local-only").exists()


def test_image_may_be_given_by_digest_and_a_bad_digest_is_refused(
    cli: Callable[..., Any], prefix: Path
) -> None:
    digest = "sha256:" + "0123456789abcdef" * 4
    done = cli("install", "--executor", "docker", "--image", f"python@{digest}",
               "--prefix", str(prefix), "--name", "by-digest")  # fmt: skip
    assert done.code == 0, done.err
    assert _image_of(prefix, "by-digest") == f"python@{digest}"
    bad = cli("install", "--executor", "docker", "--image", "python@sha256:abc",
              "--prefix", str(prefix), "--name", "bad-digest")  # fmt: skip
    assert bad.code == 2 and "NAME@sha256:<64 hex digits>" in bad.err
    local = cli("install", "--executor", "local", "--pin", "--prefix", str(prefix))
    assert local.code == 2 and "--pin applies only to --executor docker" in local.err
