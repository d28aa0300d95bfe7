"""One kernel's debugger: Jupyter ``debug_request`` in, DAP relayed to debugpy in the runtime.

Created by :class:`~kernel_bridge.kernel.BridgeKernel`; :meth:`DebugSession.handle` runs on
the shell's event loop (where the executor and its runtime channel live), called from the
control thread for every ``debug_request``. DAP events from debugpy arrive through the
channel's ``on_debug_message`` hook and are published as ``debug_event`` on IOPub.
"""

from __future__ import annotations

import ast
import asyncio
import contextlib
import itertools
import logging
import re
from collections.abc import Callable
from typing import Any

from ..errors import BridgeError, DebuggerUnavailableError
from ..executors.base import RemoteExecutor
from ..executors.runtime_backed.channel import RuntimeChannel

log = logging.getLogger(__name__)

MAX_RICH_RESULT = 16 * 1024 * 1024
"""Largest evaluate result (characters) parsed for richInspectVariables while stopped."""

DAP_TIMEOUT_S = 30.0
"""How long a DAP request may wait for debugpy's response before it fails."""

HASH_METHOD = "Murmur2"
HASH_SEED = 0xC70F6907
"""ipykernel's seed; the runtime hashes cells with the same one."""
TMP_SUFFIX = ".py"


def cell_file_prefix(tmp_root: str, pid: int) -> str:
    """Where the runtime keeps a kernel's cell files: ``<tmp_root>/ipykernel_kernel_bridge_<pid>/``.

    Chosen by the kernel, not the runtime, because JupyterLab reads it from the first
    ``debugInfo``, before the debugger (or even the runtime) has started, and builds
    every cell's path from it. It contains ``ipykernel_`` because that is how JupyterLab
    recognises a cell file (it then shows "Cell [n]" instead of the path).
    """
    return f"{tmp_root.rstrip('/')}/ipykernel_kernel_bridge_{pid}/"


# names ipykernel hides from the variables panel (plus the runtime's own helpers)
_HIDDEN = frozenset(
    {
        "__name__", "__doc__", "__package__", "__loader__", "__spec__", "__annotations__",
        "__builtins__", "__builtin__", "__display__", "get_ipython", "debugpy", "exit",
        "quit", "In", "Out", "_oh", "_dh", "_", "__", "___", "functions",
    }
)  # fmt: skip

# requests ipykernel answers before the debugger has started
_STATIC = frozenset(
    {"debugInfo", "inspectVariables", "richInspectVariables", "modules", "copyToGlobals"}
)


def accept_variable(name: str) -> bool:
    """Whether the variables panel shows ``name`` (ipykernel's filter)."""
    return name not in _HIDDEN and not re.match(r"^_\d", name) and not name.startswith("_i")


def _response(request: dict[str, Any], success: bool = True, **fields: Any) -> dict[str, Any]:
    return {
        "type": "response",
        "seq": request.get("seq", 0),
        "request_seq": request.get("seq", 0),
        "command": request.get("command", ""),
        "success": success,
        **fields,
    }


