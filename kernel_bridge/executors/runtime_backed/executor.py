"""The executor contract implemented once for every backend that runs our runtime.

A subclass only says how to start a runtime (:meth:`RuntimeBackedExecutor._spawn`)
and how to move files; starting lazily, injecting the functions at every start,
serialising executions, timeouts, interrupts and replacing a dead runtime live here.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator, Sequence
from typing import TYPE_CHECKING, Any

from ...errors import (
    BridgeError,
    DebuggerUnavailableError,
    ExecutorStartError,
    FunctionsError,
    RuntimeProtocolError,
)
from ...events import Display, Error, Event, Finished, Stream
from .._comm import CommRequest
from ..base import BackgroundHandler, Completion, InputHandler, Inspection, RemoteExecutor
from .channel import RuntimeChannel, RuntimeTransport

if TYPE_CHECKING:
    from ...functions import FunctionsModule

__all__ = ["RuntimeBackedExecutor"]

log = logging.getLogger(__name__)

_PACKAGES_CODE = (
    "import importlib.metadata as _kb_m, json as _kb_j, re as _kb_re\n"
    "print(_kb_j.dumps(sorted({_kb_re.sub(r'[-_.]+', '-', (d.metadata['Name'] or '')).lower()"
    " for d in _kb_m.distributions()} - {''})))\n"
    "del _kb_m, _kb_j, _kb_re\n"
)


class RuntimeBackedExecutor(RemoteExecutor):
    """A :class:`RemoteExecutor` whose code runs in our runtime, reached by a transport.

    Subclasses implement :meth:`_spawn` (and may override :meth:`_on_stopped`) plus
    the file methods. ``functions`` are injected at every runtime start.
    """

    supports_comms = True
    startup_timeout: float = 60.0
    """Seconds a new runtime may take to say it is ready."""
    install_packages: bool = True
    """Whether the functions' missing python_packages are pip-installed where code runs."""

    def __init__(self) -> None:
        self._channel: RuntimeChannel | None = None
        self._lock: asyncio.Lock | None = None
        self._pending: list[Event] = []
        self._pending_changed: asyncio.Event | None = None
        self._warming_up = False
        self._warm_up_failed = False
        self._functions_module_cache: FunctionsModule | None = None
        self._background: BackgroundHandler | None = None

    # -- what subclasses provide -------------------------------------------------

    @abc.abstractmethod
    async def _spawn(self) -> RuntimeTransport:
        """Start one runtime process and return its transport (ready not yet read).

        Called when code must run and no runtime is alive. Raises
        :class:`ExecutorStartError` with a message that says what to do.
        """

    async def _on_stopped(self) -> None:
        """Release what outlives a runtime (containers, temp dirs); called by :meth:`stop`."""

    def _functions_source(self) -> tuple[Sequence[object], str]:
        """Return ``(functions, module_name)`` to inject; subclasses with functions override."""
        return (), "functions"

    # -- lifecycle -----------------------------------------------------------------

    def _get_lock(self) -> asyncio.Lock:
        if self._lock is None:
            self._lock = asyncio.Lock()
        return self._lock

    @property
    def python_version(self) -> str | None:
        """The Python version where the code runs: the runtime's, once it said it.

        Read by the kernel for ``language_info.version``; before the runtime is ready,
        whatever :meth:`_expected_python_version` knows (None: not yet known).
        """
        if self._channel is not None and self._channel.info.python:
            return self._channel.info.python
        return self._expected_python_version()

    def _expected_python_version(self) -> str | None:
        """The version the runtime will report, when known without starting it."""
        return None

    @property
    def runtime_alive(self) -> bool:
        """True while a runtime is running for this executor."""
        return self._channel is not None and self._channel.alive

    def _functions_module(self) -> FunctionsModule | None:
        functions, module_name = self._functions_source()
        if not functions:
            return None
        if self._functions_module_cache is None:
            from ...functions import build_functions_module

            self._functions_module_cache = build_functions_module(list(functions), module_name)
        return self._functions_module_cache

    async def _start_events(self) -> AsyncIterator[Event]:
        """Start a runtime and inject the functions, yielding what the user should see.

        Ends with ``Finished(0)`` when the session is usable, ``Finished(1)`` otherwise.
        """
        if self._warm_up_failed:  # a new attempt (completion, restart): the old failure is stale
            self._warm_up_failed = False
            self._pending.clear()
        if self._channel is not None:
            old, self._channel = self._channel, None
            with contextlib.suppress(Exception):
                await old.close()
        try:
            module = self._functions_module()
        except FunctionsError as exc:
            yield _error("FunctionsError", str(exc))
            yield Finished(1)
            return
        transport = await self._spawn()
        try:
            self._channel = await RuntimeChannel.open(
                transport, startup_timeout=self.startup_timeout
            )
        except RuntimeProtocolError:  # already says what to do; keep its type
            with contextlib.suppress(Exception):
                await transport.close()
            raise
        except BridgeError as exc:
            with contextlib.suppress(Exception):
                await transport.close()
            raise ExecutorStartError(f"{self.kind} executor: {exc}") from exc
        self._channel.background = self._background
        log.debug(
            "runtime ready: python %s, ipython=%s",
            self._channel.info.python,
            self._channel.info.ipython,
        )
        if module is None:
            yield Finished(0)
            return
        ok = True
        if module.function_names:
            async for event in self._channel.execute(
                module.setup_code(install_packages=self.install_packages),
                silent=False,
                store_history=False,
            ):
                if isinstance(event, Finished):
                    ok = event.ok
                else:
                    yield event
        if module.problems:
            text = (
                "some user-defined functions could not be injected: "
                + "; ".join(module.problems)
                + ". Fix them and restart the kernel; the others are available."
            )
            yield _error("FunctionsError", text)
            ok = False
        yield Finished(0 if ok else 1)

    async def _ensure_started(self) -> AsyncIterator[Event]:
        """Yield start-up events when no runtime is alive; nothing otherwise."""
        if self.runtime_alive:
            return
        async for event in self._start_events():
            yield event

    def _keep(self, event: Event) -> None:
        """Keep start-up output for the next execution (which may be following it live).

        An update of a display still waiting here replaces the older state of that
        display, so a long pull nobody watched is replayed as one display, not hundreds.
        """
        if isinstance(event, Display) and event.update and event.display_id is not None:
            for index in range(len(self._pending) - 1, -1, -1):
                kept = self._pending[index]
                if isinstance(kept, Display) and kept.display_id == event.display_id:
                    self._pending[index] = Display(
                        event.data, event.metadata, event.display_id, kept.update
                    )
                    break
            else:
                self._pending.append(event)
        else:
            self._pending.append(event)
        if self._pending_changed is not None:
            self._pending_changed.set()

    async def _start_quietly(self) -> bool:
        """Start a runtime outside an execution, keeping its output for the next one."""
        ok = True
        async for event in self._ensure_started():
            if isinstance(event, Finished):
                ok = event.ok
            else:
                self._keep(event)
        return ok

    async def warm_up(self) -> None:
        """Start the runtime now; its setup output goes to the next execution.

        An execution that arrives meanwhile shows that output as it comes (an image
        pull's progress, live), then runs. When the start fails, the next execution
        reports that failure (one error) instead of trying again; the one after retries.
        """
        self._warming_up = True
        try:
            async with self._get_lock():
                if not self.runtime_alive:
                    ok = await self._start_quietly()
                    log.debug("runtime warmed up (ok=%s)", ok)
        except BridgeError as exc:
            log.debug("warm-up failed; the next execution reports it: %s", exc)
            self._keep(_error(type(exc).__name__, str(exc)))
            self._warm_up_failed = True
        finally:
            self._warming_up = False
            if self._pending_changed is not None:
                self._pending_changed.set()

    async def _follow_warm_up(self) -> AsyncIterator[Event]:
        """Yield a running warm-up's output as it is produced, until the warm-up ends."""
        while self._warming_up:
            changed = self._pending_changed = asyncio.Event()
            pending, self._pending = self._pending, []
            for event in pending:
                yield event
            if self._warming_up:
                await changed.wait()

    async def start(self) -> None:
        """Start the runtime and inject functions; raise if that fails (see base class)."""
        async with self._get_lock():
            events: list[Event] = []
            ok = True
            async for event in self._ensure_started():
                if isinstance(event, Finished):
                    ok = event.ok
                else:
                    events.append(event)
            if not ok:
                raise ExecutorStartError(_describe(events))

    async def stop(self) -> None:
        """Shut the runtime down and release everything (see base class)."""
        channel, self._channel = self._channel, None
        if channel is not None:
            with contextlib.suppress(Exception):
                await channel.close()
        await self._on_stopped()

    async def restart(self) -> None:
        """Replace the runtime by a fresh one with the functions injected again."""
        async with self._get_lock():
            channel, self._channel = self._channel, None
            if channel is not None:
                with contextlib.suppress(Exception):
                    await channel.close()
            ok = await self._start_quietly()
        if not ok:
            raise ExecutorStartError(_describe(self._pending))

    can_debug = True  # the runtime hosts debugpy when importable there (kernel_bridge.debugger)

    def running_channel(self) -> RuntimeChannel | None:
        """The live runtime's channel, or None (see base class)."""
        channel = self._channel
        return channel if channel is not None and channel.alive else None

    async def debug_channel(self) -> RuntimeChannel:
        """The live runtime's channel, starting the runtime first when needed (see base class)."""
        channel = self._channel
        if channel is None or not channel.alive:
            await self.start()
            channel = self._channel
        if channel is None or not channel.alive:
            raise DebuggerUnavailableError("the runtime is not running")
        if not channel.info.debugpy:
            raise DebuggerUnavailableError(
                f"debugpy is not installed where the code runs (Python {channel.info.python}"
                f"{self._debugpy_hint()}): add the PyPI package debugpy there to use the debugger"
            )
        return channel

    def _debugpy_hint(self) -> str:
        """Where to add debugpy, in words, for the unavailable-debugger message."""
        return ""

    async def interrupt(self) -> None:
        """Interrupt the running execution (protocol message, then SIGINT)."""
        if self._channel is not None:
            await self._channel.interrupt()

    # -- execution -------------------------------------------------------------------

    async def execute(
        self,
        code: str,
        *,
        language: str = "python",
        timeout: float | None = None,
        input_handler: InputHandler | None = None,
        silent: bool = False,
        store_history: bool = True,
    ) -> AsyncIterator[Event]:
        """Run code in the runtime, starting it first when needed (see base class)."""
        async for event in self._follow_warm_up():
            yield event
        async with self._get_lock():
            pending, self._pending = self._pending, []
            for event in pending:
                yield event
            if self._warm_up_failed:
                self._warm_up_failed = False
                yield Finished(1)
                return
            started_ok = True
            try:
                async for event in self._ensure_started():
                    if isinstance(event, Finished):
                        started_ok = event.ok
                    else:
                        yield event
            except BridgeError as exc:
                yield _error(type(exc).__name__, str(exc))
                yield Finished(1)
                return
            if not started_ok:
                yield Finished(1)
                return
            assert self._channel is not None
            async for event in self._channel.execute(
                code,
                language=language,
                silent=silent,
                store_history=store_history,
                input_handler=input_handler,
                timeout=timeout,
            ):
                yield event

    def set_background_handler(self, handler: BackgroundHandler | None) -> None:
        """Route events sent between executions to ``handler`` (see base class)."""
        self._background = handler
        if self._channel is not None:
            self._channel.background = handler

    async def deliver_comm(self, comm: CommRequest) -> AsyncIterator[Event]:
        """Deliver a frontend comm message to the runtime (see base class).

        Waits for a running execution to end first, as ipykernel's shell does. With no
        runtime alive no comm can exist: a ``comm_open`` is answered by ``comm_close``.
        """
        async with self._get_lock():
            if self._channel is None or not self._channel.alive:
                async for event in super().deliver_comm(comm):
                    yield event
                return
            async for event in self._channel.deliver_comm(comm):
                yield event

    async def comm_info(self, target_name: str | None) -> dict[str, dict[str, str]]:
        """The runtime's open comms; answered at once, even while code runs."""
        channel = self._channel
        if channel is None or not channel.alive:
            return {}
        try:
            return await channel.comm_info(target_name)
        except (BridgeError, TimeoutError) as exc:
            log.debug("comm_info failed: %s", exc)
            return {}

    async def complete(self, code: str, cursor_pos: int) -> Completion:
        """Complete from the live namespace, starting the runtime when none runs."""
        try:
            async with self._get_lock():
                if not self.runtime_alive:
                    await self._start_quietly()
                if self._channel is None or not self._channel.alive:
                    return Completion([], cursor_pos, cursor_pos)
                return await self._channel.complete(code, cursor_pos)
        except (BridgeError, TimeoutError) as exc:
            log.debug("completion failed: %s", exc)
            return Completion([], cursor_pos, cursor_pos)

    async def inspect(self, code: str, cursor_pos: int, detail_level: int = 0) -> Inspection:
        """Inspect from the live namespace, starting the runtime when none runs."""
        try:
            async with self._get_lock():
                if not self.runtime_alive:
                    await self._start_quietly()
                if self._channel is None or not self._channel.alive:
                    return Inspection(False)
                return await self._channel.inspect(code, cursor_pos, detail_level)
        except (BridgeError, TimeoutError) as exc:
            log.debug("inspection failed: %s", exc)
            return Inspection(False)

    async def run_quietly(self, code: str) -> tuple[str, list[Error]]:
        """Run helper code (not user code) and return its stdout and errors."""
        out: list[str] = []
        errors: list[Error] = []
        async for event in self.execute(code, silent=True, store_history=False):
            if isinstance(event, Stream) and event.name == "stdout":
                out.append(event.text)
            elif isinstance(event, Error):
                errors.append(event)
        return "".join(out), errors

    async def get_available_packages(self) -> set[str]:
        """Return normalised distribution names importable in the runtime (importlib.metadata)."""
        out, errors = await self.run_quietly(_PACKAGES_CODE)
        if errors:
            raise ExecutorStartError(_describe(list(errors)))
        last = out.strip().splitlines()[-1] if out.strip() else "[]"
        names: Any = json.loads(last)
        return {str(n) for n in names}


def _error(ename: str, text: str) -> Error:
    return Error(ename, text, [f"{ename}: {text}"])


def _describe(events: Sequence[Event]) -> str:
    parts: list[str] = []
    for event in events:
        if isinstance(event, Error):
            parts.append(f"{event.ename}: {event.evalue}")
        elif isinstance(event, Stream):
            parts.append(event.text.rstrip())
    return "\n".join(p for p in parts if p) or "the runtime could not be started"
