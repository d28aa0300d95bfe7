"""Clear errors (missing image, unreachable engine, bad volume), orphan collection,
a SIGKILLed owner, files, and the configuration round trip."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from _support.environments import give_to_code_user

from kernel_bridge.cli import _gc
from kernel_bridge.errors import ConfigurationError
from kernel_bridge.events import Display, Error, Event, Finished, Stream
from kernel_bridge.executors.docker import DockerCommandLineCodeExecutor
from kernel_bridge.executors.docker import _engine as engine

REPO = Path(__file__).resolve().parents[3]


async def events_of(ex: DockerCommandLineCodeExecutor, code: str) -> list[Event]:
    return [e async for e in ex.execute(code)]


def single_error(events: list[Event]) -> Error:
    errors = [e for e in events if isinstance(e, Error)]
    assert len(errors) == 1, events
    assert isinstance(events[-1], Finished) and events[-1].exit_code == 1
    return errors[0]


def test_missing_image_gives_one_clear_error(docker_ready: None) -> None:
    image = "kernel-bridge-test/does-not-exist:never"

    async def main() -> None:
        ex = DockerCommandLineCodeExecutor(image)
        try:
            events = await asyncio.wait_for(events_of(ex, "print(1)"), 120)
        finally:
            await ex.stop()
        error = single_error(events)
        assert image in error.evalue
        assert "docker load" in error.evalue and "docker build" in error.evalue
        progress = [e.data["text/plain"] for e in events if isinstance(e, Display)]
        assert progress[0].startswith(f"Pulling {image}")  # the pull attempt is shown
        assert "Pull failed" in progress[-1]

    asyncio.run(main())


def test_unreachable_engine_gives_one_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKER_HOST", "tcp://127.0.0.1:1")

    async def main() -> None:
        ex = DockerCommandLineCodeExecutor("kernel-bridge-test/minimal:bookworm")
        events = await asyncio.wait_for(events_of(ex, "print(1)"), 60)
        await ex.stop()
        error = single_error(events)
        assert "DOCKER_HOST=tcp://127.0.0.1:1" in error.evalue
        assert "cannot reach the Docker engine" in error.evalue

    asyncio.run(main())


@pytest.mark.parametrize(
    "volumes",
    [
        {"relative/path": {"bind": "/data"}},
        {"/tmp": {"bind": "not-absolute"}},
        {"/tmp": {"bind": "/data", "mode": "sideways"}},
        {"/tmp": "/data:ro:extra"},
    ],
)
def test_bad_volume_spec_is_a_configuration_error(volumes: Any) -> None:
    with pytest.raises(ConfigurationError) as info:
        DockerCommandLineCodeExecutor(extra_volumes=volumes)
    assert "extra_volumes" in str(info.value)


def test_volume_the_engine_rejects_gives_one_clear_error(
    minimal_image: str, tmp_path: Path
) -> None:
    # valid in form, but the engine refuses to mount a regular file over a directory
    a_file = tmp_path / "file.txt"
    a_file.write_text("x")

    async def main() -> None:
        volumes = {str(a_file): {"bind": "/etc", "mode": "ro"}}
        ex = DockerCommandLineCodeExecutor(minimal_image, extra_volumes=volumes)
        try:
            events = await asyncio.wait_for(events_of(ex, "print(1)"), 60)
        finally:
            await ex.stop()
        error = single_error(events)
        assert "mount" in error.evalue.lower() or "volume" in error.evalue.lower()

    asyncio.run(main())


def _labelled_container(client: Any, image: str, labels: dict[str, str]) -> Any:
    return client.containers.run(
        image,
        ["python3", "-c", "import time; time.sleep(600)"],
        detach=True,
        labels={"kernel_bridge.managed": "1", **labels},
        init=True,
    )


def test_gc_removes_only_orphans(minimal_image: str, docker_client: Any) -> None:
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    dead_pid = dead.stdout.strip()
    me = str(os.getpid())
    host = socket.gethostname()
    orphan = _labelled_container(
        docker_client, minimal_image, {"kernel_bridge.host": host, "kernel_bridge.pid": dead_pid}
    )
    reused_pid = _labelled_container(  # our pid, but another process start time: pid reuse
        docker_client,
        minimal_image,
        {"kernel_bridge.host": host, "kernel_bridge.pid": me, "kernel_bridge.started": "1"},
    )
    alive = _labelled_container(
        docker_client,
        minimal_image,
        {
            "kernel_bridge.host": host,
            "kernel_bridge.pid": me,
            "kernel_bridge.started": engine.process_start_time(os.getpid()),
        },
    )
    other_host = _labelled_container(
        docker_client,
        minimal_image,
        {"kernel_bridge.host": "another-machine", "kernel_bridge.pid": dead_pid},
    )
    lingering = _labelled_container(
        docker_client,
        minimal_image,
        {"kernel_bridge.host": host, "kernel_bridge.pid": dead_pid, "kernel_bridge.linger": "1"},
    )
    try:
        args = argparse.Namespace(dry_run=True, include_lingering=False)
        assert _gc.run(args) == 0
        assert docker_client.containers.get(orphan.id)  # dry run removes nothing
        assert _gc.run(argparse.Namespace(dry_run=False, include_lingering=False)) == 0
        remaining = {c.id for c in docker_client.containers.list(all=True, ignore_removed=True)}
        assert orphan.id not in remaining and reused_pid.id not in remaining
        assert {alive.id, other_host.id, lingering.id} <= remaining
        assert _gc.run(argparse.Namespace(dry_run=False, include_lingering=True)) == 0
        remaining = {c.id for c in docker_client.containers.list(all=True, ignore_removed=True)}
        assert lingering.id not in remaining and alive.id in remaining
    finally:
        for container in (orphan, reused_pid, alive, other_host, lingering):
            with contextlib.suppress(Exception):
                container.remove(force=True)


def test_gc_command_line(docker_ready: None) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.run(
        [sys.executable, "-m", "kernel_bridge.cli", "gc", "--dry-run"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    env["DOCKER_HOST"] = "tcp://127.0.0.1:1"
    proc = subprocess.run(
        [sys.executable, "-m", "kernel_bridge.cli", "gc"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert proc.returncode == 1 and "DOCKER_HOST=tcp://127.0.0.1:1" in proc.stderr


def test_sigkilled_owner_leaves_no_container(
    minimal_image: str, docker_client: Any, tmp_path: Path
) -> None:
    script = tmp_path / "owner.py"
    script.write_text(
        "import asyncio, sys\n"
        "from kernel_bridge.executors.docker import DockerCommandLineCodeExecutor\n"
        "async def main():\n"
        f"    ex = DockerCommandLineCodeExecutor({minimal_image!r})\n"
        "    async for e in ex.execute('x = 1'):\n"
        "        pass\n"
        "    print(ex.container_name, flush=True)\n"
        "    await asyncio.sleep(600)\n"
        "asyncio.run(main())\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(
        [sys.executable, str(script)], stdout=subprocess.PIPE, text=True, env=env
    )
    try:
        assert proc.stdout is not None
        name = proc.stdout.readline().strip()
        assert docker_client.containers.get(name).status == "running"
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    deadline = time.monotonic() + 10
    while docker_client.containers.list(all=True, ignore_removed=True, filters={"name": name}):
        assert time.monotonic() < deadline, "the container outlived its SIGKILLed kernel"
        time.sleep(0.1)


def test_files_move_between_work_dir_and_workspace(minimal_image: str, tmp_path: Path) -> None:
    work_dir, engine_dir = tmp_path / "work", tmp_path / "engine"
    work_dir.mkdir()
    engine_dir.mkdir()  # bind_dir != work_dir: only the archive API can move files
    give_to_code_user(engine_dir)
    (work_dir / "in.txt").write_text("uploaded")
    (work_dir / "sub").mkdir()
    (work_dir / "sub" / "nested.txt").write_text("nested")

    async def main() -> None:
        ex = DockerCommandLineCodeExecutor(minimal_image, work_dir=work_dir, bind_dir=engine_dir)
        async with ex:
            await ex.upload_files(["in.txt", Path("sub/nested.txt")])
            events = await events_of(
                ex,
                "print(open('in.txt').read(), open('sub/nested.txt').read())\n"
                "open('out.txt', 'w').write('downloaded')",
            )
            assert "uploaded nested\n" in "".join(e.text for e in events if isinstance(e, Stream))
            assert set(await ex.get_file_list()) >= {"in.txt", "sub/nested.txt", "out.txt"}
            paths = await ex.download_files(["out.txt"])
            assert paths == [str(work_dir.resolve() / "out.txt")]
            assert (work_dir / "out.txt").read_text() == "downloaded"
            for bad in ("../escape.txt", "/etc/passwd"):
                with pytest.raises(ConfigurationError):
                    await ex.upload_files([bad])
            for bad in ("../../etc/passwd", "/etc/passwd", "/workspace/../etc/passwd"):
                with pytest.raises(ConfigurationError):
                    await ex.download_files([bad])

    asyncio.run(main())


def test_config_round_trip_and_traits(tmp_path: Path) -> None:
    from docker.types import DeviceRequest

    ex = DockerCommandLineCodeExecutor(
        "img:tag",
        "named",
        timeout=5,
        work_dir=tmp_path,
        auto_remove=False,
        device_requests=[DeviceRequest(count=-1, capabilities=[["gpu"]])],
        extra_volumes={"/data": {"bind": "/mnt/data", "mode": "ro"}},
        extra_hosts={"h": "1.2.3.4"},
        init_command="export A=1",
        delete_tmp_files=True,
        mem_limit="1g",
        cpus=1.5,
        network_mode="none",
        read_only=True,
    )
    config = ex.to_config()
    json.dumps(config)  # serialisable
    again = DockerCommandLineCodeExecutor.from_config(json.loads(json.dumps(config)))
    assert again.to_config() == config
    assert again.device_requests is not None
    unnamed = DockerCommandLineCodeExecutor().to_config()
    assert unnamed["container_name"] is None  # the generated name is not shared via config
    # every constructor argument is a configurable trait with the signature's default
    traits = DockerCommandLineCodeExecutor.class_traits(config=True)
    for name in ("image", "container_name", "timeout", "work_dir", "bind_dir", "auto_remove",
                 "stop_container", "device_requests", "functions_module", "extra_volumes",
                 "extra_hosts", "init_command", "delete_tmp_files", "mem_limit", "cpus",
                 "pids_limit", "network_mode", "user", "read_only", "pull", "docker_host",
                 "tls_cert_path"):  # fmt: skip
        assert name in traits, name
    assert traits["image"].default_value == "python:3-slim"
    assert traits["timeout"].default_value == 60


def test_kernel_style_construction_takes_the_parent_config() -> None:
    """The kernel builds the executor with itself as parent; its config sets the traits.

    Values the command line left as text (the class was not registered when it was
    parsed) are converted by the traits; arguments given to the constructor win.
    """
    from traitlets.config import Config, DeferredConfigString, LoggingConfigurable

    from kernel_bridge.kernelapp import _configurable_classes

    assert DockerCommandLineCodeExecutor in _configurable_classes(["docker"])
    config = Config()
    section = config.DockerCommandLineCodeExecutor
    section.image = "kernel-bridge-test/minimal:bookworm"
    section.mem_limit = "512m"
    section.extra_volumes = {"/data": {"bind": "/d", "mode": "ro"}}
    section.pids_limit = DeferredConfigString("77")
    section.read_only = DeferredConfigString("True")
    parent = LoggingConfigurable(config=config)
    ex = DockerCommandLineCodeExecutor(parent=parent)
    assert ex.image == "kernel-bridge-test/minimal:bookworm" and ex.mem_limit == "512m"
    assert ex.pids_limit == 77 and ex.read_only is True
    assert ex.extra_volumes == {"/data": {"bind": "/d", "mode": "ro"}}
    given = DockerCommandLineCodeExecutor("other:1", parent=parent, pids_limit=5)
    assert (given.image, given.pids_limit, given.mem_limit) == ("other:1", 5, "512m")
    with pytest.raises(ConfigurationError, match="timeout must be at least 1"):
        config.DockerCommandLineCodeExecutor.timeout = 0
        DockerCommandLineCodeExecutor(parent=LoggingConfigurable(config=config))


def test_the_constructor_keeps_autogens_signature() -> None:
    """AutoGen's parameters, order and defaults; the defaults are read from the traits."""
    import inspect

    parameters = inspect.signature(DockerCommandLineCodeExecutor).parameters
    autogen = {
        "image": "python:3-slim", "container_name": None, "timeout": 60, "work_dir": None,
        "bind_dir": None, "auto_remove": True, "stop_container": True,
        "device_requests": None, "functions": [], "functions_module": "functions",
        "extra_volumes": None, "extra_hosts": None, "init_command": None,
        "delete_tmp_files": False,
    }  # fmt: skip
    assert list(parameters)[: len(autogen)] == list(autogen)
    assert {name: parameters[name].default for name in autogen} == autogen
    kinds = [parameters[name].kind for name in autogen]
    assert kinds[:2] == [inspect.Parameter.POSITIONAL_OR_KEYWORD] * 2
    assert set(kinds[2:]) == {inspect.Parameter.KEYWORD_ONLY}
    with pytest.raises(TypeError):
        DockerCommandLineCodeExecutor("a", "b", 60)  # type: ignore[misc]


def test_orphans_are_collected_once_per_engine_not_once_per_process(
    minimal_image: str, docker_client: Any
) -> None:
    # The check used to be one process-wide flag: after the first executor's start no
    # other engine's leftovers were ever collected. Two addresses of this one engine
    # stand for two engines here.
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    labels = {"kernel_bridge.host": socket.gethostname(), "kernel_bridge.pid": dead.stdout.strip()}

    async def start_and_stop(**options: Any) -> None:
        ex = DockerCommandLineCodeExecutor(minimal_image, **options)
        try:
            assert (await events_of(ex, "1"))[-1] == Finished(0)
        finally:
            await ex.stop()

    asyncio.run(start_and_stop())  # this engine, by the environment's address: checked
    orphan = _labelled_container(docker_client, minimal_image, labels)
    try:
        asyncio.run(start_and_stop())  # same engine, same address: not checked again
        assert docker_client.containers.get(orphan.id)
        asyncio.run(start_and_stop(docker_host="unix:///run/docker.sock"))  # "another" engine
        remaining = {c.id for c in docker_client.containers.list(all=True, ignore_removed=True)}
        assert orphan.id not in remaining
    finally:
        with contextlib.suppress(Exception):
            orphan.remove(force=True)
