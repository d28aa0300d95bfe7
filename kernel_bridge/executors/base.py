"""The kernel's executor contract: what the kernel needs of a place where code runs.

:class:`RemoteExecutor` is small on purpose. An executor implements four methods:
:meth:`~RemoteExecutor.start`, :meth:`~RemoteExecutor.stop`,
:meth:`~RemoteExecutor.execute` and :meth:`~RemoteExecutor.interrupt`. The rest have
defaults that are right for an executor without them: :meth:`~RemoteExecutor.restart`
(stop, then start), :meth:`~RemoteExecutor.warm_up` (nothing), completion and
inspection (nothing found), comms (none), the debugger (unavailable).

Who calls what: :class:`kernel_bridge.session.Session` calls every method on behalf of
the kernel (one request at a time per method kind, from the kernel's event loop), the
``%bridge`` magics call ``start``, ``restart`` and ``stop``, and the debugger calls
``debug_channel`` and ``running_channel``. Nothing else in the kernel calls them. The
AutoGen-compatible API (``execute_code_blocks``, ``to_config``, prompt formatting,
files, packages) is a separate layer, :mod:`kernel_bridge.executors.autogen_compat`;
of it, the kernel uses only the file methods, for ``%bridge upload``/``download``.

Lifecycle::

    (new) --start()--> RUNNING --stop()--> CLOSED
                         |  ^
                 restart()  |   (a dead runtime is replaced by the next execute())
                         +--+

``execute`` starts the executor when needed, so a session may call it first.
"""

from __future__ import annotations

import abc
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from traitlets import MetaHasTraits

from ..errors import DebuggerUnavailableError
from ..events import Event

if TYPE_CHECKING:
    from ._comm import CommRequest
    from .runtime_backed.channel import RuntimeChannel

__all__ = [
    "BackgroundHandler",
    "Completion",
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
    once its session is set up with the ``comm`` package). Read by the kernel's comm
    relay, through the session, before it forwards a frontend's comm message."""

    @property
    def python_version(self) -> str | None:
        """The Python version where the code runs (``"3.12.1"``), None while unknown.

        Read by the session for ``kernel_info``'s ``language_info.version``, which must
        answer at once: never starts anything. The default knows nothing.
        """
        return None

    can_debug: ClassVar[bool] = False
    """Whether the visual debugger may work with this executor; read (on the class) by
    the kernel for ``kernel_info`` and by the kernelspec writer. The runtime still has to
    find debugpy: :meth:`debug_channel` checks."""

    temp_root: ClassVar[str] = "/tmp"
    """The temporary folder where the cells run; read (on the class) by the kernel to
    name the debugger's cell files before any runtime exists (JupyterLab asks for their
    prefix first). The default suits a container; an executor on this host says
    ``tempfile.gettempdir()``."""

    def running_channel(self) -> RuntimeChannel | None:
        """The channel of a runtime that is running now, else None (never starts one).

        Called by the debugger when it reads the namespace's variables. The default: None.
        """
        return None

    async def debug_channel(self) -> RuntimeChannel:
        """The started runtime's channel, for :mod:`kernel_bridge.debugger` to relay DAP.

        Called by the kernel's debugger on the first ``debug_request`` after a (re)start.
        Raises :class:`~kernel_bridge.errors.DebuggerUnavailableError` saying why not
        (the default, for executors without a private channel to their runtime).
        """
        raise DebuggerUnavailableError(
            f"the {self.kind!r} executor has no private channel to the place where the code "
            "runs, so it cannot host the debugger; use the local or docker executor to debug"
        )

    @abc.abstractmethod
    async def start(self) -> None:
        """Start the runtime (process, container or remote session) and inject functions.

        Called by the ``%bridge use`` magic before it switches to a new executor and by
        AutoGen users (``async with executor:``); the session relies on ``execute``
        starting what it needs. Idempotent. Raises
        :class:`~kernel_bridge.errors.ExecutorStartError` with a message that says what
        to do when the runtime cannot start.
        """

    async def warm_up(self) -> None:  # noqa: B027 - optional hook, a no-op by default
        """Start the runtime ahead of the first execution, if that is cheap and harmless.

        Called by the session, in the background, right after the kernel starts (``kernel_info``
        never waits for it). Never raises: what goes wrong is shown by the next
        ``execute``. Executors whose sessions cost money (ACA) keep the default no-op.
        """

    @abc.abstractmethod
    async def stop(self) -> None:
        """Release everything: runtime, container, remote session, temporary files.

        Called at kernel shutdown and on ``async with`` exit. Returns within about 2 s,
        never raises for an already stopped or dead runtime, and is idempotent.
        """

    async def restart(self) -> None:
        """Replace the runtime by a fresh one (all state lost) and inject functions again.

        Called by the ``%bridge restart`` magic (and by AutoGen when an agent is reset).
        The default stops, then starts; executors whose ``stop`` is final override it.
        """
        await self.stop()
        await self.start()

    @abc.abstractmethod
    async def interrupt(self) -> None:
        """Ask the running execution to stop with ``KeyboardInterrupt``, keeping state.

        Called by the session when the kernel receives an interrupt (SIGINT or
        ``interrupt_request``), while ``execute`` runs in another task. Returns at once; the running
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

        Called by the session for every cell (``execute_request``), and by
        ``execute_code_blocks`` for every block. Starts the runtime first when needed
        (its setup output comes first). A runtime that dies yields ``StateLost`` and an
        ``Error`` naming the cause, and the next call runs on a fresh runtime with the
        functions injected again.

        ``timeout`` (seconds, None for none): on expiry the code is interrupted; if it
        does not stop, the runtime is replaced and a ``StateLost`` says so; either way
        the iterator yields an ``Error`` with ename ``TimeoutError`` and
        ``Finished(124)``. Never raises for a user-code failure.
        """

    async def complete(self, code: str, cursor_pos: int) -> Completion:
        """Return completions at ``cursor_pos`` from the live namespace.

        Called by the session for ``complete_request``, possibly while a cell runs. Never
        raises: no matches when nothing can be said. The default finds nothing.
        """
        return Completion([], cursor_pos, cursor_pos)

    async def inspect(self, code: str, cursor_pos: int, detail_level: int = 0) -> Inspection:
        """Return help for the name at ``cursor_pos`` from the live namespace.

        Called by the session for ``inspect_request``, possibly while a cell runs. Never
        raises: ``found`` False when nothing is known. The default knows nothing.
        """
        return Inspection(False)

    async def deliver_comm(self, comm: CommRequest) -> AsyncIterator[Event]:
        """Hand a frontend comm message to the comm manager where the code runs.

        Called by the session for ``comm_open``/``comm_msg``/``comm_close``; yields what
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

        Called by the session for ``comm_info_request``; empty without comms (the default).
        """
        return {}

    def set_background_handler(self, handler: BackgroundHandler | None) -> None:  # noqa: B027
        """Register who receives events sent while no execution runs (the kernel's relay).

        Called by the session right after it builds the executor, and again when the
        relay changes. Executors whose code cannot send between executions ignore it
        (the default).
        """
