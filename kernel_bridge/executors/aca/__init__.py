"""Azure Container Apps dynamic sessions executor: cells run through the sessions REST API.

``ACADynamicSessionsCodeExecutor`` keeps the public API of AutoGen's executor of that
name; the private modules hold the HTTP client, credentials, the at-most-once guard,
the in-session shim, result parsing, comms and completion. The class is imported on
first use, so the plug-in (``plugin``) loads without httpx.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._executor import ACADynamicSessionsCodeExecutor

__all__ = ["ACADynamicSessionsCodeExecutor"]


def __getattr__(name: str) -> Any:
    """Import the executor module when its class is first used."""
    if name in __all__:
        return getattr(importlib.import_module("._executor", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
