"""The host side of the runtime protocol (docs/runtime-protocol.md).

A :class:`RuntimeTransport` is one running runtime process, however it was started (a
local subprocess, a container's attach stream); a :class:`RuntimeChannel` speaks the
protocol over it: it turns ``execute`` requests into event streams, answers input
requests, escalates interrupts, enforces timeouts and notices when the runtime dies.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import itertools
import json
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

from ..._wire import base64_text
from ...errors import RuntimeDiedError, RuntimeProtocolError, StdinNotAllowedError
from ...events import (
    ClearOutput,
    Display,
    Error,
    Event,
    Finished,
    Page,
    Result,
    StateLost,
    Stream,
)
from ...runtime import PROTOCOL_VERSION
from .._comm import CommRequest, encode_buffers, iopub_event, parent_for_runtime
from ..base import Completion, InputHandler, Inspection
from ._output_queue import OutputQueue

__all__ = [
    "MAX_LINE_BYTES",
    "BackgroundHandler",
    "RuntimeChannel",
    "RuntimeInfo",
    "RuntimeTransport",
]

BackgroundHandler = Callable[[Event], None]
"""Called with each event the runtime sends while no request runs (a background thread's
comm traffic or output); set by the kernel's comm relay."""

log = logging.getLogger(__name__)

INTERRUPT_ESCALATION_S = 0.5
"""How long a protocol interrupt may go unanswered before the OS signal is sent."""
TIMEOUT_GRACE_S = 2.0
"""How long timed-out code may take to stop after the interrupt before the runtime is replaced."""
SHUTDOWN_WAIT_S = 1.5
"""How long a runtime may take to exit after ``shutdown`` (it gives its child processes 1 s
after SIGTERM) before it is killed."""
REQUEST_TIMEOUT_S = 10.0
"""How long a completion or inspection may take."""
MAX_LINE_BYTES = 1 << 30
"""Longest protocol line a transport accepts (a large display is one line). The runtime's
protocol descriptor is reachable from the session's code, so a longer line is taken as
the end of the runtime's output, not buffered on."""
OUTPUT_BACKLOG = 128 * 1024
"""Characters of output read from the runtime but not yet taken by the request, at most
(beyond it the pump waits; see :mod:`._output_queue`)."""


class RuntimeTransport(abc.ABC):
    """One running runtime process, as a pair of byte streams plus process control.

    Implemented by each runtime-backed executor (a subprocess, a container). All
    methods are called from the event loop; none may block it.
    """

    @abc.abstractmethod
    async def read_line(self) -> bytes:
        """Return the next protocol line (with its newline); ``b""`` at end of stream."""

    @abc.abstractmethod
    async def write(self, data: bytes) -> None:
        """Send bytes to the runtime's protocol input; raises OSError when it is gone."""

    @abc.abstractmethod
    async def send_interrupt_signal(self) -> None:
        """Deliver SIGINT to the runtime by OS means (when the protocol message is not heard)."""

    @abc.abstractmethod
    async def kill(self) -> None:
        """Stop the runtime at once. Idempotent, fast, never raises for a dead runtime."""

    @abc.abstractmethod
    async def describe_exit(self) -> str:
        """Say, for people, how the runtime ended ("killed by signal 9 (SIGKILL)", "OOMKilled")."""

    @abc.abstractmethod
    async def close(self) -> None:
        """Release the transport's pipes or sockets; called once, after the runtime ended."""


@dataclass(frozen=True)
class RuntimeInfo:
    """What the runtime said about itself in its ``ready`` message."""

    pid: int
    python: str
    ipython: bool
    cwd: str
    debugpy: bool = False  # debugpy importable where the code runs (the debugger works)


class _Dead:
    """Sentinel put in the event queue when the runtime's output ends."""


_DEAD = _Dead()


