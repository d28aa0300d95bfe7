"""Fault injection: make the emulator misbehave the way a cloud service can.

Tests queue :class:`Fault` objects (in process through
:attr:`Emulator.faults <kernel_bridge.emulator.Emulator.faults>`, or over HTTP with
``POST /_emulator/faults``); each data-plane request takes the first queued fault whose
``operation`` matches it.
"""

from __future__ import annotations

import threading
from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = ["Fault", "FaultQueue"]

_OPERATIONS = frozenset({"any", "execute", "poll", "upload", "list", "download", "session"})
"""``poll`` is ``GET executions/{id}``; ``execute`` the requests that run code."""


@dataclass(frozen=True)
class Fault:
    """One injected misbehaviour.

    - ``status``: answer with this HTTP status (``retry_after`` adds ``Retry-After``);
    - ``drop``: close the connection after the response headers, with no body;
    - ``delay``: wait this many seconds first (a slow answer);
    - ``after``: do the real work (run the code) first, then fail: the client cannot
      know whether it ran;
    - ``times``: how many requests this fault applies to.
    """

    operation: str = "execute"
    status: int | None = None
    retry_after: float | None = None
    drop: bool = False
    delay: float = 0.0
    after: bool = False
    times: int = 1

    def __post_init__(self) -> None:
        if self.operation not in _OPERATIONS:
            raise ValueError(f"operation must be one of {sorted(_OPERATIONS)}")
        if self.times < 1:
            raise ValueError("times must be at least 1")

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Fault:
        """Build a fault from its JSON form (the field names above)."""
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        return cls(**known)

    def to_json(self) -> dict[str, Any]:
        """The JSON form of the fault."""
        return asdict(self)


@dataclass
class FaultQueue:
    """Faults waiting to be applied, in order; safe to use from any thread."""

    _items: list[list[Any]] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, *faults: Fault) -> None:
        """Queue ``faults`` after those already waiting."""
        with self._lock:
            self._items.extend([fault, fault.times] for fault in faults)

    def clear(self) -> None:
        """Drop every queued fault."""
        with self._lock:
            self._items.clear()

    def take(self, operation: str) -> Fault | None:
        """Return (and use up one application of) the first fault matching ``operation``."""
        with self._lock:
            for item in self._items:
                fault: Fault = item[0]
                if fault.operation in ("any", operation):
                    item[1] -= 1
                    if item[1] <= 0:
                        self._items.remove(item)
                    return fault
        return None

    def pending(self) -> list[Fault]:
        """The faults still queued."""
        with self._lock:
            return [item[0] for item in self._items]
