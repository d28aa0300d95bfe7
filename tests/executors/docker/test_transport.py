"""Docker's multiplexed attach stream is split into protocol lines intact (real socket pair)."""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import socket
import struct
import threading

from kernel_bridge.executors.docker._transport import ContainerTransport


def _frame(kind: int, payload: bytes) -> bytes:
    return struct.pack(">BxxxL", kind, len(payload)) + payload


def test_lines_spanning_many_frames_arrive_whole_and_stderr_is_kept_apart() -> None:
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
        transport = ContainerTransport(
            None,
            "0" * 64,
            ours,
            iter(()),
            remove_on_kill=False,
            mem_limit=None,
            loop=asyncio.get_running_loop(),
        )
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
