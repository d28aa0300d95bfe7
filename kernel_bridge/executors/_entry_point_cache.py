"""One entry-point group's entry points, read through a per-directory cache on disk.

``importlib.metadata.entry_points()`` lists every ``sys.path`` entry and reads the
``entry_points.txt`` of every distribution in it (about 200 in a Jupyter environment):
10-20 ms of every kernel's cold start, for the same answer each time. This module gives
the same answer, with the same rules, from a cache kept per ``sys.path`` entry and keyed
by that entry's modification time, which changes whenever a distribution is installed
into it or removed from it (``importlib.metadata`` keys its own in-process cache the
same way). An entry whose stamp differs is read again as ``importlib.metadata`` reads it;
the others are not opened.

Rules kept: entries in ``sys.path`` order, each distribution counted once by normalised
name (the first found wins, even one with no entry point in the group), entry points in
the order their distributions are found. The cache is used only when the standard path
finder is the only distribution finder (another finder could add distributions no
directory stamp covers), and it never trusts an entry whose stamp is less than
:data:`_SETTLE_NS` old: a change within the file system's timestamp granularity would
leave the stamp as it was. The file (``$XDG_CACHE_HOME/kernel_bridge/``, one per group
and interpreter) is written atomically; one that is unreadable, malformed, of another
format, or writable by anyone else than its owner (the current user) is ignored.

Called by :mod:`.registry`, once per process.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.machinery
import json
import os
import stat
import sys
import time
from collections.abc import Iterable
from importlib.metadata import EntryPoint, distributions, entry_points
from pathlib import Path
from typing import Any

__all__ = ["cache_file", "group_entry_points"]

_FORMAT = 1
"""Bumped whenever the file's layout or meaning changes; other formats are ignored."""

_SETTLE_NS = 2_000_000_000
"""An entry modified less than this long ago is read, not cached (timestamp granularity)."""

_MAX_ENTRIES = 64
"""Directories remembered; kernels started in many notebook folders add one each."""

_Dist = tuple[str, list[tuple[str, str]]]
"""A distribution: its normalised name and its (name, value) entry points in the group."""


def cache_file(group: str) -> Path | None:
    """The cache file of ``group`` for this interpreter (its prefix and version).

    None when there is no absolute cache folder (the XDG rules: a relative
    ``XDG_CACHE_HOME`` is ignored; no home folder, no cache).
    """
    base = os.environ.get("XDG_CACHE_HOME", "")
    if not os.path.isabs(base):
        base = os.path.join(os.path.expanduser("~"), ".cache")
        if not os.path.isabs(base):
            return None
    tag = hashlib.sha256(f"{group}\0{sys.prefix}\0{sys.version}".encode()).hexdigest()[:16]
    return Path(base) / "kernel_bridge" / f"entry-points-{tag}.json"


def _only_path_finder() -> bool:
    """True when the standard path finder is the only finder that lists distributions."""
    finders = [f for f in sys.meta_path if getattr(f, "find_distributions", None) is not None]
    return finders == [importlib.machinery.PathFinder]


def group_entry_points(group: str) -> list[EntryPoint]:
    """The entry points of ``group``, as ``importlib.metadata.entry_points(group=group)``."""
    if not _only_path_finder():
        return list(entry_points(group=group))
    path = cache_file(group)
    cached = {} if path is None else _read(path, group)
    used: dict[str, dict[str, Any]] = {}
    changed = False
    seen: set[str] = set()
    found: list[EntryPoint] = []
    now = time.time_ns()
    for entry in sys.path:
        key = os.path.abspath(entry or ".")
        try:
            stamp = os.stat(key).st_mtime_ns
        except (OSError, ValueError):
            continue  # importlib.metadata finds nothing there either
        known = cached.get(key)
        if known is not None and known["mtime_ns"] == stamp:
            dists: list[_Dist] = known["dists"]
            used[key] = known
        else:
            try:
                dists = _read_entry(entry, group)
            except Exception:  # whatever a broken distribution raises: read them all instead
                return list(entry_points(group=group))
            if now - stamp >= _SETTLE_NS:
                used[key] = {"mtime_ns": stamp, "dists": dists}
                changed = True
        for name, points in dists:
            if name in seen:
                continue
            seen.add(name)
            found.extend(EntryPoint(ep_name, value, group) for ep_name, value in points)
    if changed and path is not None:  # this sys.path's entries last: older others drop first
        others = {key: value for key, value in cached.items() if key not in used}
        _write(path, group, {**others, **used})
    return found


def _read_entry(entry: str, group: str) -> list[_Dist]:
    """The distributions of one ``sys.path`` entry, in the order importlib finds them."""
    dists: list[_Dist] = []
    for dist in distributions(path=[entry]):
        name = dist._normalized_name  # type: ignore[attr-defined]  # the key entry_points() uses
        points = [(ep.name, ep.value) for ep in dist.entry_points.select(group=group)]
        dists.append((str(name), points))
    return dists


def _valid_dists(value: Any) -> bool:
    if not isinstance(value, list):
        return False
    for dist in value:
        if not (isinstance(dist, list) and len(dist) == 2 and isinstance(dist[0], str)):
            return False
        points = dist[1]
        if not isinstance(points, list) or not all(
            isinstance(p, list) and len(p) == 2 and all(isinstance(s, str) for s in p)
            for p in points
        ):
            return False
    return True


def _read(path: Path, group: str) -> dict[str, dict[str, Any]]:
    """The cached entries of ``path``; empty when it is missing, foreign or malformed."""
    try:
        with open(path, "rb") as file:
            info = os.fstat(file.fileno())
            if info.st_uid != os.getuid() or info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
                return {}
            data = json.loads(file.read())
    except (OSError, ValueError):
        return {}
    if not (
        isinstance(data, dict)
        and data.get("format") == _FORMAT
        and data.get("group") == group
        and isinstance(data.get("entries"), dict)
    ):
        return {}
    entries: dict[str, dict[str, Any]] = {}
    for key, value in data["entries"].items():
        if not (
            isinstance(value, dict)
            and type(value.get("mtime_ns")) is int
            and _valid_dists(value.get("dists"))
        ):
            return {}  # one bad entry: the file was not written by this code
        dists = [(name, [(p[0], p[1]) for p in points]) for name, points in value["dists"]]
        entries[key] = {"mtime_ns": value["mtime_ns"], "dists": dists}
    return entries


def _write(path: Path, group: str, entries: dict[str, dict[str, Any]]) -> None:
    """Replace the file atomically with the last ``_MAX_ENTRIES`` entries; failures are ignored."""
    kept: Iterable[tuple[str, dict[str, Any]]] = list(entries.items())[-_MAX_ENTRIES:]
    data = {"format": _FORMAT, "group": group, "entries": dict(kept)}
    import tempfile  # only when writing: most starts only read

    with contextlib.suppress(OSError):
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd, temp = tempfile.mkstemp(dir=path.parent, prefix=".entry-points-", suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as file:
                json.dump(data, file)
            os.replace(temp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temp)
            raise
