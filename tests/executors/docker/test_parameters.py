"""One test per AutoGen constructor parameter of the Docker executor, showing its effect."""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from _support.environments import give_to_code_user
from docker.types import DeviceRequest

from kernel_bridge.errors import ConfigurationError, ExecutorStartError
from kernel_bridge.events import Error, Event, Stream
from kernel_bridge.executors._blocks import CodeBlock
from kernel_bridge.executors.docker import DockerCommandLineCodeExecutor


async def stdout_of(ex: DockerCommandLineCodeExecutor, code: str, language: str = "python") -> str:
    events: list[Event] = [e async for e in ex.execute(code, language=language)]
    errors = [e for e in events if isinstance(e, Error)]
    assert not errors, errors
    return "".join(e.text for e in events if isinstance(e, Stream) and e.name == "stdout")


def test_work_dir_is_mounted_at_workspace(minimal_image: str, tmp_path: Path) -> None:
    (tmp_path / "hello.txt").write_text("from the host")

    async def main() -> None:
        async with DockerCommandLineCodeExecutor(minimal_image, work_dir=tmp_path) as ex:
            assert ex.work_dir == tmp_path
            assert ex.bind_dir == tmp_path  # bind_dir defaults to work_dir
            out = await stdout_of(ex, "import os\nprint(os.getcwd(), open('hello.txt').read())")
            assert out == "/workspace from the host\n"
        assert tmp_path.exists()  # a user's work_dir is never deleted

    asyncio.run(main())


def test_default_work_dir_is_a_temp_dir_removed_at_stop(minimal_image: str) -> None:
    async def main() -> None:
        ex = DockerCommandLineCodeExecutor(minimal_image)
        await ex.start()
        work_dir = ex.work_dir
        assert work_dir is not None and work_dir.is_dir()
        await ex.stop()
        assert not work_dir.exists()

    asyncio.run(main())


def test_bind_dir_is_what_the_engine_mounts(minimal_image: str, tmp_path: Path) -> None:
    work_dir, bind_dir = tmp_path / "work", tmp_path / "engine-side"
    work_dir.mkdir()
    bind_dir.mkdir()
    give_to_code_user(bind_dir)

    async def main() -> None:
        ex = DockerCommandLineCodeExecutor(minimal_image, work_dir=work_dir, bind_dir=bind_dir)
        async with ex:
            assert ex.bind_dir == bind_dir and ex.work_dir == work_dir
            await stdout_of(ex, "open('/workspace/made-inside.txt', 'w').write('x')")
        assert (bind_dir / "made-inside.txt").exists()
        assert not (work_dir / "made-inside.txt").exists()

    asyncio.run(main())


def test_extra_volumes_are_mounted_with_their_mode(minimal_image: str, tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "input.csv").write_text("a,b\n1,2\n")

    async def main() -> None:
        volumes = {str(data): {"bind": "/mnt/data", "mode": "ro"}}
        async with DockerCommandLineCodeExecutor(minimal_image, extra_volumes=volumes) as ex:
            assert await stdout_of(ex, "print(open('/mnt/data/input.csv').read(), end='')") == (
                "a,b\n1,2\n"
            )
            events = [e async for e in ex.execute("open('/mnt/data/new', 'w')")]
            errors = [e for e in events if isinstance(e, Error)]
            assert errors and "Read-only file system" in errors[0].evalue

    asyncio.run(main())


def test_extra_hosts_reach_etc_hosts(minimal_image: str) -> None:
    async def main() -> None:
        hosts = {"kb-test-host.internal": "10.11.12.13"}
        async with DockerCommandLineCodeExecutor(minimal_image, extra_hosts=hosts) as ex:
            out = await stdout_of(
                ex, "import socket\nprint(socket.gethostbyname('kb-test-host.internal'))"
            )
            assert out == "10.11.12.13\n"

    asyncio.run(main())


def test_init_command_runs_once_at_start_and_its_exports_reach_the_code(
    minimal_image: str, tmp_path: Path
) -> None:
    init = "export KB_INIT_VALUE=from-init; echo ran >> /workspace/init-runs.txt; echo noise"

    async def main() -> None:
        ex = DockerCommandLineCodeExecutor(minimal_image, work_dir=tmp_path, init_command=init)
        async with ex:
            assert await stdout_of(ex, "import os\nprint(os.environ['KB_INIT_VALUE'])") == (
                "from-init\n"
            )
            assert await stdout_of(ex, "echo $KB_INIT_VALUE", "bash") == "from-init\n"
            assert (tmp_path / "init-runs.txt").read_text() == "ran\n"
            await ex.restart()  # a new container runs it again
            assert (tmp_path / "init-runs.txt").read_text() == "ran\nran\n"

    asyncio.run(main())


@pytest.mark.parametrize("delete", [True, False])
def test_delete_tmp_files(minimal_image: str, tmp_path: Path, delete: bool) -> None:
    async def main() -> None:
        ex = DockerCommandLineCodeExecutor(
            minimal_image, work_dir=tmp_path, delete_tmp_files=delete
        )
        async with ex:
            result = await ex.execute_code_blocks(
                [CodeBlock("print('a')", "python"), CodeBlock("echo b", "sh")], None
            )
        assert result.exit_code == 0 and result.code_file is not None
        left = sorted(p.name for p in tmp_path.glob("tmp_code_*"))
        if delete:
            assert left == []
        else:
            assert len(left) == 2 and Path(result.code_file).exists()

    asyncio.run(main())


