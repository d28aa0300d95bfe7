"""Settings of the ACA emulator (the ``kernel-bridge aca-emulator`` options)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

__all__ = ["DEFAULT_POOL_PATH", "EmulatorConfig"]

DEFAULT_POOL_PATH = "/subscriptions/emulator/resourceGroups/emulator/sessionPools/emulator"
"""The pool path printed in the endpoint; any other prefix is accepted as well."""


@dataclass
class EmulatorConfig:
    """What the emulator does; every field has the service's documented default."""

    token: str | None = None
    """The only bearer token accepted; None accepts any (expired JWTs are still refused)."""
    backend: str = "local"
    """``local`` (a runtime subprocess per session) or ``docker`` (a container per session)."""
    cooldown: float = 300.0
    """Idle seconds after which a session is destroyed (the pool's cooldownPeriodInSeconds)."""
    max_sessions: int = 600
    """Live sessions allowed; a new identifier beyond that gets 404 (maxConcurrentSessions)."""
    execution_cap: float = 220.0
    """Longest synchronous execution in seconds (the service's 220 s cap)."""
    async_execution_cap: float = 3600.0
    """Longest asynchronous execution in seconds ([INF]: the service's limit is undocumented)."""
    max_output_length: int = 1024 * 1024
    """Largest ``outputStreamsMaxLength`` honoured (2025-10-02-preview; [INF] undocumented)."""
    tls: bool = False
    """Serve HTTPS with a self-signed certificate made at start (``Emulator.ca_file``)."""
    max_upload_bytes: int = 128 * 1024 * 1024
    """Largest upload accepted; larger ones get 413."""
    image: str = "python:3-slim"
    """Image of the docker backend's containers."""
    python: str | None = None
    """Interpreter of the local backend's runtimes (default: the emulator's own)."""
    root: Path | None = None
    """Where session directories live (default: a temporary directory)."""
    success_status: int = 200
    """HTTP status of a successful 2024-02-02-preview execution ([INF]: undocumented)."""
