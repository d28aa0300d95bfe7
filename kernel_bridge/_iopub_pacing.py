"""Pacing of large output against ipykernel's IOPub thread.

The kernel hands every IOPub message to ipykernel's IOPub thread, which sends it on its
own schedule. A cell that writes megabytes makes the kernel's event loop publish faster
than that thread sends, and the messages waiting for it (each a serialized copy of up to
64 KiB of output) are the kernel's largest allocation during such a cell: a dozen of them
at once were seen with a 10 MiB cell. :class:`IOPubPacer` bounds that backlog: after a
large message the loop waits until the IOPub thread has caught up with all but the last
few. The output that has not been taken yet stays where it was produced (the runtime's
pipe, the container's socket), which is what makes the bound hold end to end.

``BridgeKernel.do_execute`` calls :meth:`IOPubPacer.published` after each output and
awaits :meth:`IOPubPacer.wait` before taking the next event.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Callable

from .events import Display, Event, Result, Stream

LARGE = 16 * 1024
"""Messages with at least this many bytes of payload are paced; smaller ones cost less
to queue than a marker does."""

BACKLOG = 2
"""Large messages the IOPub thread may still have to send when the loop goes on."""

PATIENCE_S = 1.0
"""Longest wait for the IOPub thread at one message: a thread that stopped (the kernel
shutting down) must not hold the cell, and pacing is only ever about memory."""

Schedule = Callable[[Callable[[], None]], None]
"""Runs a callable on the IOPub thread after everything scheduled before it
(``IOPubThread.schedule``)."""


class IOPubPacer:
    """Keeps at most :data:`BACKLOG` large messages waiting for the IOPub thread."""

    def __init__(self, schedule: Schedule) -> None:
        self._schedule = schedule
        self._markers: deque[asyncio.Future[None]] = deque()

    def published(self, size: int) -> None:
        """Note a message of ``size`` payload bytes just handed to the IOPub thread."""
        if size < LARGE:
            return
        loop = asyncio.get_running_loop()
        marker: asyncio.Future[None] = loop.create_future()

        def reached() -> None:
            # on the IOPub thread: every message scheduled before this one has been sent
            with contextlib.suppress(RuntimeError):  # the loop is closed: nobody waits
                loop.call_soon_threadsafe(_resolve, marker)

        self._markers.append(marker)
        self._schedule(reached)

    async def wait(self) -> None:
        """Return once no more than :data:`BACKLOG` large messages are still unsent."""
        while len(self._markers) > BACKLOG:
            marker = self._markers.popleft()
            try:
                await asyncio.wait_for(asyncio.shield(marker), PATIENCE_S)
            except TimeoutError:
                self._markers.clear()  # the thread is not sending: stop pacing this backlog
                return
        while self._markers and self._markers[0].done():
            self._markers.popleft()


def payload_size(event: Event) -> int:
    """Characters of output ``event`` carries (0 for events that carry none worth pacing)."""
    if isinstance(event, Stream):
        return len(event.text)
    if isinstance(event, Display | Result):
        return sum(len(value) for value in event.data.values() if isinstance(value, str))
    return 0


def _resolve(marker: asyncio.Future[None]) -> None:
    if not marker.done():
        marker.set_result(None)
