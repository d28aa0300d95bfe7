"""The kernel process: ipykernel's application, set up for a bridge kernel.

Launched by Jupyter as ``python -m kernel_bridge -f {connection_file} [--Class.trait=value ...]``.
"""

from __future__ import annotations

import importlib
import logging
from typing import Any

from ipykernel.kernelapp import IPKernelApp
from traitlets import Bool, Type

from .kernel import BridgeKernel

__all__ = ["BridgeKernelApp", "main"]


def _configurable_classes() -> list[type[Any]]:
    """Our configurable classes, so ``--Class.trait=value`` flags are parsed by type."""
    classes: list[type[Any]] = [BridgeKernel]
    for module_name, class_name in (
        ("kernel_bridge.executors.local", "LocalExecutor"),
        ("kernel_bridge.executors.docker", "DockerCommandLineCodeExecutor"),
        ("kernel_bridge.executors.aca", "ACADynamicSessionsCodeExecutor"),
    ):
        try:
            classes.append(getattr(importlib.import_module(module_name), class_name))
        except Exception:  # a backend without its extra installed
            continue
    return classes


class BridgeKernelApp(IPKernelApp):
    """IPKernelApp whose kernel is :class:`BridgeKernel`; created by :func:`main`."""

    name = "kernel-bridge"
    kernel_class = Type(BridgeKernel, klass="ipykernel.kernelbase.Kernel").tag(config=True)  # type: ignore[assignment]
    # The kernel process runs no user code; nothing it writes belongs in a cell.
    capture_fd_output = Bool(False).tag(config=True)

    # Listed by --help-all, and typed when given as --Class.trait=value.
    classes = [*IPKernelApp.classes, *_configurable_classes()]  # type: ignore[assignment]

    def init_kernel(self) -> None:
        """Route kernel_bridge's own loggers to the application's log before the kernel starts."""
        ours = logging.getLogger("kernel_bridge")
        ours.setLevel(self.log.getEffectiveLevel())
        for handler in self.log.handlers:
            ours.addHandler(handler)
        ours.propagate = False
        super().init_kernel()


    def start(self) -> None:
        """Serve the kernel until it is shut down, then release the executor."""
        try:
            super().start()
        finally:
            kernel = getattr(self, "kernel", None)
            if isinstance(kernel, BridgeKernel):
                kernel.stop_executor()


def main() -> None:
    """Run the kernel; the entry point of ``python -m kernel_bridge``."""
    BridgeKernelApp.launch_instance()
