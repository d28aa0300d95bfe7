"""Docker's multiplexed attach stream is split into protocol lines intact (real socket pair)."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import socket
import stat
import struct
import threading

import pytest

from kernel_bridge.executors.docker import _transport as _docker_transport
from kernel_bridge.executors.docker._protocol_socket import ProtocolSocket
from kernel_bridge.executors.docker._transport import (
    _PENDING_LINES,
    _RECV_SIZE,
    ContainerTransport,
)


def _frame(kind: int, payload: bytes) -> bytes:
    return struct.pack(">BxxxL", kind, len(payload)) + payload


def _transport(sock: socket.socket) -> ContainerTransport:
    return ContainerTransport(
        None,
        "0" * 64,
        sock,
        iter(()),
        remove_on_kill=False,
        mem_limit=None,
        loop=asyncio.get_running_loop(),
    )


@pytest.fixture(params=["loop", "thread"])
def reader(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Read by the event loop (plain sockets) or by a thread (TLS, wrapped sockets)."""
    if request.param == "thread":
        monkeypatch.setattr(_docker_transport, "_loop_can_read", lambda sock: False)
    return str(request.param)


def test_lines_spanning_many_frames_arrive_whole_and_stderr_is_kept_apart(reader: str) -> None:
    big = json.dumps({"type": "display", "data": {"image/png": os.urandom(1 << 20).hex()}})
    lines = [b'{"type":"ready"}\n', big.encode() + b"\n", b'{"type":"done"}\n']
    stream = b"".join(lines)
    # Docker's frame sizes do not follow line boundaries: cut at odd places, with
    # diagnostics (stderr frames) in between and one empty frame.
    frames = [_frame(1, b"")]
    cuts = [0, 5, 17, 40_000, 72_001, 72_002, *range(100_000, len(stream), 32_768), len(stream)]
    for start, end in itertools.pairwise(cuts):
        frames.append(_frame(1, stream[start:end]))
        frames.append(_frame(2, b"diag "))
    ours, theirs = socket.socketpair()

    async def read_all() -> list[bytes]:
        transport = _transport(ours)
        assert transport._loop_reads is (reader == "loop")
        transport.start_threads()
        got = []
        while line := await transport.read_line():
            got.append(line)
        assert transport._stderr_tail.startswith(b"diag diag")
        return got

    def feed() -> None:
        theirs.sendall(b"".join(frames))
        theirs.close()

    feeder = threading.Thread(target=feed)
    feeder.start()
    try:
        got = asyncio.run(asyncio.wait_for(read_all(), 30))
    finally:
        feeder.join()
        ours.close()
    assert got == lines


