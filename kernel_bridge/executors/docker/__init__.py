"""Docker executor: cells run in a hardened container, through the docker SDK.

``DockerCommandLineCodeExecutor`` keeps the public API of AutoGen's executor of that
name; the private modules hold the engine connection, image pulls and pins, container
hardening, file transfer and the attach-socket transport. The classes are imported on
first use, so the plug-in (``plugin``) loads without the docker SDK.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._executor import (
        DEFAULT_PIDS_LIMIT,
        DockerCommandLineCodeExecutor,
        DockerConfigurationError,
    )

__all__ = ["DEFAULT_PIDS_LIMIT", "DockerCommandLineCodeExecutor", "DockerConfigurationError"]


def __getattr__(name: str) -> Any:
    """Import the executor module when one of its names is first used."""
    if name in __all__:
        return getattr(importlib.import_module("._executor", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
