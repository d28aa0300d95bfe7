"""The runtime's protocol output over a Unix socket for a local engine, and the fallbacks."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from kernel_bridge.events import Event, Stream
from kernel_bridge.executors.docker import DockerCommandLineCodeExecutor
from kernel_bridge.executors.docker import _transport as docker_transport
from kernel_bridge.executors.docker._protocol_socket import ProtocolSocket


def _texts(events: list[Event], name: str = "stdout") -> str:
    return "".join(e.text for e in events if isinstance(e, Stream) and e.name == name)


async def _run(ex: DockerCommandLineCodeExecutor, code: str) -> list[Event]:
    return [e async for e in ex.execute(code)]


@pytest.fixture
def offered(monkeypatch: pytest.MonkeyPatch) -> list[ProtocolSocket]:
    """The sockets the executor offered (to check what became of their directories)."""
    made: list[ProtocolSocket] = []
    offer = ProtocolSocket.offer.__func__  # type: ignore[attr-defined]

    def recording(cls: type[ProtocolSocket], user: str) -> ProtocolSocket | None:
        protocol = offer(cls, user)
        if protocol is not None:
            made.append(protocol)
        return protocol

    monkeypatch.setattr(ProtocolSocket, "offer", classmethod(recording))
    return made


HOSTILE = """
import os, socket
for label, action in [
    ("list", lambda: os.listdir("/run/kernel-bridge")),
    ("connect", lambda: socket.socket(socket.AF_UNIX).connect("/run/kernel-bridge/protocol.sock")),
    ("create", lambda: open("/run/kernel-bridge/x", "w")),
]:
    try:
        action()
        print(label, "allowed")
    except OSError as exc:
        print(label, "refused", type(exc).__name__)
"""


def test_local_engine_output_goes_through_the_socket_which_the_code_cannot_reach(
    minimal_image: str, offered: list[ProtocolSocket]
) -> None:
    async def main() -> None:
        ex = DockerCommandLineCodeExecutor(minimal_image)
        try:
            events = await _run(
                ex,
                "import os, sys\nprint('out', flush=True)\nprint('err', file=sys.stderr)\n"
                "os.system('echo child')\nprint('done')",
            )
            assert ex._transport is not None and ex._transport.protocol_over_socket
            assert _texts(events) == "out\nchild\ndone\n"
            assert _texts(events, "stderr") == "err\n"
            assert len(offered) == 1
            # taken at the runtime's connection: no socket, no directory left on the host
            assert not offered[0].directory.exists()
            events = await _run(ex, HOSTILE)
            lines = _texts(events).splitlines()
            assert [line.split()[:2] for line in lines] == [
                ["list", "refused"],
                ["connect", "refused"],
                ["create", "refused"],
            ], lines
            # the container's death ending the cell at once, with the protocol on the
            # socket, is test_execution.py's docker kill case (local engines use it)
        finally:
            await ex.stop()
        assert offered and all(not p.directory.exists() for p in offered)

    asyncio.run(main())


def test_a_socket_the_runtime_cannot_reach_leaves_the_protocol_on_attach(
    minimal_image: str, offered: list[ProtocolSocket], monkeypatch: pytest.MonkeyPatch
) -> None:
    # As with an engine in a VM, or a user namespace: the runtime cannot connect.
    monkeypatch.setattr(
        ProtocolSocket, "container_path", property(lambda self: "/nonexistent/protocol.sock")
    )

    async def main() -> None:
        async with DockerCommandLineCodeExecutor(minimal_image) as ex:
            events = await _run(ex, "print('over attach', flush=True)")
            assert _texts(events) == "over attach\n"
            assert ex._transport is not None and not ex._transport.protocol_over_socket
            assert len(offered) == 1
            # withdrawn at the runtime's first line on stdout
            assert not offered[0].directory.exists()

    asyncio.run(main())


def test_no_socket_for_remote_engines_or_lingering_containers(tmp_path: Path) -> None:
    remote = DockerCommandLineCodeExecutor("any", docker_host="tcp://127.0.0.1:1")
    assert remote._protocol_socket() is None
    lingering = DockerCommandLineCodeExecutor("any", stop_container=False, work_dir=tmp_path)
    assert lingering._protocol_socket() is None


def test_no_socket_where_the_users_own_volume_takes_its_place(tmp_path: Path) -> None:
    for target in ("/run/kernel-bridge", "/run/kernel-bridge/", "/run/kernel-bridge/sub"):
        volumes = {str(tmp_path): {"bind": target, "mode": "ro"}}
        ex = DockerCommandLineCodeExecutor("any", extra_volumes=volumes, work_dir=tmp_path)
        assert ex._protocol_socket() is None, target
    elsewhere = {str(tmp_path): {"bind": "/run/kernel-bridge-data", "mode": "ro"}}
    ex = DockerCommandLineCodeExecutor("any", extra_volumes=elsewhere, work_dir=tmp_path)
    offered = ex._protocol_socket()
    assert offered is not None
    offered.close()


def test_no_socket_when_the_attach_stream_is_read_by_a_thread(
    minimal_image: str, offered: list[ProtocolSocket], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(docker_transport, "_loop_can_read", lambda sock: False)

    async def main() -> Any:
        async with DockerCommandLineCodeExecutor(minimal_image) as ex:
            events = await _run(ex, "print('threaded')")
            assert _texts(events) == "threaded\n"
            assert ex._transport is not None and not ex._transport.protocol_over_socket
            assert offered and not offered[0].directory.exists()

    asyncio.run(main())
