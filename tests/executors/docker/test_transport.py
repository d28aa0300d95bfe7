"""Docker's multiplexed attach stream is split into protocol lines intact (real socket pair)."""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import socket
import struct
import threading

import pytest

from kernel_bridge.executors.docker import _transport as _docker_transport
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
