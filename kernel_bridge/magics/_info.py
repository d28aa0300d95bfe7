"""``%bridge info``: where this notebook's code runs, as text and as JSON.

Reads the executor's public settings (traits) and what the provenance tracker learned;
never a token, a session identifier or an environment variable.
"""

from __future__ import annotations

import time
from typing import Any

from ..events import Display
from ..executors.base import RemoteExecutor
from ..provenance import pool_host, utc_iso
from ._host import MagicHost

__all__ = ["describe", "info_display", "session_workdir"]


def session_workdir(executor: RemoteExecutor | None, kind: str) -> str:
    """The code's working directory as the code sees it."""
    if kind == "docker":
        return "/workspace"
    if kind == "aca":
        return "/mnt/data"
    work_dir = getattr(executor, "work_dir", None)
    return str(work_dir) if work_dir is not None else "the notebook's folder"


def _limits(host: MagicHost, executor: RemoteExecutor | None, kind: str) -> dict[str, Any]:
    limits: dict[str, Any] = {"cell_timeout_s": host.bridge_session.cell_timeout}
    if executor is None:
        return limits
    if kind == "docker":
        for name in ("mem_limit", "cpus", "pids_limit", "network_mode", "user", "read_only"):
            limits[name] = getattr(executor, name, None)
    elif kind == "aca":
        limits["remote_timeout_s"] = getattr(executor, "timeout", None)
    return limits


def _mounts(host: MagicHost, executor: RemoteExecutor | None, kind: str) -> list[str]:
    if kind == "docker" and executor is not None:
        if getattr(executor, "mount_notebook_dir", False):
            mounts = [f"{host.notebook_dir} -> /workspace (rw, the notebook's folder)"]
        else:
            mounts = ["a private temporary folder -> /workspace (rw; not the notebook's folder)"]
        volumes = getattr(executor, "extra_volumes", None) or {}
        mounts += [
            f"{src} -> {v.get('bind')} ({v.get('mode', 'rw')})" for src, v in volumes.items()
        ]
        return mounts
    if kind == "aca":
        return ["/mnt/data: the session's own storage (use %bridge upload/download)"]
    return ["none: the code runs on this host"]


async def describe(host: MagicHost) -> dict[str, Any]:
    """Collect the facts ``%bridge info`` shows; starts nothing (an ACA session costs)."""
    executor = host.bridge_session.executor
    kind = host.executor_kind
    tracker = host.provenance
    await tracker.refresh(executor)
    facts = tracker.facts()
    started = tracker.session_started
    info: dict[str, Any] = {"executor": kind}
    if kind == "docker" and executor is not None:
        info["image"] = getattr(executor, "image", None)
        info["image_id"] = facts.get("image_id")
        info["repo_digests"] = facts.get("repo_digests", [])
        container_id = getattr(executor, "container_id", None)
        info["container"] = container_id[:12] if container_id else None
    elif kind == "aca" and executor is not None:
        info["pool_host"] = pool_host(getattr(executor, "pool_management_endpoint", None))
    elif kind == "local" and executor is not None:
        info["python_executable"] = getattr(executor, "python", None)
    info["python"] = facts.get("python")
    info["session"] = "running" if started is not None else "not started (the next cell starts it)"
    info["session_started"] = utc_iso(started) if started is not None else None
    info["session_age_s"] = round(time.time() - started, 1) if started is not None else None
    info["working_directory"] = session_workdir(executor, kind)
    info["notebook_dir"] = str(host.notebook_dir)
    info["limits"] = _limits(host, executor, kind)
    info["functions"] = host.function_names()
    info["mounts"] = _mounts(host, executor, kind)
    return info


def _text(info: dict[str, Any]) -> str:
    lines = []
    for key, value in info.items():
        if isinstance(value, dict):
            shown = ", ".join(f"{k}={v}" for k, v in value.items() if v is not None) or "none"
        elif isinstance(value, list):
            shown = ", ".join(str(v) for v in value) or "none"
        else:
            shown = "unknown" if value is None else str(value)
        lines.append(f"{key.replace('_', ' ')}: {shown}")
    return "\n".join(lines)


def info_display(info: dict[str, Any]) -> Display:
    """The output of ``%bridge info``: readable text plus the same facts as JSON."""
    return Display({"text/plain": _text(info), "application/json": info})