class RuntimeChannel:
    """The protocol conversation with one runtime; created by :meth:`open`.

    Used by :class:`~kernel_bridge.executors.runtime_backed.executor.RuntimeBackedExecutor`,
    one request at a time (the executor serialises them).
    """

    def __init__(self, transport: RuntimeTransport, info: RuntimeInfo) -> None:
        self._transport = transport
        self.info = info
        self._ids = itertools.count(1)
        self._events: OutputQueue | None = None
        self._replies: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._alive = True
        self._running = False
        self._closing = False
        self._interrupt_task: asyncio.Task[None] | None = None
        self.background: BackgroundHandler | None = None
        # receives the DAP messages debugpy sends (see kernel_bridge.debugger)
        self.on_debug_message: Callable[[dict[str, Any]], None] | None = None
        self._pump_task = asyncio.ensure_future(self._pump())

    @classmethod
    async def open(
        cls, transport: RuntimeTransport, *, startup_timeout: float = 60.0
    ) -> RuntimeChannel:
        """Wait for the runtime's ``ready`` message and return the channel.

        Raises :class:`RuntimeDiedError` when the runtime ends or stays silent first, and
        :class:`RuntimeProtocolError` (killing the runtime) when its ``ready`` announces a
        protocol version other than :data:`~kernel_bridge.runtime.PROTOCOL_VERSION`.
        """
        try:
            async with asyncio.timeout(startup_timeout):
                while True:
                    line = await transport.read_line()
                    if not line:
                        raise RuntimeDiedError(
                            "the runtime exited before it was ready "
                            f"({await transport.describe_exit()})"
                        )
                    try:
                        msg = json.loads(line)
                    except ValueError:
                        log.debug("runtime said before ready: %r", line[:200])
                        continue
                    if isinstance(msg, dict) and msg.get("type") == "ready":
                        break
        except TimeoutError:
            await transport.kill()
            raise RuntimeDiedError(
                f"the runtime did not become ready within {startup_timeout:g} s"
            ) from None
        announced = msg.get("protocol")
        if announced != PROTOCOL_VERSION:
            await transport.kill()
            raise RuntimeProtocolError(
                f"the runtime speaks protocol version {announced!r}, but this kernel_bridge "
                f"speaks version {PROTOCOL_VERSION}: the runtime comes from another "
                "kernel_bridge version. Install the same kernel_bridge version for the kernel "
                "and for the runtime it starts, then restart the kernel.",
                runtime_version=announced,
                host_version=PROTOCOL_VERSION,
            )
        info = RuntimeInfo(
            pid=int(msg.get("pid", 0)),
            python=str(msg.get("python", "")),
            ipython=bool(msg.get("ipython", False)),
            cwd=str(msg.get("cwd", "")),
            debugpy=bool(msg.get("debugpy", False)),
        )
        return cls(transport, info)

    @property
    def alive(self) -> bool:
        """False once the runtime's output has ended (it died or was shut down)."""
        return self._alive

    async def _pump(self) -> None:
        """Read every line from the runtime and route it to the waiting request."""
        try:
            while True:
                line = await self._transport.read_line()
                if not line:
                    break
                try:
                    msg = json.loads(line)
                except ValueError:
                    log.warning("runtime sent a line that is not JSON: %r", line[:200])
                    continue
                if not isinstance(msg, dict):
                    continue
                if "attachments" in msg and not await self._read_attachments(msg):
                    break
                kind = msg.get("type")
                if kind == "interrupt_ack":
                    if self._interrupt_task is not None:
                        self._interrupt_task.cancel()
                    continue
                if kind == "debug_dap":
                    self._relay_debug_message(msg.get("message"))
                    continue
                if kind == "reply":
                    future = self._replies.pop(int(msg.get("id", -1)), None)
                    if future is not None and not future.done():
                        future.set_result(msg)
                elif self._events is not None:
                    queue = self._events
                    queue.put(msg)
                    if kind == "done":
                        # What follows belongs to no request (a background thread's
                        # output): it must not land in a queue nobody reads any more.
                        self._events = None
                    # A reply the request awaits lies somewhere behind the output: never
                    # wait for room while one is expected.
                    while (
                        queue.full()
                        and not self._replies
                        and self._events is queue
                        and not self._closing
                    ):
                        await queue.wait_for_room()
                else:
                    self._background(msg)
        except Exception:  # the transport broke: same as the runtime going away
            log.debug("runtime transport failed", exc_info=True)
        finally:
            self._alive = False
            if self._events is not None:
                self._events.put(_DEAD)
            for future in self._replies.values():
                if not future.done():
                    future.set_exception(RuntimeDiedError("the runtime went away"))
            self._replies.clear()

    async def _read_attachments(self, msg: dict[str, Any]) -> bool:
        """Put the raw lines that follow a display/result into its bundle.

        The runtime sends large base64 values after the message's line, one line each,
        named by ``attachments``: ``[[mime type, length], ...]``. False at end of stream.
        """
        specs = msg.pop("attachments")
        data = msg.get("data")
        if not isinstance(specs, list) or not isinstance(data, dict):
            log.warning("runtime sent attachments without a data bundle; ignored")
            return True
        for spec in specs:
            line = await self._transport.read_line()
            if not line:
                return False
            key, size = spec if isinstance(spec, list) and len(spec) == 2 else (None, None)
            text = line[:-1] if line.endswith(b"\n") else line
            if not isinstance(key, str) or len(text) != size:
                log.warning("runtime sent a malformed attachment %r; dropped", spec)
                continue
            data[key] = base64_text(text)
        return True

    def _background(self, msg: dict[str, Any]) -> None:
        """Hand an event that arrived between requests to the background handler."""
        event = _to_event(msg)
        if event is None or self.background is None:
            return
        try:
            self.background(event)
        except Exception:
            log.exception("background event handler failed")

    def _relay_debug_message(self, message: object) -> None:
        """Hand a DAP message to the debugger; a bad one is logged, never ends the pump."""
        if self.on_debug_message is None or not isinstance(message, dict):
            return
        try:
            self.on_debug_message(message)
        except Exception:
            log.warning("the debugger could not handle a DAP message", exc_info=True)

    async def _send(self, msg: dict[str, Any]) -> None:
        data = (json.dumps(msg, ensure_ascii=False) + "\n").encode("utf-8")
        await self._transport.write(data)

    async def execute(
        self,
        code: str,
        *,
        language: str = "python",
        silent: bool = False,
        store_history: bool = True,
        input_handler: InputHandler | None = None,
        timeout: float | None = None,
    ) -> AsyncIterator[Event]:
        """Run code in the runtime and yield its events, ending with ``Finished``.

        On timeout the code is interrupted; when it will not stop within
        ``TIMEOUT_GRACE_S`` the runtime is killed (``alive`` becomes False).
        """
        request = {
            "type": "execute",
            "code": code,
            "language": language,
            "silent": silent,
            "store_history": store_history,
            "parent": parent_for_runtime(),
        }
        async for event in self._run_request(request, input_handler, timeout):
            yield event

    async def deliver_comm(self, comm: CommRequest) -> AsyncIterator[Event]:
        """Deliver a frontend comm message to the runtime's comm manager.

        Yields what its handlers produced (comm replies, output), ending with ``Finished``.
        """
        request = {
            "type": "comm",
            "msg_type": comm.msg_type,
            "content": comm.content,
            "metadata": comm.metadata,
            "buffers": encode_buffers(comm.buffers),
            "parent": parent_for_runtime(),
        }
        async for event in self._run_request(request, None, None):
            yield event

    async def _run_request(
        self,
        request: dict[str, Any],
        input_handler: InputHandler | None,
        timeout: float | None,
    ) -> AsyncIterator[Event]:
        """Send an execute-like request and yield its events up to ``done``."""
        if not self._alive:
            raise RuntimeDiedError("the runtime is not running")
        request_id = next(self._ids)
        queue = OutputQueue(OUTPUT_BACKLOG)
        self._events = queue
        self._running = True
        loop = asyncio.get_running_loop()
        deadline = None if not timeout else loop.time() + timeout
        timed_out = False
        try:
            await self._send({**request, "id": request_id})
        except OSError:
            self._running = False
            self._events = None
            yield await self._death_error()
            yield Finished(1)
            return
        try:
            while True:
                wait: float | None = None
                if deadline is not None:
                    wait = max(0.0, deadline - loop.time())
                try:
                    item = await asyncio.wait_for(queue.get(), wait)
                except TimeoutError:
                    if timed_out:  # the grace period ran out: replace the runtime
                        await self._transport.kill()
                        yield StateLost(
                            f"The code did not stop within {TIMEOUT_GRACE_S:g} s of the "
                            f"{timeout:g} s timeout, so its runtime was stopped: all variables "
                            "and imports are lost. The next execution starts a fresh runtime."
                        )
                        yield _timeout_error(timeout)
                        yield Finished(124)
                        return
                    timed_out = True
                    deadline = loop.time() + TIMEOUT_GRACE_S
                    await self.interrupt()
                    continue
                if isinstance(item, _Dead):
                    yield await self._death_error()
                    yield Finished(1)
                    return
                kind = item.get("type")
                if kind == "done":
                    if timed_out:
                        yield _timeout_error(timeout)
                        yield Finished(124)
                    else:
                        yield Finished(int(item.get("exit_code", 0)))
                    return
                if kind == "input_request":
                    await self._answer_input(item, input_handler)
                    continue
                if kind == "error" and timed_out and item.get("ename") == "KeyboardInterrupt":
                    continue  # reported as the timeout instead
                event = _to_event(item)
                if event is not None:
                    yield event
        finally:
            self._running = False
            self._events = None
            queue.release()
            if self._interrupt_task is not None:
                self._interrupt_task.cancel()
                self._interrupt_task = None

    async def _answer_input(self, item: dict[str, Any], handler: InputHandler | None) -> None:
        prompt = str(item.get("prompt", ""))
        password = bool(item.get("password", False))
        reply: dict[str, Any] = {"type": "input_reply"}
        if handler is None:
            reply["eof"] = True
        else:
            try:
                reply["value"] = await handler(prompt, password)
            except KeyboardInterrupt:
                reply["interrupted"] = True
            except EOFError as exc:
                reply["eof"] = True
                if isinstance(exc, StdinNotAllowedError):
                    reply["not_allowed"] = True
                if str(exc):
                    reply["message"] = str(exc)
        with contextlib.suppress(OSError):
            await self._send(reply)

    async def _death_error(self) -> Error:
        cause = await self._transport.describe_exit()
        text = (
            f"The runtime died ({cause}) while this code ran: all variables and imports are "
            "lost. The next execution starts a fresh runtime, with the functions injected again."
        )
        return Error("RuntimeDiedError", text, [f"RuntimeDiedError: {text}"])

    async def interrupt(self) -> None:
        """Ask the running code to stop with KeyboardInterrupt; escalate to SIGINT if unheard."""
        if not self._alive or not self._running:
            return
        with contextlib.suppress(OSError):
            await self._send({"type": "interrupt"})
        if self._interrupt_task is None or self._interrupt_task.done():
            self._interrupt_task = asyncio.ensure_future(self._escalate_interrupt())

    async def _escalate_interrupt(self) -> None:
        await asyncio.sleep(INTERRUPT_ESCALATION_S)
        if self._running and self._alive:
            log.debug("protocol interrupt unanswered; sending SIGINT")
            with contextlib.suppress(OSError):
                await self._transport.send_interrupt_signal()

    async def _request(self, msg: dict[str, Any]) -> dict[str, Any]:
        if not self._alive:
            raise RuntimeDiedError("the runtime is not running")
        request_id = next(self._ids)
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._replies[request_id] = future
        if self._events is not None:
            self._events.release()  # the pump may be waiting for room: it must read on
        try:
            await self._send({**msg, "id": request_id})
            return await asyncio.wait_for(future, REQUEST_TIMEOUT_S)
        finally:
            self._replies.pop(request_id, None)

    async def comm_info(self, target_name: str | None) -> dict[str, dict[str, str]]:
        """The runtime's open comms (of one target): ``{comm_id: {"target_name": ...}}``."""
        reply = await self._request({"type": "comm_info", "target_name": target_name})
        comms = reply.get("comms")
        if not isinstance(comms, dict):
            return {}
        return {
            str(comm_id): {"target_name": str(info.get("target_name", ""))}
            for comm_id, info in comms.items()
            if isinstance(info, dict)
        }

    async def debug_request(self, msg: dict[str, Any]) -> dict[str, Any]:
        """Send one of the runtime's ``debug_*`` requests and return its reply.

        Served by the runtime's reader thread (``debug_start`` by its main thread), so it is
        answered while a cell is stopped at a breakpoint; no executor lock is taken.
        """
        return await self._request(msg)

    async def wait_closed(self) -> None:
        """Return once the runtime's output has ended (it died or was shut down)."""
        await asyncio.shield(self._pump_task)

    async def send_debug_message(self, message: dict[str, Any]) -> None:
        """Relay one DAP message to debugpy in the runtime (no reply of its own)."""
        await self._send({"type": "debug_dap", "message": message})

    async def complete(self, code: str, cursor_pos: int) -> Completion:
        """Ask the runtime for completions at the cursor."""
        reply = await self._request({"type": "complete", "code": code, "cursor_pos": cursor_pos})
        if "error" in reply:
            return Completion([], cursor_pos, cursor_pos)
        return Completion(
            matches=[str(m) for m in reply.get("matches", [])],
            cursor_start=int(reply.get("cursor_start", cursor_pos)),
            cursor_end=int(reply.get("cursor_end", cursor_pos)),
            metadata=dict(reply.get("metadata") or {}),
        )

    async def inspect(self, code: str, cursor_pos: int, detail_level: int = 0) -> Inspection:
        """Ask the runtime for help on the name at the cursor."""
        reply = await self._request(
            {
                "type": "inspect",
                "code": code,
                "cursor_pos": cursor_pos,
                "detail_level": detail_level,
            }
        )
        if "error" in reply:
            return Inspection(False)
        return Inspection(
            found=bool(reply.get("found", False)),
            data=dict(reply.get("data") or {}),
            metadata=dict(reply.get("metadata") or {}),
        )

    async def close(self) -> None:
        """Shut the runtime down (politely, then by force) and release the transport."""
        self._closing = True
        if self._events is not None:
            self._events.release()  # a pump waiting for room must read on to the end
        if self._alive:
            with contextlib.suppress(OSError):
                await self._send({"type": "shutdown"})
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(self._pump_task), SHUTDOWN_WAIT_S)
        await self._transport.kill()
        self._pump_task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await self._pump_task
        await self._transport.close()

    async def kill(self) -> None:
        """Stop the runtime at once (used when it must be replaced)."""
        await self._transport.kill()


