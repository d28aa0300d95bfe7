"""The executor contract: one abstract class every backend implements.

The kernel never talks to an executor directly; :class:`kernel_bridge.session.Session`
does, and it is the only caller of the methods below unless a docstring says otherwise.
The seed-compatible public API (``execute_code_blocks``, ``upload_files``, ...) is
built on top of this contract, so the same methods serve both users.

Lifecycle::

    (new) --start()--> RUNNING --stop()--> CLOSED
                         |  ^
                 restart()  |   (a dead runtime is replaced by the next execute())
                         +--+
"""

from __future__ import annotations

import abc
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from traitlets import MetaHasTraits

from ..errors import DebuggerUnavailableError
from ..events import Event

if TYPE_CHECKING:
    from ._comm import CommRequest
    from .runtime_backed.channel import RuntimeChannel

__all__ = [
    "Completion",
    "ExecutorCapabilities",
    "ExecutorMeta",
    "InputHandler",
    "Inspection",
    "RemoteExecutor",
]

BackgroundHandler = Callable[[Event], None]
"""Receives events the code sends between executions (a widget updated by a thread)."""

InputHandler = Callable[[str, bool], Awaitable[str]]
"""Called with ``(prompt, password)`` when the code asks for input; returns the answer.

It raises :class:`EOFError` when the frontend does not allow stdin, and
:class:`KeyboardInterrupt` when the user interrupts while being asked.
"""


@dataclass(frozen=True)
class Completion:
    """The answer to a completion request, in Jupyter's terms."""

    matches: list[str]
    cursor_start: int
    cursor_end: int
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Inspection:
    """The answer to an inspection request (``found`` False when nothing is known)."""

    found: bool
    data: dict[str, Any] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ExecutorCapabilities:
    """What an executor can honestly do; the kernel words its messages by these."""

    streaming: bool
    """Output arrives while the code runs (False: only when it ends)."""
    remote_interrupt: bool
    """An interrupt really stops the running code (False: it can only be abandoned)."""
    stdin: bool
    """``input()`` in the code can be answered through the frontend."""
    languages: tuple[str, ...] = ("python",)
    """Block languages ``execute`` accepts (always includes ``python``)."""


class ExecutorMeta(MetaHasTraits, abc.ABCMeta):
    """Metaclass for executors that are also traitlets Configurables (all of ours).

    Use as ``class X(SomeExecutorBase, LoggingConfigurable, metaclass=ExecutorMeta)``.
    """


