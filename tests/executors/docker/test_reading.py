"""Frames, lines and the pausable loop reader (kernel_bridge/executors/docker/_reading.py).

Real socket pairs; no Docker needed.
"""

from __future__ import annotations

import asyncio
import socket

import pytest

from kernel_bridge.executors.docker._reading import (
    HEADER,
    STDERR,
    STDOUT,
    FrameSplitter,
    LineSplitter,
    LineTooLongError,
    LoopReader,
)


def test_lines_are_cut_at_newlines_whatever_the_chunks() -> None:
    stream = b"first\n" + b"x" * 100_000 + b"\nthird\nunterminated"
    for cut in (1, 7, 4096, 65536):
        splitter = LineSplitter(max_line=1 << 20)
        lines = []
        for start in range(0, len(stream), cut):
            lines.extend(splitter.feed(stream[start : start + cut]))
        assert lines == [b"first\n", b"x" * 100_000 + b"\n", b"third\n"]
        assert splitter.rest() == b"unterminated"
        assert splitter.rest() == b""


def test_frames_are_cut_by_their_headers_whatever_the_chunks() -> None:
    frames = [(STDOUT, b""), (STDOUT, b"a" * 70_000), (STDERR, b"diag"), (STDOUT, b"end\n")]
    stream = b"".join(HEADER.pack(kind, len(body)) + body for kind, body in frames)
    for cut in (1, 5, 8, 9, 65536):
        splitter = FrameSplitter()
        got = []
        for start in range(0, len(stream), cut):
            got.extend(splitter.feed(stream[start : start + cut]))
        assert got == frames


def test_a_frame_not_yet_whole_is_kept_for_the_next_chunk() -> None:
    splitter = FrameSplitter()
    frame = HEADER.pack(STDOUT, 6) + b"hello\n"
    assert splitter.feed(frame[:10]) == []
    assert splitter.feed(frame[10:] + frame[:3]) == [(STDOUT, b"hello\n")]
    assert splitter.feed(frame[3:]) == [(STDOUT, b"hello\n")]


def test_the_loop_reader_delivers_pauses_and_ends_once() -> None:
    async def main() -> None:
        ours, theirs = socket.socketpair()
        ours.setblocking(False)
        loop = asyncio.get_running_loop()
        chunks: list[bytes] = []
        ends: list[bool] = []
        arrived = asyncio.Event()
        ended = asyncio.Event()

        def on_chunk(chunk: bytes) -> None:
            chunks.append(chunk)
            arrived.set()

        def on_end() -> None:
            ends.append(True)
            ended.set()

        reader = LoopReader(loop, ours, recv_size=4, on_chunk=on_chunk, on_end=on_end, what="t")
        try:
            reader.resume()
            theirs.sendall(b"abcdef")
            while b"".join(chunks) != b"abcdef":
                arrived.clear()
                await asyncio.wait_for(arrived.wait(), 5)
            assert all(len(chunk) <= 4 for chunk in chunks)
            reader.pause()
            theirs.sendall(b"held")
            for _ in range(20):  # not registered with the loop: it cannot be called
                await asyncio.sleep(0)
            assert b"".join(chunks) == b"abcdef"
            reader.resume()
            while b"".join(chunks) != b"abcdefheld":
                arrived.clear()
                await asyncio.wait_for(arrived.wait(), 5)
            theirs.close()
            await asyncio.wait_for(ended.wait(), 5)
            reader.resume()  # after the end: nothing more happens
            await asyncio.sleep(0)
            assert ends == [True]
        finally:
            reader.close()
            ours.close()

    asyncio.run(main())


def test_a_closed_loop_reader_reports_no_end() -> None:
    async def main() -> None:
        ours, theirs = socket.socketpair()
        ours.setblocking(False)
        ends: list[bool] = []
        reader = LoopReader(
            asyncio.get_running_loop(),
            ours,
            recv_size=4,
            on_chunk=lambda chunk: None,
            on_end=lambda: ends.append(True),
            what="t",
        )
        reader.resume()
        reader.close()
        theirs.close()
        for _ in range(20):
            await asyncio.sleep(0)
        assert ends == []
        ours.close()

    asyncio.run(main())


def test_a_line_longer_than_the_limit_is_refused() -> None:
    splitter = LineSplitter(max_line=10)
    assert list(splitter.feed(b"0123456789")) == []  # 10 bytes held: at the limit
    with pytest.raises(LineTooLongError):
        list(splitter.feed(b"x"))
    exact = LineSplitter(max_line=10)
    assert list(exact.feed(b"012345678\nabc")) == [b"012345678\n"]
    with pytest.raises(LineTooLongError):
        list(LineSplitter(max_line=10).feed(b"0123456789\n"))  # 11 with its newline