def _timeout_error(timeout: float | None) -> Error:
    text = f"the execution did not finish within the {timeout or 0:g} s timeout and was interrupted"
    return Error("TimeoutError", text, [f"TimeoutError: {text}"])


def _to_event(msg: dict[str, Any]) -> Event | None:
    """Translate one runtime message into an event (None for unknown types)."""
    kind = msg.get("type")
    if kind == "stream":
        text = str(msg.get("text", ""))
        return Stream("stderr", text) if msg.get("name") == "stderr" else Stream("stdout", text)
    if kind == "display":
        return Display(
            data=dict(msg.get("data") or {}),
            metadata=dict(msg.get("metadata") or {}),
            display_id=msg.get("display_id"),
            update=bool(msg.get("update", False)),
        )
    if kind == "result":
        return Result(
            data=dict(msg.get("data") or {}),
            metadata=dict(msg.get("metadata") or {}),
            value_json=msg.get("value_json"),
        )
    if kind == "error":
        return Error(
            ename=str(msg.get("ename", "Error")),
            evalue=str(msg.get("evalue", "")),
            traceback=[str(line) for line in msg.get("traceback") or []],
            shown=msg.get("shown") is not False,
        )
    if kind == "clear_output":
        return ClearOutput(bool(msg.get("wait", False)))
    if kind == "page":
        return Page(data=dict(msg.get("data") or {}), start=int(msg.get("start") or 0))
    if kind == "iopub":
        return iopub_event(msg)
    log.debug("ignoring runtime message of type %r", kind)
    return None