class DebugSession:
    """The debugger of one kernel; see the module docstring for who calls what."""

    def __init__(
        self,
        get_executor: Callable[[], RemoteExecutor],
        publish_event: Callable[[dict[str, Any]], None],
        tmp_prefix: Callable[[], str],
    ) -> None:
        self._get_executor = get_executor
        self._tmp_prefix = tmp_prefix
        self._publish = publish_event
        self._channel: RuntimeChannel | None = None
        self._started = False
        self._seq = itertools.count(1_000_000)
        self._pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._initialized = asyncio.Event()
        self._breakpoints: dict[str, list[dict[str, Any]]] = {}
        self._stopped_threads: set[int] = set()
        self._info: dict[str, Any] = {}
        self._tasks: set[asyncio.Future[None]] = set()

    # -- state ---------------------------------------------------------------------

    @property
    def is_started(self) -> bool:
        """True between a successful ``initialize`` and ``disconnect`` (or runtime end)."""
        return self._started and self._channel is not None and self._channel.alive

    def release_stopped_threads(self) -> None:
        """Tell the frontend that no thread is stopped any more, when that happened without
        debugpy saying so: the kernel shuts down (or restarts), or the runtime died.

        JupyterLab keeps its "Paused in Debugger" overlay (which covers the notebook's
        toolbar) until a ``continued`` or ``terminated`` event. Called by the kernel's
        ``do_shutdown`` (control thread) and when a dead runtime is noticed.
        """
        if not self._stopped_threads:
            return
        self._stopped_threads = set()
        body = {"threadId": 0, "allThreadsContinued": True}
        self._publish({"type": "event", "seq": 0, "event": "continued", "body": body})

    def _reset(self) -> None:
        """Forget everything about the runtime's debugpy (runtime ended or disconnected)."""
        if self._channel is not None:
            self._channel.on_debug_message = None
        self._channel = None
        self._started = False
        self._breakpoints = {}
        self._stopped_threads = set()
        self._initialized = asyncio.Event()
        for future in self._pending.values():
            if not future.done():
                future.set_exception(BridgeError("the runtime went away"))
        self._pending.clear()

    # -- entry point -----------------------------------------------------------------

    async def handle(self, request: dict[str, Any]) -> dict[str, Any]:
        """Answer one ``debug_request`` content (a DAP request); never raises."""
        command = str(request.get("command", ""))
        if self._channel is not None and not self._channel.alive:
            self.release_stopped_threads()
            self._reset()  # the runtime died or was restarted: debugpy went with it
        try:
            if command == "initialize" and not self.is_started:
                await self._start()
            handler = getattr(self, f"_on_{command}", None)
            if command in _STATIC and handler is not None:
                return dict(await handler(request))
            if not self.is_started:
                if command == "disconnect":
                    # nothing to end (the runtime died or restarted meanwhile): switching
                    # the debugger off must still work in JupyterLab
                    return _response(request)
                return _response(request, False, message="the debugger has not started")
            if handler is not None:
                return dict(await handler(request))
            return await self._forward(request)
        except DebuggerUnavailableError as exc:
            text = f"kernel_bridge: the debugger is unavailable: {exc}"
            body = {"category": "console", "output": text + "\n"}
            self._publish({"type": "event", "seq": 0, "event": "output", "body": body})
            return _response(request, False, message=text)
        except (BridgeError, TimeoutError, OSError) as exc:
            # the frontend shows nothing of it (JupyterLab only logs to its console)
            log.warning("debug request %s failed: %s", command, exc)
            log.debug("debug request %s failed", command, exc_info=True)
            return _response(request, False, message=f"kernel_bridge: {command} failed: {exc}")
        finally:
            if command == "disconnect" and self._channel is not None:
                channel = self._channel
                self._reset()
                with contextlib.suppress(BridgeError, TimeoutError, OSError):
                    await channel.debug_request({"type": "debug_stop"})

    async def _start(self) -> None:
        channel = await self._get_executor().debug_channel()
        prefix = self._tmp_prefix()
        reply = await channel.debug_request({"type": "debug_start", "prefix": prefix})
        if "error" in reply:
            raise DebuggerUnavailableError(str(reply["error"]))
        if reply.get("tmp_prefix") != prefix or reply.get("hash_seed") != HASH_SEED:
            # JupyterLab finds a cell by the path it computes itself: they must agree
            raise DebuggerUnavailableError(
                "the runtime names cell files differently from the kernel "
                f"({reply.get('tmp_prefix')!r}, seed {reply.get('hash_seed')!r}); "
                "the kernel and its runtime are of different kernel_bridge versions"
            )
        self._reset()
        self._channel = channel
        channel.on_debug_message = self._on_dap_message
        self._info = reply
        self._started = True

    # -- relaying ---------------------------------------------------------------------

    async def _forward(self, request: dict[str, Any]) -> dict[str, Any]:
        """Send a DAP request to debugpy and return its response, in the client's seq."""
        response = await self._dap(str(request.get("command")), request.get("arguments"))
        response["request_seq"] = request.get("seq", 0)
        return response

    async def _dap(self, command: str, arguments: Any = None) -> dict[str, Any]:
        """Our own DAP request (own seq numbers, so they never collide with the client's)."""
        channel = self._channel
        if channel is None:
            raise BridgeError("the debugger has not started")
        seq = next(self._seq)
        message: dict[str, Any] = {"type": "request", "seq": seq, "command": command}
        if arguments is not None:
            message["arguments"] = arguments
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[seq] = future
        try:
            await channel.send_debug_message(message)
            closed: asyncio.Future[Any] = asyncio.ensure_future(channel.wait_closed())
            waited: set[asyncio.Future[Any]] = {future, closed}
            try:
                done, _ = await asyncio.wait(
                    waited, timeout=DAP_TIMEOUT_S, return_when=asyncio.FIRST_COMPLETED
                )
            finally:
                closed.cancel()
            if future in done:
                return future.result()
            if closed in done:
                raise BridgeError("the runtime ended while the debugger waited for debugpy")
            raise TimeoutError(f"debugpy did not answer {command} within {DAP_TIMEOUT_S:g} s")
        finally:
            self._pending.pop(seq, None)

    def _on_dap_message(self, message: dict[str, Any]) -> None:
        """A DAP message from debugpy (called on the shell loop by the channel's reader)."""
        kind = message.get("type")
        if kind == "response":
            future = self._pending.get(int(message.get("request_seq", -1)))
            if future is not None and not future.done():
                future.set_result(message)
            return
        if kind != "event":
            return
        event = message.get("event")
        body = message.get("body") or {}
        if event == "initialized":
            self._initialized.set()
        elif event == "stopped":
            if body.get("allThreadsStopped"):
                # as ipykernel: find the stopped threads first, then tell the frontend
                task = asyncio.ensure_future(self._publish_all_stopped(message))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
                return
            self._stopped_threads.add(int(body.get("threadId", 0)))
        elif event == "continued":
            if body.get("allThreadsContinued"):
                self._stopped_threads = set()
            else:
                self._stopped_threads.discard(int(body.get("threadId", 0)))
        self._publish(message)

    async def _publish_all_stopped(self, event: dict[str, Any]) -> None:
        try:
            threads = await self._dap("threads")
            for thread in threads.get("body", {}).get("threads", []):
                if not str(thread.get("name", "")).startswith("kb-"):
                    self._stopped_threads.add(int(thread["id"]))
        except (BridgeError, TimeoutError, OSError):
            log.debug("threads request failed", exc_info=True)
        self._publish(event)

    # -- requests answered here (ipykernel's handlers) ---------------------------------

    async def _on_attach(self, request: dict[str, Any]) -> dict[str, Any]:
        arguments = dict(request.get("arguments") or {})
        arguments["connect"] = {"host": self._info.get("host"), "port": self._info.get("port")}
        # the runtime's own frames (and what was loaded with it) are not the user's code
        arguments["rules"] = [
            {"path": path, "include": False} for path in self._info.get("runtime_files", [])
        ]
        attach = asyncio.ensure_future(self._dap("attach", arguments))
        try:
            # debugpy answers attach only after the initialized event and configurationDone
            initialized: asyncio.Future[Any] = asyncio.ensure_future(self._initialized.wait())
            waited: set[asyncio.Future[Any]] = {attach, initialized}
            done, _ = await asyncio.wait(
                waited, timeout=DAP_TIMEOUT_S, return_when=asyncio.FIRST_COMPLETED
            )
            if initialized in done:
                await self._dap("configurationDone")
            else:
                initialized.cancel()
            response = await attach
        finally:
            if not attach.done():
                attach.cancel()
        response["request_seq"] = request.get("seq", 0)
        return response

    async def _on_configurationDone(self, request: dict[str, Any]) -> dict[str, Any]:
        return _response(request)  # already sent to debugpy during attach (as ipykernel)

    async def _on_debugInfo(self, request: dict[str, Any]) -> dict[str, Any]:
        return _response(
            request,
            body={
                "isStarted": self.is_started,
                "hashMethod": HASH_METHOD,
                "hashSeed": HASH_SEED,
                "tmpFilePrefix": self._tmp_prefix(),
                "tmpFileSuffix": TMP_SUFFIX,
                "breakpoints": [
                    {"source": source, "breakpoints": points}
                    for source, points in self._breakpoints.items()
                ],
                "stoppedThreads": sorted(self._stopped_threads),
                "richRendering": True,
                "exceptionPaths": ["Python Exceptions"],
                "copyToGlobals": True,
            },
        )

    async def _on_dumpCell(self, request: dict[str, Any]) -> dict[str, Any]:
        assert self._channel is not None
        code = str((request.get("arguments") or {}).get("code", ""))
        reply = await self._channel.debug_request({"type": "debug_dump_cell", "code": code})
        if "error" in reply:
            return _response(request, False, message=str(reply["error"]))
        return _response(request, body={"sourcePath": str(reply.get("path", ""))})

    async def _on_source(self, request: dict[str, Any]) -> dict[str, Any]:
        assert self._channel is not None
        path = str(((request.get("arguments") or {}).get("source") or {}).get("path", ""))
        reply = await self._channel.debug_request({"type": "debug_source", "path": path})
        if "error" in reply:
            return _response(request, False, message="source unavailable", body={})
        return _response(request, body={"content": str(reply.get("content", ""))})

    async def _on_setBreakpoints(self, request: dict[str, Any]) -> dict[str, Any]:
        arguments = request.get("arguments") or {}
        source = str((arguments.get("source") or {}).get("path", ""))
        self._breakpoints[source] = list(arguments.get("breakpoints") or [])
        response = await self._forward(request)
        if response.get("success"):
            # debugpy may move a breakpoint: remember where it really is
            self._breakpoints[source] = [
                {"line": point["line"]}
                for point in response.get("body", {}).get("breakpoints", [])
                if "line" in point
            ]
        return response

    async def _on_variables(self, request: dict[str, Any]) -> dict[str, Any]:
        if not self._stopped_threads:
            return _response(request, body={"variables": []})
        response = await self._forward(request)
        body = response.setdefault("body", {})
        body["variables"] = [
            v for v in body.get("variables", []) if accept_variable(str(v.get("name", "")))
        ]
        return response

    async def _on_inspectVariables(self, request: dict[str, Any]) -> dict[str, Any]:
        channel = self._live_channel()
        variables: list[dict[str, Any]] = []
        if channel is not None:
            reply = await channel.debug_request({"type": "debug_variables"})
            variables = [
                v for v in reply.get("variables", []) if accept_variable(str(v.get("name", "")))
            ]
        return _response(request, body={"variables": variables})

    async def _on_richInspectVariables(self, request: dict[str, Any]) -> dict[str, Any]:
        arguments = request.get("arguments") or {}
        name = str(arguments.get("variableName", ""))
        if not name.isidentifier():
            ok = name in ("special variables", "function variables")
            return _response(request, ok, body={"data": {}, "metadata": {}})
        data: dict[str, Any] = {}
        metadata: dict[str, Any] = {}
        channel = self._live_channel()
        if self._stopped_threads and self.is_started:
            # stopped: the frame's own variable, formatted inside the runtime
            expression = f"__import__('_kb_debug').format({name})"
            frame = arguments.get("frameId")
            response = await self._dap(
                "evaluate", {"expression": expression, "frameId": frame, "context": "clipboard"}
            )
            result = str(response.get("body", {}).get("result", ""))
            if response.get("success") and len(result) <= MAX_RICH_RESULT:
                with contextlib.suppress(ValueError, SyntaxError, TypeError, MemoryError):
                    # a repr of two dicts of strings: parsed as a literal, never evaluated
                    parsed = ast.literal_eval(result)
                    data, metadata = dict(parsed[0]), dict(parsed[1])
        elif channel is not None:
            reply = await channel.debug_request({"type": "debug_rich", "name": name})
            data = dict(reply.get("data") or {})
            metadata = dict(reply.get("metadata") or {})
        metadata = {k: v for k, v in metadata.items() if k in data}
        return _response(request, body={"data": data, "metadata": metadata})

    async def _on_copyToGlobals(self, request: dict[str, Any]) -> dict[str, Any]:
        arguments = request.get("arguments") or {}
        dst = str(arguments.get("dstVariableName", ""))
        src = str(arguments.get("srcVariableName", ""))
        if not dst.isidentifier() or not src.isidentifier():
            text = "dstVariableName and srcVariableName must be valid identifiers"
            return _response(request, False, message=text)
        if not self.is_started:
            return _response(request, False, message="the debugger has not started")
        expression = f"globals()['{dst}']"
        frame = arguments.get("srcFrameId")
        response = await self._dap(
            "setExpression", {"expression": expression, "value": src, "frameId": frame}
        )
        response["request_seq"] = request.get("seq", 0)
        return response

    async def _on_modules(self, request: dict[str, Any]) -> dict[str, Any]:
        """JupyterLab's kernel sources panel: the runtime's loaded modules with a .py file."""
        arguments = request.get("arguments") or {}
        channel = self._live_channel()
        if channel is None:
            return _response(request, body={"modules": [], "totalModules": 0})
        reply = await channel.debug_request(
            {
                "type": "debug_modules",
                "start": arguments.get("startModule"),
                "count": arguments.get("moduleCount"),
            }
        )
        # the runtime is the session's: keep only well-formed entries
        raw = reply.get("modules")
        modules = [
            {"id": m["id"], "name": str(m["name"]), "path": str(m["path"])}
            for m in (raw if isinstance(raw, list) else [])
            if isinstance(m, dict)
            and {"id", "name", "path"} <= m.keys()
            and isinstance(m["id"], int)
        ]
        total = reply.get("total")
        total = total if isinstance(total, int) else len(modules)
        return _response(request, body={"modules": modules, "totalModules": total})

    def _live_channel(self) -> RuntimeChannel | None:
        """The runtime's channel if it runs (variables need no debugpy), else None."""
        if self._channel is not None and self._channel.alive:
            return self._channel
        return self._get_executor().running_channel()
