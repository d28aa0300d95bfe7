"""What the magics need from the kernel, as a protocol (the kernel implements it)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

from ..executors.base import RemoteExecutor
from ..provenance import ProvenanceTracker
from ..session import Session

__all__ = ["MagicHost"]


class MagicHost(Protocol):
    """The kernel as the ``%bridge`` magics see it.

    Implemented by :class:`kernel_bridge.kernel.BridgeKernel`; the magics never touch
    Jupyter messaging, only this.
    """

    @property
    def bridge_session(self) -> Session:
        """The session whose executor runs the cells."""

    @property
    def provenance(self) -> ProvenanceTracker:
        """What is known about the current session (age, image, Python)."""

    @property
    def executor_kind(self) -> str:
        """The kind of the executor in use (``local``, ``docker``, ``aca``)."""

    @property
    def notebook_dir(self) -> Path:
        """The notebook's folder: the kernel's working directory."""

    def function_names(self) -> list[str]:
        """Names of the user-defined functions injected at every session start."""

    def build_executor_for(self, kind: str, overrides: dict[str, Any]) -> RemoteExecutor:
        """Build an executor of ``kind`` from the kernelspec's settings plus ``overrides``."""

    def set_executor_kind(self, kind: str, overrides: dict[str, Any]) -> None:
        """Record that the session now uses ``kind`` (for info, provenance, rebuilds)."""
