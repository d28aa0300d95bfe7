"""The emulator's sessions: one persistent runtime and data directory per identifier.

Like the service (aca-api.md §3): a session is created implicitly by the first request
naming an unknown identifier; every request resets its idle timer; a session idle for
longer than the cooldown is destroyed, and the same identifier then silently gets a
fresh one; beyond ``max_sessions`` live sessions, new identifiers are refused (404).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import EmulatedPoolFull
from ..executors.base import RemoteExecutor
from ._backends import Backend

__all__ = ["EmulatedSession", "PoolFull", "SessionManager"]

_log = logging.getLogger(__name__)


PoolFull = EmulatedPoolFull
"""The name this module has always exported (see :mod:`kernel_bridge.errors`)."""


@dataclass
class EmulatedSession:
    """One live session: its runtime, its directories and its times."""

    identifier: str
    executor: RemoteExecutor
    root: Path
    data_dir: Path
    created_at: float = field(default_factory=time.time)
    last_access: float = field(default_factory=time.time)
    guid: str = field(default_factory=lambda: str(uuid.uuid4()))
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    busy: int = 0

    def touch(self) -> None:
        """Reset the idle timer (every request does)."""
        self.last_access = time.time()


class SessionManager:
    """Creates, finds and expires sessions; lives on the emulator's event loop."""

    def __init__(
        self,
        backend: Backend,
        root: Path,
        *,
        cooldown: float,
        max_sessions: int,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.backend = backend
        self.root = root
        self.cooldown = cooldown
        self.max_sessions = max_sessions
        self._clock = clock
        self._sessions: dict[str, EmulatedSession] = {}
        self.created = 0
        """Sessions created so far (tests read it)."""
        self.expired = 0
        """Sessions destroyed by the cooldown so far."""

    def _expired(self, session: EmulatedSession) -> bool:
        return session.busy == 0 and self._clock() - session.last_access > self.cooldown

    def live(self) -> list[EmulatedSession]:
        """The sessions currently alive (expired ones not counted)."""
        return [s for s in self._sessions.values() if not self._expired(s)]

    def find(self, identifier: str) -> EmulatedSession | None:
        """Return the live session of ``identifier`` (None if none or expired)."""
        session = self._sessions.get(identifier)
        if session is None or self._expired(session):
            return None
        return session

    async def get(self, identifier: str) -> EmulatedSession:
        """Return the session of ``identifier``, creating it (or a fresh one after expiry)."""
        await self.reap()
        session = self._sessions.get(identifier)
        if session is not None:
            session.touch()
            return session
        if len(self._sessions) >= self.max_sessions:
            raise PoolFull(identifier)
        self.created += 1
        root = self.root / f"s{self.created:05d}-{uuid.uuid4().hex[:8]}"
        data_dir = root / "data"
        home = root / "home"
        data_dir.mkdir(parents=True)
        home.mkdir()
        executor = self.backend.create(data_dir, home)
        session = EmulatedSession(identifier, executor, root, data_dir)
        self._sessions[identifier] = session
        _log.info("session %d created", self.created)
        return session

    async def reap(self) -> None:
        """Destroy every session idle past the cooldown."""
        for identifier, session in list(self._sessions.items()):
            if self._expired(session):
                self.expired += 1
                await self._destroy(identifier)

    async def delete(self, identifier: str) -> bool:
        """Destroy the session of ``identifier`` now; False when there was none."""
        if self.find(identifier) is None:
            return False
        await self._destroy(identifier)
        return True

    async def _destroy(self, identifier: str) -> None:
        session = self._sessions.pop(identifier, None)
        if session is None:
            return
        with contextlib.suppress(Exception):
            await asyncio.wait_for(session.executor.stop(), 10)
        shutil.rmtree(session.root, ignore_errors=True)

    async def close(self) -> None:
        """Destroy every session (emulator shutdown)."""
        for identifier in list(self._sessions):
            await self._destroy(identifier)

    async def reaper(self) -> None:
        """Run :meth:`reap` forever at a pace matching the cooldown (a background task)."""
        interval = max(0.2, min(self.cooldown / 4, 10.0))
        while True:
            await asyncio.sleep(interval)
            try:
                await self.reap()
            except Exception:  # pragma: no cover - keep reaping
                _log.exception("reaping sessions failed")
