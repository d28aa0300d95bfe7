"""The kernel process: ipykernel's application, set up for a bridge kernel.

Launched by Jupyter as ``python -m kernel_bridge -f {connection_file} [--Class.trait=value ...]``.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence
from typing import Any

import zmq
from ipykernel.kernelapp import IPKernelApp
from traitlets import Bool, DottedObjectName, Type

from . import _early_listen
from ._wire import splicing_packer
from .executors.registry import executor_kinds, executor_plugin
from .kernel import BridgeKernel

__all__ = ["BridgeKernelApp", "main"]


def _executor_kinds_in(argv: Sequence[str]) -> tuple[str, ...]:
    """The executor kinds whose options the command line may use.

    Only the configured executor's class is imported at start (each costs tens of
    milliseconds of cold start); ``--help``/``--help-all`` list them all.
    """
    if any(arg.startswith("--help") for arg in argv):
        return executor_kinds()
    default = str(BridgeKernel.class_traits()["executor"].default_value)
    kind = default
    for index, arg in enumerate(argv):
        if arg.startswith("--BridgeKernel.executor="):
            kind = arg.split("=", 1)[1]
        elif arg == "--BridgeKernel.executor" and index + 1 < len(argv):
            kind = argv[index + 1]
    return tuple(dict.fromkeys((default, kind)))


def _configurable_classes(kinds: Sequence[str]) -> list[type[Any]]:
    """The executor classes of ``kinds``, so ``--Class.trait=value`` flags are parsed by type.

    An unknown kind, a broken plug-in or a backend without its dependencies is skipped
    here: the first cell reports it, with what to do.
    """
    classes: list[type[Any]] = []
    for kind in kinds:
        try:
            classes.append(executor_plugin(kind).executor_class())
        except Exception:
            continue
    return classes


COPY_THRESHOLD = 2**20
"""Messages with a frame at least this large are handed to ZMQ without a copy.

jupyter_client's default (64 KiB) sits just under a stream message of a busy cell (64 KiB
of text plus JSON); sent without a copy, each one stays alive until pyzmq's garbage
collector thread, started for it with a ZMQ context of its own, hears that ZMQ is done with
it. Copying up to 1 MiB costs microseconds; images above it still go without a copy."""


class BridgeKernelApp(IPKernelApp):
    """IPKernelApp whose kernel is :class:`BridgeKernel`; created by :func:`main`."""

    name = "kernel-bridge"
    kernel_class = Type(BridgeKernel, klass="ipykernel.kernelbase.Kernel").tag(config=True)  # type: ignore[assignment]
    # The kernel process runs no user code; nothing it writes belongs in a cell.
    capture_fd_output = Bool(False).tag(config=True)
    # Nor does anything it prints: sys.stdout/sys.stderr stay the process's own (its log).
    # ipykernel's OutStream would make every flush of them (four per execute request)
    # a round trip to the IOPub thread, for nothing.
    outstream_class = DottedObjectName(
        None, allow_none=True, help="OutStream factory (none: the kernel process prints to its log)"
    ).tag(config=True)

    # Listed by --help-all, and typed when given as --Class.trait=value.
    classes = [*IPKernelApp.classes, BridgeKernel]

    def initialize(self, argv: Sequence[str] | None = None) -> None:
        """Register the configured executor's class, then initialise as ipykernel does."""
        self.register_executor_classes(list(sys.argv[1:] if argv is None else argv))
        super().initialize(argv)

    def register_executor_classes(self, argv: Sequence[str]) -> None:
        """Add the executor classes ``argv`` may configure, so their flags parse by type."""
        self._register(_configurable_classes(_executor_kinds_in(argv)))

    def _register(self, classes: Sequence[type[Any]]) -> None:
        extra: list[Any] = [c for c in classes if c not in self.classes]
        self.classes = [*self.classes, *extra]

    def load_config_file(self, *args: Any, **kwargs: Any) -> None:
        """Load the config files; an executor chosen there has its class registered too.

        Called by ``initialize`` after the command line was parsed. The command line's
        ``--Class.trait=value`` flags for a class not registered while parsing are kept as
        text; the executor, built as a configurable with the kernel as parent, converts
        them by its traits' types.
        """
        super().load_config_file(*args, **kwargs)
        section = self.config.get("BridgeKernel")
        kind = section.get("executor") if section is not None else None
        if isinstance(kind, str):
            self._register(_configurable_classes((kind,)))

    def init_sockets(self) -> None:
        """Create and bind the sockets, then close the early listeners none of them took."""
        try:
            super().init_sockets()
        finally:
            _early_listen.release()

    def _try_bind_socket(self, s: zmq.Socket[Any], port: int) -> int:
        """Bind ``s`` to ``port``, taking over the early listener there when there is one.

        The frontend's connections already waiting in that listener's backlog are then
        accepted by ``s`` (see :mod:`kernel_bridge._early_listen`).
        """
        if port > 0:
            fd = _early_listen.take(self.transport, self.ip, port)
            if fd is not None:
                s.setsockopt(zmq.USE_FD, fd)
        return int(super()._try_bind_socket(s, port))

    def init_kernel(self) -> None:
        """Route kernel_bridge's own loggers to the application's log before the kernel starts."""
        ours = logging.getLogger("kernel_bridge")
        ours.setLevel(self.log.getEffectiveLevel())
        for handler in self.log.handlers:
            ours.addHandler(handler)
        ours.propagate = False
        session_config = self.config.get("Session")
        if session_config is None or "copy_threshold" not in session_config:
            self.session.copy_threshold = COPY_THRESHOLD
        if self.session.packer.lower() in ("json", "orjson"):
            # images arrive as checked base64 text: copied into messages, never re-encoded
            self.session.pack = splicing_packer(self.session.pack)
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
