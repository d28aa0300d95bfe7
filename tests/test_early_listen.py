"""The kernel's ports listened on early, then handed to ZMQ sockets (real sockets).

A frontend's ZMQ socket that connected while only the early listener existed has its
messages delivered once the kernel's ZMQ socket takes the listener over; a listener
nobody takes is closed so the port can be bound again; anything unusual is left to ZMQ.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
import zmq

from kernel_bridge import _early_listen

PORT_KEYS = ("shell_port", "control_port", "stdin_port", "iopub_port")


def _free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    for sock in sockets:
        sock.bind(("127.0.0.1", 0))
    ports = [sock.getsockname()[1] for sock in sockets]
    for sock in sockets:
        sock.close()
    return ports


def _connection_file(tmp_path: Path, **overrides: object) -> tuple[Path, dict[str, int]]:
    ports = dict(zip(PORT_KEYS, _free_ports(len(PORT_KEYS)), strict=True))
    info: dict[str, object] = {"ip": "127.0.0.1", "transport": "tcp", "key": "k", **ports}
    info.update(overrides)
    path = tmp_path / "kernel-test.json"
    path.write_text(json.dumps(info))
    return path, ports


def _bindable(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


@pytest.fixture(autouse=True)
def released() -> Iterator[None]:
    yield
    _early_listen.release()


@pytest.fixture
def context() -> Iterator[zmq.Context[zmq.Socket[bytes]]]:
    ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
    yield ctx
    ctx.destroy(linger=0)


def test_messages_sent_before_the_kernel_binds_arrive_once_zmq_takes_over(
    tmp_path: Path, context: zmq.Context[zmq.Socket[bytes]]
) -> None:
    path, ports = _connection_file(tmp_path)
    _early_listen.listen(["-f", str(path), "--BridgeKernel.executor=local"])
    assert not any(_bindable(port) for port in ports.values())  # all four listen
    frontend = context.socket(zmq.DEALER)
    frontend.connect(f"tcp://127.0.0.1:{ports['shell_port']}")
    frontend.send(b"kernel_info_request")  # queued: only the plain listener exists
    subscriber = context.socket(zmq.SUB)
    subscriber.setsockopt(zmq.SUBSCRIBE, b"")
    subscriber.connect(f"tcp://127.0.0.1:{ports['iopub_port']}")

    shell = context.socket(zmq.ROUTER)
    fd = _early_listen.take("tcp", "127.0.0.1", ports["shell_port"])
    assert fd is not None
    shell.setsockopt(zmq.USE_FD, fd)
    shell.bind(f"tcp://127.0.0.1:{ports['shell_port']}")
    assert shell.poll(10_000), "the queued message never arrived"
    identity, body = shell.recv_multipart()
    assert body == b"kernel_info_request"
    shell.send_multipart([identity, b"reply"])
    assert frontend.poll(10_000) and frontend.recv() == b"reply"

    iopub = context.socket(zmq.XPUB)
    fd = _early_listen.take("tcp", "127.0.0.1", ports["iopub_port"])
    assert fd is not None
    iopub.setsockopt(zmq.USE_FD, fd)
    iopub.bind(f"tcp://127.0.0.1:{ports['iopub_port']}")
    assert iopub.poll(10_000) and iopub.recv() == b"\x01"  # the early subscription
    iopub.send(b"status")
    assert subscriber.poll(10_000) and subscriber.recv() == b"status"

    assert _early_listen.take("tcp", "127.0.0.1", ports["shell_port"]) is None  # once
    _early_listen.release()
    assert _bindable(ports["control_port"]) and _bindable(ports["stdin_port"])


def test_a_port_taken_for_another_address_is_released_for_zmqs_own_bind(tmp_path: Path) -> None:
    path, ports = _connection_file(tmp_path)
    _early_listen.listen(["-f", str(path)])
    assert _early_listen.take("tcp", "0.0.0.0", ports["shell_port"]) is None
    assert _bindable(ports["shell_port"])
    assert not _bindable(ports["stdin_port"])


@pytest.mark.parametrize(
    "overrides",
    [{"transport": "ipc"}, {"ip": "localhost"}, {"ip": "::1"}, {"shell_port": 0}],
    ids=["ipc", "host-name", "ipv6", "port-zero"],
)
def test_anything_unusual_is_left_to_zmq(tmp_path: Path, overrides: dict[str, object]) -> None:
    path, ports = _connection_file(tmp_path, **overrides)
    _early_listen.listen(["-f", str(path)])
    if "shell_port" in overrides:  # the others are listened on; port 0 is not
        assert not _bindable(ports["stdin_port"])
        assert _early_listen.take("tcp", "127.0.0.1", 0) is None
    else:
        assert all(_bindable(port) for port in ports.values())


def test_no_connection_file_or_a_port_in_use_leaves_the_port_alone(tmp_path: Path) -> None:
    _early_listen.listen(["--BridgeKernel.executor=local"])
    _early_listen.listen(["-f", str(tmp_path / "missing.json")])
    path, ports = _connection_file(tmp_path)
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", ports["shell_port"]))
        busy.listen()
        _early_listen.listen([f"--f={path}"])
        assert _early_listen.take("tcp", "127.0.0.1", ports["shell_port"]) is None
    assert _early_listen.take("tcp", "127.0.0.1", ports["stdin_port"]) is not None
