"""The session: what the kernel holds between cells.

It builds the configured executor on first use (so ``kernel_info`` answers at once and
a bad configuration becomes an error in each cell, not a dead kernel), forwards
requests to it, and turns every failure into events. It never raises to the kernel.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable

from .errors import BridgeError, ConfigurationError
from .events import Error, Event, Finished
from .executors._comm import CommRequest
from .executors.base import (
    BackgroundHandler,
    Completion,
    InputHandler,
    Inspection,
    RemoteExecutor,
)

__all__ = ["Session"]

log = logging.getLogger(__name__)

ExecutorFactory = Callable[[], RemoteExecutor]


class Session:
    """One kernel's link to its executor; created by the kernel, used for every request."""

    def __init__(self, factory: ExecutorFactory, *, cell_timeout: float | None = None) -> None:
        self._factory = factory
        self._executor: RemoteExecutor | None = None
        self._notices: list[Error] = []
        self.cell_timeout = cell_timeout
        self._background: BackgroundHandler | None = None

    def set_background_handler(self, handler: BackgroundHandler | None) -> None:
        """Say who gets events sent between cells; called once by the kernel's comm relay."""
        self._background = handler
        if self._executor is not None:
            self._executor.set_background_handler(handler)

    def report_at_next_cell(self, error: Error) -> None:
        """Show ``error`` in the next cell instead of running it (e.g. a broken function).

        Called by the executor factory when part of the configuration could not be used.
        """
        self._notices.append(error)

    @property
    def supports_comms(self) -> bool:
        """Whether widgets can be interactive with the configured executor."""
        return self._executor is not None and self._executor.supports_comms

    @property
    def python_version(self) -> str | None:
        """The Python version where the code runs, once known (for ``language_info``)."""
        try:
            executor = self._get_executor()
        except Exception:  # a configuration error is the first cell's to report
            return None
        return executor.python_version or None

    @property
    def executor(self) -> RemoteExecutor | None:
        """The executor, once built (None before the first cell or when misconfigured)."""
        return self._executor

    def _get_executor(self) -> RemoteExecutor:
        if self._executor is None:
            self._executor = self._factory()
            self._executor.set_background_handler(self._background)
        return self._executor

    def get_executor(self) -> RemoteExecutor:
        """The executor, built now if needed; raises BridgeError when it cannot be built.

        Called by the ``%bridge`` magics, which act on the executor directly.
        """
        return self._get_executor()

    def replace_executor(self, executor: RemoteExecutor) -> RemoteExecutor | None:
        """Make ``executor`` the one that runs the next cells; return the previous one.

        Called by ``%bridge use`` once the new executor has started; the caller stops
        the previous executor.
        """
        previous, self._executor = self._executor, executor
        return previous

    async def execute(
        self,
        code: str,
        *,
        silent: bool = False,
        store_history: bool = True,
        input_handler: InputHandler | None = None,
    ) -> AsyncIterator[Event]:
        """Run a cell and yield its events, ending with ``Finished``; called per execute_request."""
        try:
            executor = self._get_executor()
            if self._notices:
                notices, self._notices = self._notices, []
                for notice in notices:
                    yield notice
                yield Finished(1)
                return
            async for event in executor.execute(
                code,
                timeout=self.cell_timeout or None,
                input_handler=input_handler,
                silent=silent,
                store_history=store_history,
            ):
                yield event
        except BridgeError as exc:
            yield _error_event(exc)
            yield Finished(1)
        except Exception as exc:  # a bug of ours must not kill the kernel
            log.exception("executor failed")
            text = (
                f"kernel_bridge failed while running this cell: {type(exc).__name__}: {exc}. "
                "This is a bug in kernel_bridge; the kernel is still usable. If cells keep "
                "failing, restart the kernel."
            )
            yield Error("InternalError", text, [text])
            yield Finished(1)

    async def warm_up(self) -> None:
        """Build the executor and let it start ahead of the first cell; never raises.

        Called once, in the background, when the kernel starts. A configuration error is
        left for the first cell to report.
        """
        try:
            executor = self._get_executor()
        except Exception as exc:
            log.debug("executor not built ahead of the first cell: %s", exc)
            return
        try:
            await executor.warm_up()
        except Exception:
            log.debug("warm-up failed", exc_info=True)

    async def interrupt(self) -> None:
        """Interrupt the running cell; called when the kernel receives an interrupt."""
        if self._executor is not None:
            try:
                await self._executor.interrupt()
            except Exception:
                log.exception("interrupt failed")

    async def deliver_comm(self, comm: CommRequest) -> AsyncIterator[Event]:
        """Deliver a frontend comm message; yields its events, never raises."""
        try:
            executor = self._get_executor()
        except Exception as exc:
            log.debug("comm message not delivered: %s", exc)
            yield Finished(0)
            return
        try:
            async for event in executor.deliver_comm(comm):
                yield event
        except Exception:
            log.exception("comm delivery failed")
            yield Finished(1)

    async def comm_info(self, target_name: str | None) -> dict[str, dict[str, str]]:
        """The open comms where the code runs; empty when unavailable."""
        if self._executor is None:
            return {}
        try:
            return await self._executor.comm_info(target_name)
        except Exception as exc:
            log.debug("comm_info unavailable: %s", exc)
            return {}

    async def complete(self, code: str, cursor_pos: int) -> Completion:
        """Completions at the cursor; empty when the executor is unavailable."""
        try:
            return await self._get_executor().complete(code, cursor_pos)
        except Exception as exc:
            log.debug("completion unavailable: %s", exc)
            return Completion([], cursor_pos, cursor_pos)

    async def inspect(self, code: str, cursor_pos: int, detail_level: int) -> Inspection:
        """Help for the name at the cursor; not found when the executor is unavailable."""
        try:
            return await self._get_executor().inspect(code, cursor_pos, detail_level)
        except Exception as exc:
            log.debug("inspection unavailable: %s", exc)
            return Inspection(False)

    async def shutdown(self) -> None:
        """Stop the executor and release its resources; called at kernel shutdown."""
        executor, self._executor = self._executor, None
        if executor is not None:
            try:
                await executor.stop()
            except Exception:
                log.exception("executor stop failed")


def _error_event(exc: BridgeError) -> Error:
    ename = type(exc).__name__
    text = str(exc)
    hint = ""
    if isinstance(exc, ConfigurationError):
        hint = " The kernel is still running; fix the kernelspec and restart the kernel."
    return Error(ename, text + hint, [f"{ename}: {text}{hint}"])
