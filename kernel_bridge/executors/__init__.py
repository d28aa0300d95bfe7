"""Executors: where the cells run, one plug-in per kind.

The kinds are found by entry point (group ``kernel_bridge.executors``, see
:mod:`.registry` and :mod:`.plugin`); the built-in local, docker and aca executors
register there like any other package's.
"""

from __future__ import annotations

from .base import Completion, Inspection, RemoteExecutor
from .plugin import ENTRY_POINT_GROUP, ExecutorPlugin, InstallOption
from .registry import executor_class, executor_kinds, executor_plugin, executor_plugins

__all__ = [
    "ENTRY_POINT_GROUP",
    "Completion",
    "ExecutorPlugin",
    "Inspection",
    "InstallOption",
    "RemoteExecutor",
    "executor_class",
    "executor_kinds",
    "executor_plugin",
    "executor_plugins",
]
