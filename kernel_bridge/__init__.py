"""kernel_bridge: a Jupyter kernel whose cells run somewhere else.

The executors keep the public API of AutoGen's executors of the same names, so they also
work on their own::

    from kernel_bridge import DockerCommandLineCodeExecutor, ACADynamicSessionsCodeExecutor

Heavy modules are imported on first use.
"""

from __future__ import annotations

from typing import Any

from ._version import __version__

__all__ = [
    "ACADynamicSessionsCodeExecutor",
    "BridgeKernel",
    "DockerCommandLineCodeExecutor",
    "LocalExecutor",
    "__version__",
]

_LAZY = {
    "BridgeKernel": "kernel_bridge.kernel",
    "LocalExecutor": "kernel_bridge.executors.local",
    "DockerCommandLineCodeExecutor": "kernel_bridge.executors.docker",
    "ACADynamicSessionsCodeExecutor": "kernel_bridge.executors.aca",
}


def __getattr__(name: str) -> Any:
    """Import the public classes lazily (the kernel must start fast)."""
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'kernel_bridge' has no attribute {name!r}")