class RemoteExecutor(abc.ABC):
    """A place where code runs with its state kept between executions.

    Subclasses: :class:`~kernel_bridge.executors.local.LocalExecutor`,
    :class:`~kernel_bridge.executors.docker.DockerCommandLineCodeExecutor`,
    :class:`~kernel_bridge.executors.aca.ACADynamicSessionsCodeExecutor`.

    Every method may be called from the kernel's event loop only; none blocks it.
    """

    kind: ClassVar[str]
    """Short name used in configuration (``--BridgeKernel.executor=<kind>``)."""

    supports_comms: bool = False
    """Whether comms (widgets) reach the code: True for executors that relay them (ACA:
    once its session is set up with the ``comm`` package)."""

    @property
    @abc.abstractmethod
    def capabilities(self) -> ExecutorCapabilities:
        """What this executor can do; read by the kernel when wording messages."""

    can_debug: ClassVar[bool] = False
    """Whether the visual debugger may work with this executor (advertised in kernel_info
    and the kernelspec); the runtime still has to find debugpy, :meth:`debug_channel` checks."""

    def running_channel(self) -> RuntimeChannel | None:
        """The channel of a runtime that is running now, else None (never starts one).

        The debugger reads the namespace's variables through it.
        """
        return None

    async def debug_channel(self) -> RuntimeChannel:
        """The started runtime's channel, for :mod:`kernel_bridge.debugger` to relay DAP.

        Called by the kernel's debugger on the first ``debug_request`` after a (re)start.
        Raises :class:`~kernel_bridge.errors.DebuggerUnavailableError` saying why not.
        """
        raise DebuggerUnavailableError(
            f"the {self.kind!r} executor has no private channel to the place where the code "
            "runs, so it cannot host the debugger; use the local or docker executor to debug"
        )

    @abc.abstractmethod
    async def start(self) -> None:
        """Start the runtime (process, container or remote session) and inject functions.

        Called by the session before the first execution, and by users of the seed API
        (``async with executor:``). Idempotent. Raises
        :class:`~kernel_bridge.errors.ExecutorStartError` with a message that says what
        to do when the runtime cannot start.
        """

    async def warm_up(self) -> None:  # noqa: B027 - optional hook, a no-op by default
        """Start the runtime ahead of the first execution, if that is cheap and harmless.

        Called by the kernel in the background right after it starts (``kernel_info``
        never waits for it). Never raises: what goes wrong is shown by the next
        ``execute``. Executors whose sessions cost money (ACA) keep the default no-op.
        """

    @abc.abstractmethod
    async def stop(self) -> None:
        """Release everything: runtime, container, remote session, temporary files.

        Called at kernel shutdown and on ``async with`` exit. Returns within about 2 s,
        never raises for an already stopped or dead runtime, and is idempotent.
        """

    @abc.abstractmethod
    async def restart(self) -> None:
        """Replace the runtime by a fresh one (all state lost) and inject functions again.

        Called for a kernel restart done in place and by users of the seed API.
        """

    @abc.abstractmethod
    async def interrupt(self) -> None:
        """Ask the running execution to stop with ``KeyboardInterrupt``, keeping state.

        Called from the kernel when the user interrupts. Returns at once; the running
        ``execute`` iterator then ends (within 1 s where ``remote_interrupt`` holds)
        with an ``Error`` whose ename is ``KeyboardInterrupt``. Executors that cannot
        stop remote code end the iterator anyway and say what became of the code.
        """

    @abc.abstractmethod
    def execute(
        self,
        code: str,
        *,
        language: str = "python",
        timeout: float | None = None,
        input_handler: InputHandler | None = None,
        silent: bool = False,
        store_history: bool = True,
    ) -> AsyncIterator[Event]:
        """Run ``code`` and yield its events as they happen, ending with ``Finished``.

        Called by the session for every cell, and by ``execute_code_blocks`` for every
        block. Starts the runtime first when needed (its setup output comes first). A
        runtime that dies yields ``StateLost`` and an ``Error`` naming the cause, and
        the next call runs on a fresh runtime with the functions injected again.

        ``timeout`` (seconds, None for none): on expiry the code is interrupted; if it
        does not stop, the runtime is replaced and a ``StateLost`` says so; either way
        the iterator yields an ``Error`` with ename ``TimeoutError`` and
        ``Finished(124)``. Never raises for a user-code failure.
        """

    @abc.abstractmethod
    async def complete(self, code: str, cursor_pos: int) -> Completion:
        """Return completions at ``cursor_pos`` from the live namespace.

        Called by the kernel for ``complete_request``; returns no matches (rather than
        starting a runtime) when none is running.
        """

    @abc.abstractmethod
    async def inspect(self, code: str, cursor_pos: int, detail_level: int = 0) -> Inspection:
        """Return help for the name at ``cursor_pos`` from the live namespace.

        Called by the kernel for ``inspect_request``; ``found`` is False when no runtime runs.
        """

    async def deliver_comm(self, comm: CommRequest) -> AsyncIterator[Event]:
        """Hand a frontend comm message to the comm manager where the code runs.

        Called by the kernel for ``comm_open``/``comm_msg``/``comm_close``; yields what
        the handlers produced (comm replies, output), ending with ``Finished``. The
        default (executors without comms) yields a ``comm_close`` for a ``comm_open``,
        so the frontend knows nothing listens, and otherwise only ``Finished``.
        """
        from ..events import Finished, IOPubMessage

        if comm.msg_type == "comm_open":
            comm_id = comm.content.get("comm_id")
            yield IOPubMessage("comm_close", {"comm_id": comm_id, "data": {}})
        yield Finished(0)

    async def comm_info(self, target_name: str | None) -> dict[str, dict[str, str]]:
        """The open comms where the code runs: ``{comm_id: {"target_name": name}}``.

        Called by the kernel for ``comm_info_request``; empty without comms.
        """
        return {}

    def set_background_handler(self, handler: BackgroundHandler | None) -> None:  # noqa: B027
        """Register who receives events sent while no execution runs (the kernel's relay).

        Executors whose code cannot send between executions ignore it.
        """

    @abc.abstractmethod
    async def upload_files(self, files: Sequence[Path | str]) -> None:
        """Copy files from the host's work_dir into the runtime's working directory.

        Names are relative to work_dir; a name that escapes it raises
        :class:`~kernel_bridge.errors.ConfigurationError`.
        """

    @abc.abstractmethod
    async def download_files(self, files: Sequence[Path | str]) -> list[str]:
        """Copy files from the runtime's working directory into the host's work_dir.

        Returns the host paths written; names that escape either directory are refused.
        """

    @abc.abstractmethod
    async def get_file_list(self) -> list[str]:
        """List the file names in the runtime's working directory."""

    @abc.abstractmethod
    async def get_available_packages(self) -> set[str]:
        """Return the normalised names of the distributions importable in the runtime."""