def test_auto_remove_false_keeps_the_stopped_container(
    minimal_image: str, docker_client: Any
) -> None:
    async def main() -> str:
        ex = DockerCommandLineCodeExecutor(minimal_image, auto_remove=False)
        async with ex:
            await stdout_of(ex, "print(1)")
            await ex.restart()  # the old container is replaced under the same name
            await stdout_of(ex, "print(2)")
        return ex.container_name

    name = asyncio.run(main())
    container = docker_client.containers.get(name)
    try:
        assert container.status == "exited"
        assert container.labels["kernel_bridge.managed"] == "1"
    finally:
        container.remove(force=True)


def test_auto_remove_true_removes_the_container(minimal_image: str, docker_client: Any) -> None:
    async def main() -> str:
        async with DockerCommandLineCodeExecutor(minimal_image) as ex:
            await stdout_of(ex, "print(1)")
            return ex.container_name

    name = asyncio.run(main())
    assert not docker_client.containers.list(all=True, ignore_removed=True, filters={"name": name})


def test_container_name_and_labels(minimal_image: str, docker_client: Any) -> None:
    name = f"kb-test-{uuid.uuid4().hex[:8]}"

    async def main() -> None:
        async with DockerCommandLineCodeExecutor(minimal_image, name) as ex:
            assert ex.container_name == name
            container = docker_client.containers.get(name)
            assert container.id == ex.container_id
            labels = container.labels
            assert labels["kernel_bridge.managed"] == "1"
            assert labels["kernel_bridge.pid"] == str(os.getpid())
            assert container.attrs["HostConfig"]["Init"] is True
            assert container.attrs["HostConfig"]["PidsLimit"] == 4096
        default = DockerCommandLineCodeExecutor(minimal_image)
        assert default.container_name.startswith("autogen-code-exec-")

    asyncio.run(main())


def test_limits_reach_the_engine(minimal_image: str, docker_client: Any, tmp_path: Path) -> None:
    os.chmod(tmp_path, 0o777)

    async def main() -> None:
        ex = DockerCommandLineCodeExecutor(
            minimal_image,
            work_dir=tmp_path,
            mem_limit="256m",
            cpus=0.5,
            pids_limit=64,
            network_mode="none",
            user="65534:65534",
            read_only=True,
        )
        async with ex:
            host = docker_client.containers.get(ex.container_name).attrs["HostConfig"]
            assert host["Memory"] == 256 * 1024 * 1024
            assert host["NanoCpus"] == 500_000_000
            assert host["PidsLimit"] == 64
            assert host["NetworkMode"] == "none"
            assert host["ReadonlyRootfs"] is True
            out = await stdout_of(
                ex,
                "import os, socket\nprint(os.getuid())\n"
                "try:\n    open('/etc/x', 'w')\nexcept OSError as e:\n    print(type(e).__name__)\n"
                "print(len(socket.if_nameindex()))",
            )
            assert out.splitlines() == ["65534", "OSError", "1"]  # only loopback

    asyncio.run(main())


def test_device_requests_reach_the_engine(minimal_image: str) -> None:
    request = DeviceRequest(driver="kb-test-no-such-driver", count=1, capabilities=[["gpu"]])

    async def main() -> None:
        ex = DockerCommandLineCodeExecutor(minimal_image, device_requests=[request])
        assert ex.to_config()["device_requests"] == [dict(request)]
        try:
            with pytest.raises(ExecutorStartError) as info:
                await ex.start()
        finally:
            await ex.stop()
        message = str(info.value)
        assert "device_requests" in message and "kb-test-no-such-driver" in message

    asyncio.run(main())


def test_stop_container_true_removes_it_when_the_process_exits_without_stop(
    minimal_image: str, docker_client: Any, tmp_path: Path
) -> None:
    name = _run_and_exit(minimal_image, tmp_path, stop_container=True)
    deadline = time.monotonic() + 10
    while docker_client.containers.list(all=True, ignore_removed=True, filters={"name": name}):
        assert time.monotonic() < deadline, "the container outlived its process"
        time.sleep(0.1)


def test_stop_container_false_keeps_it_running_after_the_process_exits(
    minimal_image: str, docker_client: Any, tmp_path: Path
) -> None:
    name = _run_and_exit(minimal_image, tmp_path, stop_container=False)
    try:
        container = docker_client.containers.get(name)
        assert container.status == "running"
        assert container.labels.get("kernel_bridge.linger") == "1"
    finally:
        docker_client.containers.get(name).remove(force=True)


def _run_and_exit(image: str, tmp_path: Path, *, stop_container: bool) -> str:
    """Run a script that starts an executor, runs code and exits without stop()."""
    import subprocess
    import sys

    script = tmp_path / "leave.py"
    script.write_text(
        "import asyncio, sys\n"
        "from kernel_bridge.executors.docker import DockerCommandLineCodeExecutor\n"
        "async def main():\n"
        f"    ex = DockerCommandLineCodeExecutor({image!r}, stop_container={stop_container})\n"
        "    async for e in ex.execute('print(1)'):\n"
        "        pass\n"
        "    print(ex.container_name, flush=True)\n"
        "asyncio.run(main())\n"
    )
    repo = Path(__file__).resolve().parents[3]
    env = {**os.environ, "PYTHONPATH": str(repo)}
    proc = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=120, env=env
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip().splitlines()[-1]


def test_timeout_must_be_at_least_one() -> None:
    with pytest.raises(ValueError):
        DockerCommandLineCodeExecutor(timeout=0)
    with pytest.raises(ConfigurationError):
        DockerCommandLineCodeExecutor(functions_module="not an identifier")
