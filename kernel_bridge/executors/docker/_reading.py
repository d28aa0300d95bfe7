"""Turning the bytes a container sends into the runtime's protocol lines.

Three small parts, used by :class:`~kernel_bridge.executors.docker._transport.ContainerTransport`
whichever way it reads (the event loop polling the attach socket or the protocol socket,
or a thread reading a TLS or wrapped attach socket):

- :class:`FrameSplitter` cuts Docker's multiplexed attach stream into frames (an 8-byte
  header: stream type, 3 zero bytes, big-endian length; then the payload);
- :class:`LineSplitter` cuts a byte stream into newline-terminated lines;
- :class:`LoopReader` polls one non-blocking socket from the event loop and can be
  paused, which is how the transport leaves output it cannot take yet in the socket.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import struct
from collections.abc import Callable, Iterator
from typing import Any

__all__ = [
    "STDERR",
    "STDOUT",
    "FrameSplitter",
    "LineSplitter",
    "LineTooLongError",
    "LoopReader",
]

log = logging.getLogger(__name__)

STDOUT = 1
STDERR = 2
HEADER = struct.Struct(">BxxxL")
"""A frame's header: stream type, three zero bytes, payload length."""


class LineTooLongError(Exception):
    """A line grew past the splitter's limit (the stream is then given up)."""


class LineSplitter:
    """Cuts a byte stream into lines that end with ``\\n``, none longer than ``max_line``.

    A line's start is kept as the chunks it came in and joined once when its newline
    arrives: a large message (an image display is one line of a megabyte or more) is not
    re-copied at every chunk.
    """

    def __init__(self, max_line: int) -> None:
        self._parts: list[bytes | bytearray] = []
        self._held = 0
        self._max_line = max_line

    def feed(self, data: bytes | bytearray) -> Iterator[bytes]:
        """Yield the lines ``data`` completes; keep what follows the last newline.

        Raises :class:`LineTooLongError` once a line is longer than ``max_line``.
        """
        start = 0
        while True:
            end = data.find(b"\n", start)
            stop = len(data) if end < 0 else end + 1
            self._held += stop - start
            if self._held > self._max_line:
                self._parts = []
                raise LineTooLongError(f"a line longer than {self._max_line} bytes")
            if end < 0:
                if start < len(data):
                    self._parts.append(data if start == 0 else data[start:])
                return
            self._parts.append(data[start:stop])
            line = b"".join(self._parts)
            self._parts = []
            self._held = 0
            yield line
            start = stop

    def rest(self) -> bytes:
        """Return (and forget) the unterminated tail: at the end of the stream it is a line."""
        rest = b"".join(self._parts)
        self._parts = []
        self._held = 0
        return rest


class FrameSplitter:
    """Cuts Docker's multiplexed attach stream into ``(stream type, payload)`` frames."""

    def __init__(self) -> None:
        self._inbox = bytearray()

    def feed(self, chunk: bytes) -> list[tuple[int, bytes]]:
        """Return the frames ``chunk`` completes; keep the start of an incomplete one."""
        self._inbox += chunk
        inbox = self._inbox
        frames: list[tuple[int, bytes]] = []
        start = 0
        with memoryview(inbox) as view:  # one copy per frame, none of the rest of the inbox
            while len(inbox) - start >= HEADER.size:
                kind, size = HEADER.unpack_from(inbox, start)
                body = start + HEADER.size
                if len(inbox) - body < size:
                    break
                frames.append((kind, bytes(view[body : body + size])))
                start = body + size
        if start == len(inbox):
            self._inbox = bytearray()  # let a large buffer go
        else:
            del inbox[:start]
        return frames


class LoopReader:
    """Reads one non-blocking socket in the event loop, ``recv_size`` bytes at a time.

    Each chunk goes to ``on_chunk``; the end of the stream, a failed read or a socket the
    loop cannot poll goes to ``on_end`` (once). :meth:`pause` leaves whatever else the
    peer sends in the socket until :meth:`resume`. Loop thread only.
    """

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        sock: Any,
        *,
        recv_size: int,
        on_chunk: Callable[[bytes], None],
        on_end: Callable[[], None],
        what: str,
    ) -> None:
        self._loop = loop
        self._sock = sock
        self._recv_size = recv_size
        self._on_chunk = on_chunk
        self._on_end = on_end
        self._what = what
        self._reading = False
        self._ended = False

    def resume(self) -> None:
        """Start (or go on) reading."""
        if self._reading or self._ended:
            return
        try:
            self._loop.add_reader(self._sock.fileno(), self._readable)
        except (OSError, ValueError) as exc:
            log.debug("%s unreadable: %s", self._what, exc)
            self._end()
            return
        self._reading = True

    def pause(self) -> None:
        """Stop reading until :meth:`resume`."""
        if self._reading:
            self._reading = False
            with contextlib.suppress(OSError, ValueError):
                self._loop.remove_reader(self._sock.fileno())

    def close(self) -> None:
        """Stop reading for good, without calling ``on_end``."""
        self.pause()
        self._ended = True

    def _end(self) -> None:
        self.pause()
        if not self._ended:
            self._ended = True
            self._on_end()

    def _readable(self) -> None:
        try:
            chunk = self._sock.recv(self._recv_size)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            log.debug("%s failed: %s", self._what, exc)
            chunk = b""
        if chunk:
            self._on_chunk(chunk)
        else:
            self._end()
