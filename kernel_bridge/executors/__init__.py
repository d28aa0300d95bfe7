"""Executors: where the cells run, one plug-in per kind.

The kinds are found by entry point (group ``kernel_bridge.executors``, see
:mod:`.registry` and :mod:`.plugin`); the built-in local, docker and aca executors
register there like any other package's.

The names below are imported on first use: ``python -m kernel_bridge`` imports
``executors.local._early_runtime`` before anything else to start the local runtime, and
that must not wait for traitlets, the registry and importlib.metadata.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
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

_MODULES = {
    "Completion": ".base",
    "Inspection": ".base",
    "RemoteExecutor": ".base",
    "ENTRY_POINT_GROUP": ".plugin",
    "ExecutorPlugin": ".plugin",
    "InstallOption": ".plugin",
    "executor_class": ".registry",
    "executor_kinds": ".registry",
    "executor_plugin": ".registry",
    "executor_plugins": ".registry",
}


def __getattr__(name: str) -> Any:
    """Import the module that defines ``name`` when it is first used."""
    module = _MODULES.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(module, __name__), name)
