"""Find the executor plug-ins installed in this environment, by entry point.

As jupyter_client's ``KernelProvisionerFactory`` does for kernel provisioners, the kinds
are the names in the ``kernel_bridge.executors`` entry-point group (read as
``importlib.metadata`` reads them, through a per-directory cache on disk:
:mod:`._entry_point_cache`), each loading an :class:`~.plugin.ExecutorPlugin`. Called by the
kernel (to build its executor), the kernel application (to register executor classes for
``--Class.trait`` flags and ``--help-all``), the ``%bridge use`` magic and
``kernel-bridge install``/``list``.

A plug-in that cannot be loaded never becomes a traceback: it is left out of the kinds
offered, and asking for it raises :class:`~kernel_bridge.errors.ConfigurationError` with
the plug-in's name, its entry point and the reason (``broken_plugins`` lists them all).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from importlib.metadata import EntryPoint
from typing import TYPE_CHECKING

from ._entry_point_cache import group_entry_points
from .plugin import ENTRY_POINT_GROUP, ExecutorPlugin, configuration_error

if TYPE_CHECKING:
    from .base import RemoteExecutor

__all__ = [
    "BrokenPlugin",
    "broken_plugins",
    "executor_class",
    "executor_kinds",
    "executor_plugin",
    "executor_plugins",
    "reset_registry",
]


@dataclass(frozen=True)
class BrokenPlugin:
    """An entry point in the group that did not give a usable plug-in, and why."""

    kind: str
    entry_point: str
    reason: str


@dataclass(frozen=True)
class _Registry:
    entry_points: dict[str, EntryPoint]
    duplicated: dict[str, BrokenPlugin]


def _load(entry_point: EntryPoint) -> ExecutorPlugin | BrokenPlugin:
    """Load one entry point; a failure becomes a BrokenPlugin saying why."""
    where = f"{entry_point.name} = {entry_point.value}"
    try:
        plugin = entry_point.load()
    except Exception as exc:  # whatever a third-party module raises on import
        return BrokenPlugin(entry_point.name, where, f"{type(exc).__name__}: {exc}")
    if not isinstance(plugin, ExecutorPlugin):
        return BrokenPlugin(
            entry_point.name,
            where,
            f"it names {type(plugin).__name__!s} {plugin!r:.60}, not an ExecutorPlugin",
        )
    if plugin.kind != entry_point.name:
        return BrokenPlugin(
            entry_point.name,
            where,
            f"its kind is {plugin.kind!r}; the entry point's name must be the kind",
        )
    return plugin


@functools.cache
def _scan() -> _Registry:
    """Read the entry points (names only: nothing is imported here), through the disk cache."""
    found: dict[str, EntryPoint] = {}
    duplicated: dict[str, BrokenPlugin] = {}
    # one distribution may be seen twice on sys.path (an editable install and a build dir)
    seen: set[tuple[str, str]] = set()
    for entry_point in sorted(
        group_entry_points(ENTRY_POINT_GROUP), key=lambda e: (e.name != "local", e.name)
    ):
        key = (entry_point.name, entry_point.value)
        if key in seen:
            continue
        seen.add(key)
        if entry_point.name in found or entry_point.name in duplicated:
            duplicated[entry_point.name] = BrokenPlugin(
                entry_point.name,
                f"{entry_point.name} = {entry_point.value}",
                "two installed packages register this kind; uninstall one of them",
            )
            found.pop(entry_point.name, None)
            continue
        found[entry_point.name] = entry_point
    return _Registry(found, duplicated)


@functools.cache
def _loaded(kind: str) -> ExecutorPlugin | BrokenPlugin | None:
    """The plug-in of ``kind``, imported on first use; None when no entry point names it.

    A kernel imports only its own kind's plug-in: each costs milliseconds of cold start.
    """
    registry = _scan()
    if kind in registry.duplicated:
        return registry.duplicated[kind]
    entry_point = registry.entry_points.get(kind)
    return None if entry_point is None else _load(entry_point)


def _everything() -> tuple[dict[str, ExecutorPlugin], dict[str, BrokenPlugin]]:
    plugins: dict[str, ExecutorPlugin] = {}
    broken: dict[str, BrokenPlugin] = dict(_scan().duplicated)
    for kind in _scan().entry_points:
        loaded = _loaded(kind)
        if isinstance(loaded, ExecutorPlugin):
            plugins[kind] = loaded
        elif loaded is not None:
            broken[kind] = loaded
    return plugins, broken


def reset_registry() -> None:
    """Forget what was found, so the next call scans the entry points again.

    For tests and long-lived processes that install a plug-in while running.
    """
    _scan.cache_clear()
    _loaded.cache_clear()


def executor_plugins() -> dict[str, ExecutorPlugin]:
    """The usable plug-ins by kind, ``local`` first and the others by name."""
    return _everything()[0]


def executor_kinds() -> tuple[str, ...]:
    """The valid values of ``--BridgeKernel.executor`` in this environment."""
    return tuple(_everything()[0])


def broken_plugins() -> list[BrokenPlugin]:
    """The registered plug-ins that could not be loaded, for messages and ``install --help``."""
    return list(_everything()[1].values())


def executor_plugin(kind: str) -> ExecutorPlugin:
    """The plug-in of ``kind``; raises ConfigurationError naming the valid kinds.

    A registered but broken plug-in is named with its entry point and the reason.
    """
    loaded = _loaded(kind)
    if isinstance(loaded, ExecutorPlugin):
        return loaded
    if loaded is not None:
        raise configuration_error(
            f"the executor plug-in {kind!r} ({loaded.entry_point}, entry-point group "
            f"{ENTRY_POINT_GROUP}) cannot be used: {loaded.reason}"
        )
    raise configuration_error(
        f"unknown executor {kind!r}; valid executors are: {', '.join(executor_kinds())} "
        "(executors are plug-ins in the entry-point group "
        f"{ENTRY_POINT_GROUP}; install the package that provides {kind!r}, or reinstall the "
        "kernelspec with `kernel-bridge install --executor NAME`)"
    )


def executor_class(kind: str) -> type[RemoteExecutor]:
    """The executor class of ``kind``, imported now; called when a kernel builds its executor.

    Raises ConfigurationError naming the valid kinds, a broken plug-in, or the package to
    install when the class's dependencies are missing.
    """
    return executor_plugin(kind).executor_class()
