"""Temporary work directories that name their owner, so those of dead kernels can be removed.

The Docker executor (``kernel_bridge_docker_*``, the container's /workspace) and the ACA
executor (``kb-aca-*``) make a temporary work_dir when none is configured and remove it
when they stop. A kernel that is SIGKILLed (or SIGTERMed) never stops them, so the
directory -- holding the user's files -- stays behind. Each directory therefore carries
its owner in its *name* (``<prefix>p<pid>s<start time>[L]_<random>``): code in the
container cannot rename its own mount point, so it cannot change the mark, unlike a
marker file inside. ``L`` marks a directory meant to outlive its kernel
(``stop_container=False``).

:func:`make_owned_temp_dir` makes such a directory and, once per process, removes those
of dead kernels (the start-up check); ``kernel-bridge gc`` calls
:func:`remove_dead_temp_dirs`. Only directories that match the pattern, are real
directories (not links) owned by this user (any owner for root, which hands Docker work
dirs to the code's user), and whose owner process is gone (or whose pid
now belongs to a process with another start time) are removed.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import stat
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

from ._processes import process_alive, process_start_time

__all__ = [
    "PREFIXES",
    "OwnedTempDir",
    "find_dead_temp_dirs",
    "make_owned_temp_dir",
    "remove_dead_temp_dirs",
]

log = logging.getLogger(__name__)

PREFIXES = ("kernel_bridge_docker_", "kb-aca-")
"""Name prefixes of the executors' temporary work dirs."""

_PATTERN = re.compile(
    r"^(?P<prefix>kernel_bridge_docker_|kb-aca-)p(?P<pid>\d+)s(?P<started>[\d.]*)(?P<linger>L?)_"
)
_swept = False
_sweep_lock = threading.Lock()


@dataclass(frozen=True)
class OwnedTempDir:
    """A temporary work dir and the kernel process it belongs to (read from its name)."""

    path: Path
    pid: int
    started: str
    linger: bool

    def owner_alive(self) -> bool:
        """True while the owning process (same pid *and* start time) still runs."""
        return process_alive(self.pid, self.started)


def make_owned_temp_dir(prefix: str, *, linger: bool = False) -> Path:
    """Make a private temporary directory whose name records this process as its owner.

    ``prefix`` is one of :data:`PREFIXES`. The first call in a process also removes the
    directories of dead kernels (errors there are logged, never raised).
    """
    if prefix not in PREFIXES:
        raise ValueError(f"unknown temporary work dir prefix {prefix!r}")
    _sweep_once()
    pid = os.getpid()
    mark = f"{prefix}p{pid}s{process_start_time(pid)}{'L' if linger else ''}_"
    return Path(tempfile.mkdtemp(prefix=mark))


def _sweep_once() -> None:
    global _swept
    with _sweep_lock:
        if _swept:
            return
        _swept = True
    try:
        removed = remove_dead_temp_dirs()
    except Exception as exc:  # housekeeping never blocks a start
        log.debug("could not remove work dirs of dead kernels: %s", exc)
        return
    if removed:
        log.info("removed work dirs left behind by dead kernels: %s", ", ".join(map(str, removed)))


def find_dead_temp_dirs(
    root: Path | None = None, *, include_lingering: bool = False
) -> list[OwnedTempDir]:
    """The owned temporary dirs under ``root`` (default: the temp dir) whose kernel is gone."""
    base = Path(root or tempfile.gettempdir())
    dead = []
    uid = os.getuid()
    with os.scandir(base) as entries:
        for entry in entries:
            match = _PATTERN.match(entry.name)
            if match is None:
                continue
            try:
                info = entry.stat(follow_symlinks=False)
            except OSError:
                continue
            # A link or a file is never ours; neither is another user's directory, except
            # for root, who gave its Docker work dirs to the containers' code user.
            if not stat.S_ISDIR(info.st_mode) or (uid != 0 and info.st_uid != uid):
                continue
            owned = OwnedTempDir(
                Path(entry.path),
                int(match["pid"]),
                match["started"],
                bool(match["linger"]),
            )
            if owned.linger and not include_lingering:
                continue
            if not owned.owner_alive():
                dead.append(owned)
    return sorted(dead, key=lambda d: d.path)


def remove_dead_temp_dirs(
    root: Path | None = None, *, include_lingering: bool = False, dry_run: bool = False
) -> list[Path]:
    """Remove (or with ``dry_run`` only list) the dirs :func:`find_dead_temp_dirs` returns."""
    removed = []
    for owned in find_dead_temp_dirs(root, include_lingering=include_lingering):
        if not dry_run:
            # rmtree works on file descriptors and never follows the links code left inside
            shutil.rmtree(owned.path, ignore_errors=True)
            if owned.path.exists():
                continue
        removed.append(owned.path)
    return removed
