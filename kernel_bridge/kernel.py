"""BridgeKernel: the Jupyter protocol layer, and nothing else.

Every ``do_*`` hook is async, never raises, and publishes all of a request's output
before it returns (papermill and nbval stop listening shortly after the reply). The
code itself runs in the configured executor, reached through :class:`Session`; this
module knows nothing of processes, containers or HTTP.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any, cast

from ipykernel._version import kernel_protocol_version
from ipykernel.kernelbase import Kernel
from traitlets import Bool, Float, List, TraitError, Unicode

from ._comm_relay import CommRelay
from ._history import CellHistory
from ._iopub_pacing import IOPubPacer, payload_size
from ._version import __version__
from .debugger import DebugSession, cell_file_prefix
from .errors import ConfigurationError, StdinNotAllowedError
from .events import (
    ClearOutput,
    Display,
    Error,
    Event,
    Finished,
    IOPubMessage,
    Page,
    Result,
    StateLost,
    Stream,
)
from .executors.base import RemoteExecutor
from .executors.registry import executor_class, executor_plugin
from .magics import MagicUsageError, run_magic, split_cell, usage_error
from .provenance import PROVENANCE_KEY, ProvenanceTracker, executor_config
from .session import Session

__all__ = ["BridgeKernel"]

SHUTDOWN_TIMEOUT_S = 5.0
"""How long the executor may take to release its resources at kernel shutdown."""

STDIN_UNAVAILABLE = (
    "input() is not available here: this frontend does not answer input requests "
    "(allow_stdin is false, as with papermill, nbval and nbclient). Put the value in the code "
    "instead, e.g. as a papermill parameter."
)


class BridgeKernel(Kernel):
    """A Python kernel whose cells run in an executor (local subprocess, Docker, ACA).

    Configured with traitlets, e.g. ``--BridgeKernel.executor=docker`` in the
    kernelspec's argv. Instantiated by :class:`kernel_bridge.kernelapp.BridgeKernelApp`.
    """

    implementation = "kernel_bridge"
    implementation_version = __version__
    language_info = {
        "name": "python",
        "version": "3",
        "mimetype": "text/x-python",
        "codemirror_mode": {"name": "ipython", "version": 3},
        "pygments_lexer": "ipython3",
        "nbconvert_exporter": "python",
        "file_extension": ".py",
    }
    help_links = [
        {"text": "kernel_bridge", "url": "https://pypi.org/project/kernel_bridge/"},
    ]

    executor = Unicode(
        "local",
        config=True,
        help="Where cells run: the kind of an installed executor plug-in (entry-point group "
        "kernel_bridge.executors), e.g. local, docker or aca; `kernel-bridge install --help` "
        "lists them.",
    )
    functions = List(
        Unicode(),
        config=True,
        help=(
            "User-defined functions injected at every session start: paths of .py files, "
            "'package.module:function' references, or source strings."
        ),
    )
    functions_module = Unicode(
        "functions", config=True, help="Module name the functions are importable from."
    )
    prestart = Bool(
        True,
        config=True,
        help=(
            "Start the runtime (subprocess or container) in the background as soon as the "
            "kernel starts, so the first cell does not wait for it. kernel_info still answers "
            "at once, and setup output (image pull, functions) appears in the first cell. "
            "ACA sessions are never started early."
        ),
    )
    cell_timeout = Float(
        0.0,
        config=True,
        help="Seconds a cell may run before it is interrupted (0: no limit).",
    )
    # ipykernel sleeps 0.5 ms before every execute_reply so its OutStream thread can send
    # the cell's last prints first. Every output of ours is sent by do_execute itself
    # before it returns, so the reply needs no head start (and nothing waits for it).
    _execute_sleep = Float(0.0, config=True)

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.bridge_session = Session(self._build_executor, cell_timeout=self.cell_timeout or None)
        self.provenance = ProvenanceTracker()
        self._kind = self.executor
        self._overrides: dict[str, Any] = {}
        self._function_names: list[str] | None = None
        self._waiting_for_input = False
        self.history = CellHistory()
        self._shell_loop: asyncio.AbstractEventLoop | None = None
        self._stopping_executor = False
        self.comm_relay = CommRelay(self)
        self.comm_relay.install()
        self._iopub_pacer = IOPubPacer(self._schedule_on_iopub_thread)
        self.debugger = DebugSession(
            self.bridge_session.get_executor, self._publish_debug_event, self._cell_file_prefix
        )

    def start(self) -> None:
        """Start serving; with ``prestart``, warm the executor up once the loop runs."""
        super().start()
        from tornado.ioloop import IOLoop

        # debug requests arrive on the control thread but run on the shell's loop
        IOLoop.current().add_callback(self._note_shell_loop)
        if self.prestart:
            IOLoop.current().add_callback(self._warm_up)

    def _schedule_on_iopub_thread(self, call: Callable[[], None]) -> None:
        thread = self.iopub_thread
        if thread is None:  # a kernel built without ipykernel's app (tests): nothing queues
            call()
        else:
            thread.schedule(call)

    def _cell_file_prefix(self) -> str:
        """Where the runtime keeps cell files for the debugger (asked at every ``debugInfo``)."""
        try:
            root = executor_class(self._kind).temp_root
        except Exception:  # an unknown kind is reported by the cell that needs it
            root = "/tmp"
        return cell_file_prefix(root, os.getpid())

    def _note_shell_loop(self) -> None:
        self._shell_loop = asyncio.get_running_loop()

    async def _warm_up(self) -> None:
        self._shell_loop = asyncio.get_running_loop()
        await self.bridge_session.warm_up()
        # the session's start time is as close to the real one as the kernel can see
        await self.provenance.refresh(self.bridge_session.executor)

    # -- kernel_info ----------------------------------------------------------------

    @property
    def banner(self) -> str:  # type: ignore[override]
        """The banner shown by console frontends."""
        return (
            f"kernel_bridge {__version__}: Python cells run by the '{self.executor}' executor, "
            "state kept between cells."
        )

    @property
    def kernel_info(self) -> dict[str, Any]:
        """The kernel_info reply: ``debugger`` only when the executor can host it (no subshells).

        Built here rather than from ipykernel's ``Kernel.kernel_info``: that one imports
        ipykernel's own debugger (and with it debugpy, 0.1-0.2 s) only to fill
        ``supported_features``, which this kernel decides itself. Answered on the cold
        start's critical path (``wait_for_ready``), so the import would delay every start.
        """
        try:
            can_debug = executor_class(self._kind).can_debug
        except Exception:  # kernel_info must always answer
            can_debug = False
        version = self.bridge_session.python_version
        return {
            "protocol_version": kernel_protocol_version,
            "implementation": self.implementation,
            "implementation_version": self.implementation_version,
            # nbclient and papermill copy language_info into the notebook's metadata (and
            # JupyterLab stores it too), so this is how the notebook records its executor.
            "language_info": {
                **self.language_info,
                **({"version": version} if version else {}),
                PROVENANCE_KEY: self._executor_record(),
            },
            "banner": self.banner,
            "help_links": self.help_links,
            "supported_features": ["debugger"] if can_debug else [],
            "debugger": can_debug,  # what frontends before supported_features read
        }

    def _executor_record(self) -> dict[str, Any]:
        """The executor configuration for the notebook's metadata, without secrets."""
        try:
            class_name = executor_plugin(self._kind).class_name
        except Exception:  # kernel_info must always answer
            class_name = ""
        config = {**dict(self.config.get(class_name, {})), **self._overrides}
        try:
            return executor_config(self._kind, self.bridge_session.executor, config)
        except Exception:  # kernel_info must always answer
            self.log.debug("executor record unavailable", exc_info=True)
            return {"executor": self._kind}

    # -- what the %bridge magics use (kernel_bridge.magics.MagicHost) ----------------

    @property
    def executor_kind(self) -> str:
        """The kind of the executor in use (changed by ``%bridge use``)."""
        return self._kind

    @property
    def notebook_dir(self) -> Path:
        """The notebook's folder: Jupyter starts the kernel in it."""
        return Path.cwd().resolve()

    def function_names(self) -> list[str]:
        """Names of the configured user-defined functions (read once, on the host)."""
        if self._function_names is None:
            names: list[str] = []
            try:
                from .functions import build_functions_module, load_function_specs

                specs = load_function_specs(list(self.functions)) if self.functions else []
                if specs:
                    names = list(
                        build_functions_module(list(specs), self.functions_module).function_names
                    )
            except Exception:
                self.log.debug("function names unavailable", exc_info=True)
            self._function_names = names
        return list(self._function_names)

    def build_executor_for(self, kind: str, overrides: dict[str, Any]) -> RemoteExecutor:
        """Build an executor of ``kind`` from the kernelspec's settings plus ``overrides``.

        The executor is a Configurable with this kernel as parent, so its traits come from
        the kernel's configuration (``--Class.trait=value`` flags and config files, typed by
        the traits); ``overrides`` (``%bridge use`` options) win over them.
        """
        cls = executor_class(kind)
        values = dict(overrides)
        if self.functions:
            values["functions"] = self._load_functions()
            values["functions_module"] = self.functions_module
        try:
            # a traitlets Configurable as well (the plug-in checked it): it takes a parent
            executor: RemoteExecutor = cast(Any, cls)(parent=self, **values)
            return executor
        except (TypeError, TraitError) as exc:
            raise ConfigurationError(
                f"the {kind} executor rejected its configuration: {exc}. "
                f"Check the --{cls.__name__}.* options in the kernelspec."
            ) from exc

    def set_executor_kind(self, kind: str, overrides: dict[str, Any]) -> None:
        """Record the executor ``%bridge use`` switched to (used by later rebuilds too)."""
        self._kind = kind
        self._overrides = dict(overrides)

    # -- the executor -----------------------------------------------------------------

    def _build_executor(self) -> RemoteExecutor:
        """Build the configured executor; called by the session on first use."""
        return self.build_executor_for(self._kind, self._overrides)

    def _load_functions(self) -> list[object]:
        """Load the configured function specs; broken ones are reported, the rest kept."""
        from .errors import FunctionsError
        from .functions import load_function_specs

        loaded: list[object] = []
        problems: list[str] = []
        for spec in self.functions:
            try:
                loaded.extend(load_function_specs([spec]))
            except FunctionsError as exc:
                problems.append(str(exc))
        if problems:
            text = (
                "some user-defined functions could not be loaded: "
                + "; ".join(problems)
                + ". The other functions are available; fix the file (or the "
                "--BridgeKernel.functions option) and restart the kernel."
            )
            self.bridge_session.report_at_next_cell(
                Error("FunctionsError", text, [f"FunctionsError: {text}"])
            )
        return loaded

    # -- execute ------------------------------------------------------------------------

    async def do_execute(
        self,
        code: str,
        silent: bool,
        store_history: bool = True,
        user_expressions: dict[str, Any] | None = None,
        allow_stdin: bool = False,
        *,
        cell_meta: dict[str, Any] | None = None,
        cell_id: str | None = None,
    ) -> dict[str, Any]:
        """Run a cell, publishing its output (with provenance metadata) as it arrives.

        Leading ``%bridge`` lines run here, in the kernel (kernel_bridge.magics); the rest
        of the cell runs in the executor.
        """
        self._shell_loop = asyncio.get_running_loop()
        self._allow_stdin = allow_stdin
        restore_parent = self.comm_relay.begin_request()
        if store_history and not silent:
            self.history.record(self.execution_count, code)
        last_error: Error | None = None
        payload: list[dict[str, Any]] = []
        finished = Finished(0)
        self.provenance.cell_started()
        try:
            with self._interrupt_signal():
                async for event in self._cell_events(code, silent, store_history):
                    if isinstance(event, Finished):
                        finished = event
                        continue
                    if isinstance(event, Page):
                        payload.append({"source": "page", "data": event.data, "start": event.start})
                        continue
                    if isinstance(event, Error):
                        last_error = event
                    elif isinstance(event, Result) and store_history and not silent:
                        self.history.set_output(
                            self.execution_count, str(event.data.get("text/plain", ""))
                        )
                    if not silent or isinstance(event, IOPubMessage):
                        if not silent and isinstance(event, Display | Result | Error):
                            await self.provenance.refresh(self.bridge_session.executor)
                        restore_parent()
                        self._publish(self.comm_relay.adapt_output(event))
                        self._iopub_pacer.published(payload_size(event))
                        await self._iopub_pacer.wait()
        # A failure must not escape the handler (the frontend would get no reply), but a
        # cancellation must: the task running this request is being cancelled.
        except (Exception, KeyboardInterrupt) as exc:
            text = f"kernel_bridge could not run this cell: {type(exc).__name__}: {exc}"
            self.log.exception("do_execute failed")
            last_error = Error(type(exc).__name__, text, [text])
            if not silent:
                self._publish(last_error)
            finished = Finished(1)
        if self._stopping_executor:
            # the kernel is shutting down with this cell still running (stop_executor ended
            # it): ipykernel has closed the shell socket, so a reply would only fail there
            raise asyncio.CancelledError("the kernel shut down while the cell ran")
        restore_parent()  # the idle status after the reply names this request
        if last_error is None and not finished.ok:
            last_error = Error(
                "ExecutionFailed", f"the execution ended with exit code {finished.exit_code}"
            )
        if last_error is not None and not finished.ok:
            return {
                "status": "error",
                "execution_count": self.execution_count,
                "ename": last_error.ename,
                "evalue": last_error.evalue,
                "traceback": list(last_error.traceback),
            }
        return {
            "status": "ok",
            "execution_count": self.execution_count,
            "payload": payload,
            "user_expressions": {},
        }

    async def _cell_events(
        self, code: str, silent: bool, store_history: bool
    ) -> AsyncIterator[Event]:
        """The events of one cell: its ``%bridge`` lines first, then its code, if any.

        A failing ``%bridge`` line ends the cell: the code after it does not run.
        """
        try:
            split = split_cell(code)
        except MagicUsageError as exc:
            yield usage_error(str(exc))
            yield Finished(1)
            return
        for line in split.magics:
            failed = False
            async for output in run_magic(self, line):
                failed = failed or isinstance(output, Error)
                yield output
            if failed:
                yield Finished(1)
                return
        if split.magics and not split.code:
            yield Finished(0)
            return
        executor: RemoteExecutor | None
        try:
            executor = self.bridge_session.get_executor()
        except Exception:  # Session.execute reports it
            executor = None
        if self.provenance.needs_python_probe(executor):
            assert executor is not None
            async for probed in self.provenance.probe_python(executor):
                if isinstance(probed, Finished):
                    if not probed.ok:
                        yield probed
                        return
                    break
                yield probed
        async for event in self.bridge_session.execute(
            split.code,
            silent=silent,
            store_history=store_history,
            input_handler=self._input_handler,
        ):
            yield event

    def _provenance(self) -> dict[str, Any]:
        """The provenance entry for an output published now (see kernel_bridge.provenance)."""
        entry = self.provenance.stamp()
        entry.setdefault("executor", self._kind)
        return {PROVENANCE_KEY: entry}

    def _publish(self, event: Event) -> None:
        """Send one event to IOPub, parented to the current request."""
        if isinstance(event, Stream):
            self.send_response(
                self.iopub_socket, "stream", {"name": event.name, "text": event.text}
            )
        elif isinstance(event, Display):
            content: dict[str, Any] = {
                "data": event.data,
                "metadata": {**event.metadata, **self._provenance()},
            }
            if event.display_id is not None:
                content["transient"] = {"display_id": event.display_id}
            msg_type = "update_display_data" if event.update else "display_data"
            self.send_response(self.iopub_socket, msg_type, content)
        elif isinstance(event, Result):
            self.send_response(
                self.iopub_socket,
                "execute_result",
                {
                    "execution_count": self.execution_count,
                    "data": event.data,
                    "metadata": {**event.metadata, **self._provenance()},
                },
            )
        elif isinstance(event, Error) and event.shown:
            self.send_response(
                self.iopub_socket,
                "error",
                {
                    "ename": event.ename,
                    "evalue": event.evalue,
                    "traceback": list(event.traceback),
                    # not part of the error schema: clients that read it get provenance,
                    # nbformat drops it (an error output in a notebook has no metadata)
                    "metadata": self._provenance(),
                },
            )
        elif isinstance(event, ClearOutput):
            self.send_response(self.iopub_socket, "clear_output", {"wait": event.wait})
        elif isinstance(event, IOPubMessage):
            self.comm_relay.publish(event)
        elif isinstance(event, StateLost):
            text = f"kernel_bridge: {event.reason}\n"
            self.send_response(self.iopub_socket, "stream", {"name": "stderr", "text": text})

    @contextlib.contextmanager
    def _interrupt_signal(self) -> Iterator[None]:
        """While a cell runs, turn SIGINT into an executor interrupt instead of a dead kernel.

        jupyter_client interrupts by SIGINT (``interrupt_mode: signal``) and the base
        class turns ``interrupt_request`` (``message`` mode) into the same SIGINT, so
        both modes arrive here.
        """
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        loop = asyncio.get_running_loop()

        def on_sigint(signum: int, frame: object) -> None:
            if self._waiting_for_input:
                raise KeyboardInterrupt("interrupted while waiting for input")
            loop.call_soon_threadsafe(
                lambda: asyncio.ensure_future(self.bridge_session.interrupt())
            )

        previous = signal.signal(signal.SIGINT, on_sigint)
        try:
            yield
        finally:
            signal.signal(signal.SIGINT, previous)

    async def _input_handler(self, prompt: str, password: bool) -> str:
        """Answer the code's input() through the frontend's stdin channel, when allowed."""
        if not self._allow_stdin:
            raise StdinNotAllowedError(STDIN_UNAVAILABLE)
        self._waiting_for_input = True
        try:
            value: str = self.getpass(prompt) if password else self.raw_input(prompt)
            return value
        except KeyboardInterrupt:
            raise
        except Exception as exc:  # StdinNotImplementedError and friends
            raise StdinNotAllowedError(f"{STDIN_UNAVAILABLE} ({exc})") from exc
        finally:
            self._waiting_for_input = False

    # -- other requests -------------------------------------------------------------------

    async def comm_info_request(self, stream: Any, ident: Any, parent: Any) -> None:
        """Answer from the comms open where the code runs (see :class:`CommRelay`)."""
        await self.comm_relay.comm_info(stream, ident, parent)

    async def do_complete(self, code: str, cursor_pos: int | None) -> dict[str, Any]:
        """Complete from the executor's live namespace."""
        self._shell_loop = asyncio.get_running_loop()
        pos = len(code) if cursor_pos is None else cursor_pos
        completion = await self.bridge_session.complete(code, pos)
        return {
            "status": "ok",
            "matches": completion.matches,
            "cursor_start": completion.cursor_start,
            "cursor_end": completion.cursor_end,
            "metadata": completion.metadata,
        }

    async def do_inspect(
        self, code: str, cursor_pos: int | None, detail_level: int = 0, omit_sections: Any = ()
    ) -> dict[str, Any]:
        """Describe the name at the cursor from the executor's live namespace."""
        self._shell_loop = asyncio.get_running_loop()
        pos = len(code) if cursor_pos is None else cursor_pos
        inspection = await self.bridge_session.inspect(code, pos, detail_level)
        return {
            "status": "ok",
            "found": inspection.found,
            "data": inspection.data,
            "metadata": inspection.metadata,
        }

    async def do_history(
        self,
        hist_access_type: str,
        output: bool,
        raw: bool,
        session: int | None = None,
        start: int | None = None,
        stop: int | None = None,
        n: int | None = None,
        pattern: str | None = None,
        unique: bool = False,
    ) -> dict[str, Any]:
        """Answer history requests from the kernel's own record of this session's cells."""
        if hist_access_type == "tail":
            entries = self.history.tail(n or 10, output=output)
        elif hist_access_type == "range":
            entries = self.history.range(session or 0, start or 0, stop, output=output)
        elif hist_access_type == "search":
            entries = self.history.search(pattern or "*", n=n, unique=unique, output=output)
        else:
            entries = []
        return {"status": "ok", "history": entries}

    async def do_is_complete(self, code: str) -> dict[str, Any]:
        """Say whether ``code`` is a complete Python statement (decided here, on the host)."""
        try:
            from IPython.core.inputtransformer2 import TransformerManager

            status, indent = TransformerManager().check_complete(code)
        except Exception:
            return {"status": "unknown"}
        reply: dict[str, Any] = {"status": status}
        if status == "incomplete":
            reply["indent"] = " " * (indent or 0)
        return reply

    # -- debugger (kernel_bridge.debugger) --------------------------------------------

    async def do_debug_request(self, msg: dict[str, Any]) -> dict[str, Any]:
        """Answer a ``debug_request`` (control thread) by running the debugger on the shell's
        event loop, which stays free while a cell waits at a breakpoint."""
        loop = self._shell_loop
        if loop is None or loop.is_closed():
            return {
                "type": "response",
                "success": False,
                "command": msg.get("command", ""),
                "request_seq": msg.get("seq", 0),
                "seq": msg.get("seq", 0),
                "message": "kernel_bridge: the kernel is still starting; try again",
            }
        future = asyncio.run_coroutine_threadsafe(self.debugger.handle(msg), loop)
        return await asyncio.wrap_future(future)

    def _publish_debug_event(self, event: dict[str, Any]) -> None:
        """Publish a DAP event from the debugger as ``debug_event`` on IOPub."""
        if self.session is None:
            return
        self.session.send(
            self.iopub_socket,
            "debug_event",
            event,
            parent=self.get_parent("control"),
            ident=self._topic("debug_event"),
        )

    async def do_shutdown(self, restart: bool) -> dict[str, Any]:
        """Acknowledge a shutdown; the executor is stopped as the kernel process ends.

        ipykernel calls this on its control thread, but the executor lives on the shell's
        event loop, so :meth:`stop_executor` runs there once that loop has stopped (see
        :class:`~kernel_bridge.kernelapp.BridgeKernelApp`).
        """
        self.debugger.release_stopped_threads()  # a stopped cell ends with the executor
        return {"status": "ok", "restart": restart}

    async def execute_request(self, stream: Any, ident: Any, parent: Any) -> None:
        """ipykernel's handler, quiet when the kernel stops with the cell still running.

        ``do_execute`` then ends by raising CancelledError (there is no socket left to
        reply on); left to escape, it would be logged as an error by pyzmq's callback.
        """
        try:
            await super().execute_request(stream, ident, parent)
        except asyncio.CancelledError:
            if not self._stopping_executor:
                raise

    def stop_executor(self) -> None:
        """Stop the executor on the shell's event loop; called once that loop has stopped.

        Bounded by ``SHUTDOWN_TIMEOUT_S``; a container, subprocess or remote session is
        released here. (Had the kernel been killed, the runtime exits on its own when its
        input closes.)
        """
        loop = self._shell_loop
        if self.bridge_session.executor is None or loop is None:
            return
        if loop.is_closed() or loop.is_running():
            return
        self._stopping_executor = True
        try:
            loop.run_until_complete(
                asyncio.wait_for(self.bridge_session.shutdown(), SHUTDOWN_TIMEOUT_S)
            )
        except Exception:
            self.log.warning("the executor did not stop cleanly", exc_info=True)
