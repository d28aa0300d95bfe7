"""Executors: where the cells run. Backends are imported lazily by kind.

``EXECUTOR_KINDS`` lists the valid values of ``--BridgeKernel.executor``.
"""

from __future__ import annotations

import importlib

from ..errors import ConfigurationError
from .base import Completion, Inspection, RemoteExecutor

__all__ = [
    "EXECUTOR_CLASSES",
    "EXECUTOR_KINDS",
    "Completion",
    "Inspection",
    "RemoteExecutor",
    "executor_class",
]

EXECUTOR_CLASSES: dict[str, tuple[str, str]] = {
    "local": ("kernel_bridge.executors.local", "LocalExecutor"),
    "docker": ("kernel_bridge.executors.docker", "DockerCommandLineCodeExecutor"),
    "aca": ("kernel_bridge.executors.aca", "ACADynamicSessionsCodeExecutor"),
}
"""Executor kind -> (module, class name)."""

EXECUTOR_KINDS: tuple[str, ...] = tuple(EXECUTOR_CLASSES)


def executor_class(kind: str) -> type[RemoteExecutor]:
    """Return the executor class for ``kind``; called when the kernel builds its session.

    Raises :class:`ConfigurationError` naming the valid kinds, or the extra to install
    when the backend's dependencies are missing.
    """
    try:
        module_name, class_name = EXECUTOR_CLASSES[kind]
    except KeyError:
        raise ConfigurationError(
            f"unknown executor {kind!r}; valid executors are: {', '.join(EXECUTOR_KINDS)} "
            "(set it with --BridgeKernel.executor=NAME in the kernelspec, or reinstall the "
            "kernelspec with `kernel-bridge install --executor NAME`)"
        ) from None
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigurationError(
            f"the {kind} executor cannot be loaded ({exc}); install its dependencies with "
            f"`pip install 'kernel_bridge[{kind}]'`"
        ) from exc
    cls: type[RemoteExecutor] = getattr(module, class_name)
    return cls