def test_a_slow_reader_holds_few_lines_and_writes_arrive_whole(reader: str) -> None:
    line = b"x" * 1023 + b"\n"
    count = 3000  # 3 MB: far more than the socket buffers hold
    ours, theirs = socket.socketpair()
    received = bytearray()

    def feed() -> None:
        theirs.sendall(b"".join(_frame(1, line * 10) for _ in range(count // 10)))
        theirs.shutdown(socket.SHUT_WR)
        while chunk := theirs.recv(1 << 16):
            received.extend(chunk)

    message = os.urandom(1 << 20)

    async def read_slowly() -> tuple[int, int]:
        transport = _transport(ours)
        transport.start_threads()
        # 1 MiB sent while lines are pending (the runtime reads its input meanwhile)
        writing = asyncio.ensure_future(transport.write(message))
        got = most_waiting = 0
        while await transport.read_line() == line:
            got += 1
            most_waiting = max(most_waiting, transport._lines.qsize())
            await asyncio.sleep(0)  # let the reader run between lines, as a busy kernel does
        await writing
        await transport.close()
        return got, most_waiting

    feeder = threading.Thread(target=feed)
    feeder.start()
    try:
        got, most_waiting = asyncio.run(asyncio.wait_for(read_slowly(), 60))
    finally:
        ours.close()
        feeder.join(30)
    assert got == count
    assert received == message
    # never more waiting than the limit plus what one read (and the frame it finishes) holds
    assert most_waiting <= _PENDING_LINES + 2 * _RECV_SIZE // len(line)


# ---------------------------------------------------------------------------------------
# the protocol over a Unix socket (local engines)


def _own_user() -> str:
    return f"{os.getuid()}:{os.getgid()}"


def _socket_transport(attach: socket.socket, protocol: ProtocolSocket) -> ContainerTransport:
    return ContainerTransport(
        None,
        "0" * 64,
        attach,
        iter(()),
        remove_on_kill=False,
        mem_limit=None,
        loop=asyncio.get_running_loop(),
        protocol=protocol,
    )


def test_the_runtimes_connection_carries_the_protocol_and_attach_stdout_is_ignored() -> None:
    protocol = ProtocolSocket.offer(_own_user())
    assert protocol is not None
    path = protocol.directory / protocol.NAME
    assert stat.S_IMODE(os.stat(protocol.directory).st_mode) == 0o711
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    big = json.dumps({"type": "display", "data": {"text/plain": "y" * 300_000}}).encode() + b"\n"
    lines = [b'{"type":"ready"}\n', big, b'{"type":"done"}\n']
    attach, theirs = socket.socketpair()
    runtime = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)

    async def read_all() -> tuple[list[bytes], ContainerTransport]:
        transport = _socket_transport(attach, protocol)
        transport.start_threads()
        runtime.connect(str(path))
        got = []

        def feed() -> None:
            stream = b"".join(lines)
            for start in range(0, len(stream), 7_777):  # cut anywhere, like any stream
                runtime.sendall(stream[start : start + 7_777])
            # what reaches the container's stdout (not the runtime) is no protocol now
            theirs.sendall(_frame(1, b'{"type":"done","forged":true}\n') + _frame(2, b"diag"))
            runtime.close()

        feeder = threading.Thread(target=feed)
        feeder.start()
        try:
            while line := await transport.read_line():
                got.append(line)
                assert transport.protocol_over_socket
        finally:
            await asyncio.to_thread(feeder.join)
        # the socket and its directory are gone once the runtime connected
        assert not protocol.directory.exists()
        await transport.close()
        return got, transport

    try:
        got, _transport_used = asyncio.run(asyncio.wait_for(read_all(), 30))
    finally:
        theirs.close()
        attach.close()
        runtime.close()
        protocol.close()
    assert got == lines


def test_a_slow_reader_holds_few_lines_from_the_socket() -> None:
    protocol = ProtocolSocket.offer(_own_user())
    assert protocol is not None
    line = b"x" * 1023 + b"\n"
    count = 3000  # 3 MB: far more than the socket buffers hold
    attach, theirs = socket.socketpair()
    runtime = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)

    async def read_slowly() -> tuple[int, int]:
        transport = _socket_transport(attach, protocol)
        transport.start_threads()
        runtime.connect(str(protocol.directory / protocol.NAME))

        def feed() -> None:
            runtime.sendall(line * count)
            runtime.close()

        feeder = threading.Thread(target=feed)
        feeder.start()
        got = most_waiting = 0
        while await transport.read_line() == line:
            got += 1
            most_waiting = max(most_waiting, transport._lines.qsize())
            await asyncio.sleep(0)
        await asyncio.to_thread(feeder.join)
        await transport.close()
        return got, most_waiting

    try:
        got, most_waiting = asyncio.run(asyncio.wait_for(read_slowly(), 60))
    finally:
        theirs.close()
        attach.close()
        runtime.close()
        protocol.close()
    assert got == count
    assert most_waiting <= _PENDING_LINES + _RECV_SIZE // len(line) + 1


def test_stdout_output_means_no_socket_and_the_socket_is_withdrawn() -> None:
    protocol = ProtocolSocket.offer(_own_user())
    assert protocol is not None
    path = protocol.directory / protocol.NAME
    attach, theirs = socket.socketpair()

    async def read_first() -> bytes:
        transport = _socket_transport(attach, protocol)
        transport.start_threads()
        theirs.sendall(_frame(1, b'{"type":"ready"}\n'))
        first = await transport.read_line()
        assert not transport.protocol_over_socket
        # connecting now (say, code in the session) finds nothing
        late = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        with pytest.raises(OSError):
            late.connect(str(path))
        late.close()
        theirs.close()
        assert await transport.read_line() == b""
        await transport.close()
        return first

    try:
        first = asyncio.run(asyncio.wait_for(read_first(), 30))
    finally:
        attach.close()
        protocol.close()
    assert first == b'{"type":"ready"}\n'
    assert not protocol.directory.exists()


@pytest.mark.skipif(os.geteuid() != 0, reason="making a socket another user's needs root")
def test_a_connection_from_another_user_is_refused() -> None:
    protocol = ProtocolSocket.offer("4242:4242")
    assert protocol is not None
    try:
        path = protocol.directory / protocol.NAME
        assert os.stat(path).st_uid == 4242
        intruder = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        intruder.connect(str(path))  # root may connect; the peer check still says no
        conn, _ = protocol.listener.accept()
        assert not protocol.peer_allowed(conn)
        conn.close()
        intruder.close()
    finally:
        protocol.close()
    assert not protocol.directory.exists()


def test_no_socket_for_a_user_name() -> None:
    assert ProtocolSocket.offer("jovyan") is None


def test_output_on_stdout_before_a_waiting_connection_is_not_protocol() -> None:
    # e.g. an image's sitecustomize printing before the runtime starts: the runtime's
    # connection, already waiting, still carries the protocol.
    protocol = ProtocolSocket.offer(_own_user())
    assert protocol is not None
    attach, theirs = socket.socketpair()
    runtime = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)

    async def read_first() -> tuple[bytes, bool]:
        runtime.connect(str(protocol.directory / protocol.NAME))
        theirs.sendall(_frame(1, b"hello from the image\n"))
        runtime.sendall(b'{"type":"ready"}\n')
        transport = _socket_transport(attach, protocol)
        transport.start_threads()
        first = await transport.read_line()
        over_socket = transport.protocol_over_socket
        runtime.close()
        assert await transport.read_line() == b""
        await transport.close()
        return first, over_socket

    try:
        first, over_socket = asyncio.run(asyncio.wait_for(read_first(), 30))
    finally:
        theirs.close()
        attach.close()
        runtime.close()
        protocol.close()
    assert first == b'{"type":"ready"}\n' and over_socket


def test_a_line_over_the_limit_ends_the_protocol_instead_of_growing(
    reader: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The protocol descriptor is within the session's reach: a line without end must not
    grow in the kernel's memory. The channel sees the end of the runtime's output."""
    monkeypatch.setattr(_docker_transport, "MAX_LINE_BYTES", 4096)
    ours, theirs = socket.socketpair()

    def feed() -> None:
        with contextlib.suppress(OSError):  # the kernel side may close first
            theirs.sendall(_frame(1, b'{"type":"ready"}\n'))
            for _ in range(100):  # 100 KB, no newline
                theirs.sendall(_frame(1, b"y" * 1000))
            theirs.sendall(_frame(1, b'\n{"type":"done"}\n'))
        theirs.close()

    async def read_all() -> list[bytes]:
        transport = _transport(ours)
        transport.start_threads()
        got = []
        while line := await transport.read_line():
            got.append(line)
        assert await transport.read_line() == b""
        await transport.close()
        return got

    feeder = threading.Thread(target=feed)
    feeder.start()
    try:
        got = asyncio.run(asyncio.wait_for(read_all(), 30))
    finally:
        feeder.join()
        ours.close()
    assert got == [b'{"type":"ready"}\n']
