"""Local executor: cells run in a subprocess of the kernel, on this host.

The classes are imported on first use, so the plug-in (``plugin``) loads without them.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._executor import LocalExecutor, SubprocessTransport, describe_returncode

__all__ = ["LocalExecutor", "SubprocessTransport", "describe_returncode"]


def __getattr__(name: str) -> Any:
    """Import the executor module when one of its names is first used."""
    if name in __all__:
        return getattr(importlib.import_module("._executor", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
