"""The kernel's input history, kept on the host for ``history_request``.

Console frontends (``jupyter console``'s up-arrow, ``%history``-like tools) ask the
kernel for earlier inputs; the notebook never does. The runtime may live in a
container or a remote session that is replaced, so the history is the kernel's own:
one session (number 1) per kernel process.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass

__all__ = ["HISTORY_SESSION", "CellHistory", "HistoryEntry"]

HISTORY_SESSION = 1
"""The session number reported in history replies (one per kernel process)."""

HistoryEntry = tuple[int, int, str] | tuple[int, int, tuple[str, str | None]]


@dataclass
class _Cell:
    line: int
    source: str
    output: str | None = None


class CellHistory:
    """Inputs (and their text/plain results) of the cells run with ``store_history``."""

    def __init__(self) -> None:
        self._cells: list[_Cell] = []

    def record(self, line: int, source: str) -> None:
        """Remember a cell's input; called by the kernel when it runs the cell."""
        self._cells.append(_Cell(line, source))

    def set_output(self, line: int, text: str) -> None:
        """Remember the text/plain result of cell ``line``."""
        for cell in reversed(self._cells):
            if cell.line == line:
                cell.output = text
                return

    def _entries(self, cells: list[_Cell], output: bool) -> list[HistoryEntry]:
        if output:
            return [(HISTORY_SESSION, c.line, (c.source, c.output)) for c in cells]
        return [(HISTORY_SESSION, c.line, c.source) for c in cells]

    def tail(self, n: int, *, output: bool = False) -> list[HistoryEntry]:
        """The last ``n`` cells."""
        return self._entries(self._cells[-n:] if n > 0 else [], output)

    def range(
        self, session: int, start: int, stop: int | None, *, output: bool = False
    ) -> list[HistoryEntry]:
        """Cells ``start <= line < stop`` of ``session`` (0 or negative: this one)."""
        if session > 0 and session != HISTORY_SESSION:
            return []
        cells = [c for c in self._cells if c.line >= start and (stop is None or c.line < stop)]
        return self._entries(cells, output)

    def search(
        self, pattern: str, *, n: int | None = None, unique: bool = False, output: bool = False
    ) -> list[HistoryEntry]:
        """Cells whose input matches the glob ``pattern`` (latest ``n``; ``unique`` inputs)."""
        cells = [c for c in self._cells if fnmatch.fnmatchcase(c.source, pattern)]
        if unique:
            seen: set[str] = set()
            kept: list[_Cell] = []
            for cell in reversed(cells):
                if cell.source not in seen:
                    seen.add(cell.source)
                    kept.append(cell)
            cells = kept[::-1]
        if n:
            cells = cells[-n:]
        return self._entries(cells, output)
