"""Provenance: where each output was produced, recorded in the output's metadata.

Every ``execute_result``, ``display_data`` / ``update_display_data`` and ``error`` the
kernel publishes carries ``metadata["kernel_bridge"]`` (see ``PROVENANCE_KEY``)::

    {"executor": "docker", "image": "python:3.12-slim", "image_id": "sha256:...",
     "repo_digests": ["python@sha256:..."], "python": "3.12.7",
     "session_started": "2026-12-01T02:50:01Z", "cell_started": "...",
     "cell_elapsed_s": 0.042}

ACA outputs name the pool's host (``pool_host``) instead of an image; local outputs the
interpreter. Nothing secret goes in: no token, no session identifier, no environment.
The notebook-level record of the kernel's configuration is :func:`executor_config`,
sent in ``language_info`` (nbclient and papermill copy it into the notebook's metadata).

:class:`ProvenanceTracker` is created by the kernel and refreshed before each output is
published; it notices a new session (first start, restart, a replaced runtime or ACA
session, ``%bridge use``) by a fingerprint of the executor's live session.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import AsyncIterator, Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from .events import Event, Finished, Stream
from .executors.base import RemoteExecutor

__all__ = [
    "PROVENANCE_KEY",
    "ProvenanceTracker",
    "executor_config",
    "pool_host",
    "utc_iso",
]

log = logging.getLogger(__name__)

PROVENANCE_KEY = "kernel_bridge"
"""The one metadata key under which outputs (and language_info) carry provenance."""

_PYTHON_MARKER = "__kernel_bridge_python__="
_PYTHON_PROBE = (
    "import sys as _kb_sys\n"
    f"print({_PYTHON_MARKER!r} + '.'.join(map(str, _kb_sys.version_info[:3])))\n"
    "del _kb_sys\n"
)


def utc_iso(epoch: float) -> str:
    """Format seconds since the epoch as an ISO 8601 UTC time to the second."""
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def pool_host(endpoint: str | None) -> str | None:
    """The host of an ACA pool endpoint (no path: it holds subscription and group names)."""
    if not endpoint:
        return None
    return urlsplit(endpoint).hostname or None


def _python_of_channel(executor: RemoteExecutor) -> str | None:
    # The runtime reports its version in its ready message; RuntimeChannel keeps it.
    channel = getattr(executor, "_channel", None)
    info = getattr(channel, "info", None)
    python = getattr(info, "python", None)
    return str(python) if python else None


def session_fingerprint(executor: RemoteExecutor | None) -> object | None:
    """An opaque value that changes whenever the executor's live session changes.

    Runtime-backed executors: their runtime channel object itself (compared by identity;
    holding it keeps its id from being reused by the next channel); ACA: a hash of the
    session identifier (the identifier itself is never kept or shown). None when no
    session runs yet.
    """
    if executor is None:
        return None
    if executor.kind == "aca":
        identifier = getattr(executor, "_session_id", None)
        if not identifier or not getattr(executor, "_established", False):
            return None
        return "aca:" + hashlib.sha256(str(identifier).encode()).hexdigest()[:16]
    if not getattr(executor, "runtime_alive", False):
        return None
    return getattr(executor, "_channel", None)


def executor_config(
    kind: str, executor: RemoteExecutor | None, config: Mapping[str, Any]
) -> dict[str, Any]:
    """The executor configuration recorded in the notebook's metadata, without secrets.

    ``config`` is the executor's traitlets section from the kernelspec; only known,
    harmless options are copied (never environment variables, tokens or endpoints'
    paths). Called by the kernel when it answers kernel_info.
    """
    from ._version import __version__

    record: dict[str, Any] = {"kernel_bridge_version": __version__, "executor": kind}

    def option(name: str, default: Any = None) -> Any:
        if executor is not None and hasattr(executor, name):
            return getattr(executor, name)
        return config.get(name, default)

    if kind == "docker":
        for name in (
            "image",
            "mem_limit",
            "cpus",
            "pids_limit",
            "network_mode",
            "user",
            "read_only",
            "pull",
            "mount_notebook_dir",
        ):
            value = option(name)
            if value is not None:
                record[name] = value
    elif kind == "aca":
        record["pool_host"] = pool_host(option("pool_management_endpoint"))
        timeout = option("timeout")
        if timeout is not None:
            record["timeout"] = timeout
    elif kind == "local":
        python = option("python")
        if python:
            record["python_executable"] = str(python)
    return record


class ProvenanceTracker:
    """Keeps what is known about the current session and stamps outputs with it.

    Used by the kernel: :meth:`cell_started` at each execute_request, :meth:`refresh`
    before publishing (it is a no-op unless the session changed), :meth:`stamp` to
    build the metadata entry.
    """

    def __init__(self) -> None:
        self._fingerprint: object | None = None
        self._facts: dict[str, Any] = {}
        self._started_at: float | None = None
        self._cell_wall = time.time()
        self._cell_clock = time.monotonic()
        self._probed: set[int] = set()
        self._aca_python: dict[int, str] = {}

    @property
    def session_started(self) -> float | None:
        """Epoch seconds at which the kernel first saw the current session, if any."""
        return self._started_at

    def cell_started(self) -> None:
        """Mark the start of a cell; outputs report the time elapsed since."""
        self._cell_wall = time.time()
        self._cell_clock = time.monotonic()

    def forget(self) -> None:
        """Drop what is known about the session; called after a restart or a switch."""
        self._fingerprint = None
        self._facts = {}
        self._started_at = None

    def needs_python_probe(self, executor: RemoteExecutor | None) -> bool:
        """True when the runtime's Python version can only be learned by running code (ACA).

        ACA sessions of one pool share an image, so one probe per executor is enough.
        """
        return executor is not None and executor.kind == "aca" and id(executor) not in self._probed

    async def probe_python(self, executor: RemoteExecutor) -> AsyncIterator[Event]:
        """Learn the ACA session's Python version, passing on every other event.

        Run by the kernel before the first cell on an ACA executor: the session's setup
        output (functions) arrives here and is shown in that cell as usual. Ends with the
        probe's ``Finished``; when it is not ok the cell must not run.
        """
        self._probed.add(id(executor))
        async for event in executor.execute(_PYTHON_PROBE, silent=False, store_history=False):
            if (
                isinstance(event, Stream)
                and event.name == "stdout"
                and _PYTHON_MARKER in event.text
            ):
                kept: list[str] = []
                for line in event.text.split("\n"):
                    if line.startswith(_PYTHON_MARKER):
                        self._aca_python[id(executor)] = line[len(_PYTHON_MARKER) :].strip()
                    else:
                        kept.append(line)
                text = "\n".join(kept)
                if text:
                    yield Stream("stdout", text)
                continue
            yield event
            if isinstance(event, Finished):
                return

    async def refresh(self, executor: RemoteExecutor | None) -> None:
        """Re-read the session's facts when it changed since the last call; never raises."""
        fingerprint = session_fingerprint(executor)
        if fingerprint == self._fingerprint and self._facts:
            return
        self._fingerprint = fingerprint
        if executor is None:
            self._facts = {}
            return
        if fingerprint is not None:
            self._started_at = time.time()
        try:
            self._facts = await self._describe(executor)
        except Exception:  # provenance must never cost an output
            log.debug("provenance facts unavailable", exc_info=True)
            self._facts = {"executor": executor.kind}

    async def _describe(self, executor: RemoteExecutor) -> dict[str, Any]:
        facts: dict[str, Any] = {"executor": executor.kind}
        if executor.kind == "docker":
            facts["image"] = getattr(executor, "image", None)
            identity = getattr(executor, "image_identity", None)
            if identity is not None:
                image_id, digests = await identity()
                if image_id:
                    facts["image_id"] = image_id
                    facts["repo_digests"] = digests
            facts["python"] = _python_of_channel(executor)
        elif executor.kind == "aca":
            facts["pool_host"] = pool_host(getattr(executor, "pool_management_endpoint", None))
            facts["python"] = self._aca_python.get(id(executor))
        else:
            facts["python"] = _python_of_channel(executor)
            facts["python_executable"] = getattr(executor, "python", None)
        return facts

    def facts(self) -> dict[str, Any]:
        """What is known about the current session (copied; for ``%bridge info``)."""
        return dict(self._facts)

    def stamp(self) -> dict[str, Any]:
        """The metadata entry for an output published now."""
        entry = dict(self._facts)
        entry["session_started"] = (
            utc_iso(self._started_at) if self._started_at is not None else None
        )
        entry["cell_started"] = utc_iso(self._cell_wall)
        entry["cell_elapsed_s"] = round(time.monotonic() - self._cell_clock, 3)
        return entry
