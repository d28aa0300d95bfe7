"""The Docker executor on a remote engine: a second dockerd on tcp://127.0.0.1 with TLS.

The engine is named either by the kernelspec (docker_host + tls_cert_path, no
environment) or by DOCKER_HOST/DOCKER_TLS_VERIFY/DOCKER_CERT_PATH. On a remote engine
no path of the kernel's machine is mounted: /workspace is a volume on the engine and
files move with upload_files/download_files. (The conformance, interrupt, restart and
streaming suites run against this engine too: tests/kernel, spec kbtest-docker-remote.)
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from _support.environments import MINIMAL_IMAGE as MINIMAL
from _support.kernel_client import run_cell, start_kernel
from _support.services import REMOTE_ENGINE
from _support.specs import DOCKER, DOCKER_REMOTE, DOCKER_REMOTE_ENV

from kernel_bridge.errors import ConfigurationError
from kernel_bridge.events import Error, Finished, Stream
from kernel_bridge.executors.docker import DockerCommandLineCodeExecutor


@pytest.fixture(scope="module")
def remote_client(docker_ready: None) -> Iterator[Any]:
    """A client of the TLS engine (started on first use, stopped at the session's end)."""
    client = REMOTE_ENGINE.ensure().client()
    yield client
    client.close()


def _remote_executor(**kwargs: Any) -> DockerCommandLineCodeExecutor:
    return DockerCommandLineCodeExecutor(
        MINIMAL,
        docker_host=REMOTE_ENGINE.host,
        tls_cert_path=str(REMOTE_ENGINE.certs),
        network_mode="none",
        **kwargs,
    )


def _containers_of(client: Any, pid: int) -> list[Any]:
    filters = {"label": f"kernel_bridge.pid={pid}"}
    return list(client.containers.list(all=True, ignore_removed=True, filters=filters))


async def _stdout(ex: DockerCommandLineCodeExecutor, code: str) -> str:
    events = [e async for e in ex.execute(code)]
    assert isinstance(events[-1], Finished) and events[-1].ok, events
    return "".join(e.text for e in events if isinstance(e, Stream) and e.name == "stdout")


def test_workspace_is_a_volume_and_files_move_through_the_api(
    remote_client: Any, tmp_path: Path
) -> None:
    volumes_before = {v.name for v in remote_client.volumes.list()}

    async def main() -> None:
        work_dir = tmp_path / "work"
        ex = _remote_executor(work_dir=work_dir, user="1000:1000", read_only=True)
        try:
            out = await _stdout(
                ex,
                "import os\nopen('made-there.txt', 'w').write('from the engine')\n"
                "print(os.getcwd(), os.getuid())",
            )
            assert out == "/workspace 1000\n"  # non-root, read-only root: workspace writable
            container = remote_client.containers.get(ex.container_id)
            mounts = container.attrs["Mounts"]
            assert [m["Type"] for m in mounts] == ["volume"], mounts  # no host path
            assert mounts[0]["Destination"] == "/workspace"
            assert not (work_dir / "made-there.txt").exists()  # nothing shared by path
            assert await ex.get_file_list() == ["made-there.txt"]
            [path] = await ex.download_files(["made-there.txt"])
            assert Path(path).read_text() == "from the engine"
            (work_dir / "sent.txt").write_text("from the kernel's machine")
            await ex.upload_files(["sent.txt"])
            assert await _stdout(ex, "print(open('sent.txt').read())") == (
                "from the kernel's machine\n"
            )
        finally:
            await ex.stop()

    asyncio.run(main())
    assert not _containers_of(remote_client, os.getpid())
    assert {v.name for v in remote_client.volumes.list()} == volumes_before  # volume gone too


def test_kernelspec_options_and_environment_each_name_an_engine(
    remote_client: Any, docker_client: Any
) -> None:
    """Two specs, two engines, no environment variables: and DOCKER_* still work."""
    kernels = [start_kernel(s.ready()) for s in (DOCKER, DOCKER_REMOTE, DOCKER_REMOTE_ENV)]
    try:
        for _, kc in kernels:
            run = run_cell(kc, "import socket\nprint(socket.gethostname())", timeout=120)
            assert run.status == "ok", [m["content"] for m in run.outputs]
        pids = [km.provisioner.process.pid for km, _ in kernels]  # type: ignore[union-attr]
        local, remote, remote_env = pids
        assert _containers_of(docker_client, local) and not _containers_of(remote_client, local)
        assert _containers_of(remote_client, remote) and not _containers_of(docker_client, remote)
        assert _containers_of(remote_client, remote_env)
        assert not _containers_of(docker_client, remote_env)
    finally:
        for km, kc in kernels:
            kc.stop_channels()
            km.shutdown_kernel()


def test_gc_cleans_this_hosts_orphans_on_a_remote_engine(remote_client: Any) -> None:
    import socket

    from kernel_bridge.cli import main

    dead = {  # a kernel of this host that no longer runs: pid 2**22 + 1 is beyond pid_max
        "kernel_bridge.managed": "1",
        "kernel_bridge.host": socket.gethostname(),
        "kernel_bridge.pid": str(2**22 + 1),
        "kernel_bridge.started": "1",
    }
    other_host = {**dead, "kernel_bridge.host": "another-machine"}
    made = [
        remote_client.containers.create(MINIMAL, "true", labels=labels, network_mode="none")
        for labels in (dead, other_host)
    ]
    try:
        code = main(["gc", "--docker-host", REMOTE_ENGINE.host,
                     "--tls-cert-path", str(REMOTE_ENGINE.certs)])  # fmt: skip
        assert code == 0
        left = {c.id for c in remote_client.containers.list(all=True, ignore_removed=True)}
        assert made[0].id not in left  # the orphan of this host is gone
        assert made[1].id in left  # another machine's container is not ours to judge
    finally:
        for container in made:
            with contextlib.suppress(Exception):
                container.remove(force=True)


def test_engine_without_client_certificate_gives_one_clear_error(remote_client: Any) -> None:
    async def main() -> list[Any]:
        ex = DockerCommandLineCodeExecutor(MINIMAL, docker_host=REMOTE_ENGINE.host)
        try:
            return [e async for e in ex.execute("print(1)")]
        finally:
            await ex.stop()

    events = asyncio.run(main())
    errors = [e for e in events if isinstance(e, Error)]
    assert len(errors) == 1, events
    assert f"cannot reach the Docker engine at {REMOTE_ENGINE.host}" in errors[0].evalue
    assert "tls_cert_path" in errors[0].evalue


def test_certificate_directory_is_checked(tmp_path: Path) -> None:
    (tmp_path / "ca.pem").write_text("not used")
    with pytest.raises(ConfigurationError) as info:
        asyncio.run(
            DockerCommandLineCodeExecutor(
                MINIMAL, docker_host="tcp://127.0.0.1:2376", tls_cert_path=str(tmp_path)
            ).start()
        )
    assert "cert.pem, key.pem" in str(info.value)
    with pytest.raises(ConfigurationError) as needs_host:
        DockerCommandLineCodeExecutor(MINIMAL, tls_cert_path=str(tmp_path))
    assert "needs docker_host" in str(needs_host.value)
