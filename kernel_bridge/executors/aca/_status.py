"""The live status line of a polled ACA execution (api-version 2024-10-02-preview+).

The service streams nothing while code runs; a polled asynchronous execution can at least
say that it is still running. The executor shows one ``display_data`` line once a cell has
run longer than a few seconds and updates it in place (``update_display_data`` with the
same ``display_id``) at most once a second; when the answer arrives the line is finalised
(how long it ran) rather than removed, so a saved notebook shows it too.
"""

from __future__ import annotations

import time

from ...events import Display

__all__ = ["StatusLine"]


class StatusLine:
    """One cell's status line; the executor calls :meth:`running` on each poll."""

    def __init__(self, display_id: str, after: float) -> None:
        self.display_id = display_id
        self.after = after
        self.started = time.monotonic()
        self._shown_second: int | None = None

    def elapsed(self) -> float:
        """Seconds since the cell was sent."""
        return time.monotonic() - self.started

    def _display(self, text: str) -> Display:
        update = self._shown_second is not None
        return Display(data={"text/plain": text}, display_id=self.display_id, update=update)

    def running(self) -> Display | None:
        """The line to show now (new or updated), or None (too early, or same second)."""
        elapsed = self.elapsed()
        second = int(elapsed)
        if elapsed < self.after or second == self._shown_second:
            return None
        display = self._display(f"⏳ still running in the ACA session ({second} s)")
        self._shown_second = second
        return display

    def finish(self, why: str | None) -> Display | None:
        """The final form of the line (None when it was never shown); ``why`` if it failed."""
        if self._shown_second is None:
            return None
        seconds = f"{self.elapsed():.0f} s"
        text = f"ran {seconds} in the ACA session" if why is None else f"after {seconds}: {why}"
        return self._display(text)
