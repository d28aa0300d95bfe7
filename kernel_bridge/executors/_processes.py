"""Which process owns a resource: start times that survive pid reuse.

Called by the Docker executor (container labels name their kernel process) and by the
owned temporary directories of every executor, to tell a leftover of a dead kernel from
the resource of a live one.
"""

from __future__ import annotations

import os

__all__ = ["process_alive", "process_start_time"]


def process_start_time(pid: int) -> str:
    """Return an opaque start time of process ``pid`` ("" when unknown).

    On Linux it is the start time in clock ticks since boot (field 22 of /proc/PID/stat);
    elsewhere psutil's create_time when psutil is installed.
    """
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            data = stat.read().decode("ascii", "replace")
        return data[data.rindex(")") + 2 :].split()[19]
    except (OSError, ValueError, IndexError):
        pass
    try:
        import psutil  # type: ignore[import-untyped, unused-ignore]

        return f"{psutil.Process(pid).create_time():.2f}"
    except Exception:
        return ""


def process_alive(pid: int, started: str) -> bool:
    """True when process ``pid`` exists on this host and (if known) started at ``started``."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # exists, owned by someone else
    if started:
        now = process_start_time(pid)
        if now and now != started:
            return False  # the pid was reused by another process
    return True
