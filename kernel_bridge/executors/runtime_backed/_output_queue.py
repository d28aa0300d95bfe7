"""The queue between the runtime channel's reader and the request that takes its events.

The channel's pump reads the runtime's messages as fast as they come; the kernel takes a
request's events only as fast as it can publish them. Without a bound, a cell writing
megabytes would pile up in this queue whenever publishing lags. :class:`OutputQueue`
counts the output bytes it holds, and the pump stops reading while it holds more than
its limit, so the rest of the output waits in the runtime's pipe or socket, outside the
kernel. Used by :class:`~kernel_bridge.executors.runtime_backed.channel.RuntimeChannel`.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Any

__all__ = ["OutputQueue", "output_size"]


def output_size(msg: object) -> int:
    """Characters of output a runtime message carries (stream text, display data)."""
    if not isinstance(msg, dict):
        return 0
    text = msg.get("text")
    if isinstance(text, str):
        return len(text)
    data = msg.get("data")
    if isinstance(data, dict):
        return sum(len(value) for value in data.values() if isinstance(value, str))
    return 0


class OutputQueue:
    """A FIFO of one request's runtime messages that knows when it holds too much output.

    The pump :meth:`put`\\ s and, while :meth:`full`, waits in :meth:`wait_for_room`; the
    request :meth:`get`\\ s. :meth:`release` wakes the pump without room (a reply it must
    read is awaited, or the request ended).
    """

    def __init__(self, limit: int) -> None:
        self._items: deque[tuple[Any, int]] = deque()
        self._bytes = 0
        self._limit = limit
        self._arrived = asyncio.Event()
        self._room = asyncio.Event()
        self._room.set()

    def put(self, item: Any) -> None:
        """Add an item (never waits)."""
        size = output_size(item)
        self._items.append((item, size))
        self._bytes += size
        self._arrived.set()

    def full(self) -> bool:
        """True while the output held is over the limit."""
        return self._bytes > self._limit

    async def get(self) -> Any:
        """Remove and return the oldest item, waiting for one."""
        while not self._items:
            self._arrived.clear()
            await self._arrived.wait()
        item, size = self._items.popleft()
        self._bytes -= size
        if not self.full():
            self._room.set()
        return item

    async def wait_for_room(self) -> None:
        """Wait until :meth:`get` made room or :meth:`release` was called."""
        if self.full():
            self._room.clear()
            await self._room.wait()

    def release(self) -> None:
        """Wake a pump waiting in :meth:`wait_for_room` whether or not there is room."""
        self._room.set()
