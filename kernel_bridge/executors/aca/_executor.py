"""Azure Container Apps dynamic sessions: cells run in a remote, sandboxed Python session.

:class:`ACADynamicSessionsCodeExecutor` keeps the public surface of AutoGen's
executor of the same name (constructor, ``execute_code_blocks``, file methods,
``restart``, ...) and implements the kernel's executor contract. What it does better:

- the token is cached and refreshed before it expires; a 401 refreshes it once;
- every cell carries an execution id the session records (``_once``), so faults
  after sending (429, 503, 500, a lost connection) are retried safely: a re-sent cell
  that already ran is not run again, and the cell says that it ran and its answer was
  lost; cells that cannot carry the id are never re-sent once they may have arrived;
- a session silently replaced by the service (idle past the pool's cooldown) is
  detected on the next cell at no extra cost: the cell says state was lost, the
  functions are injected again and the cell runs on the new session;
- restart uses a new identifier and deletes the old session (best effort);
- an interrupt ends the cell at once and says honestly that the remote code may still
  run (the service has no cancel); the next cell waits for it;
- session identifiers and tokens never appear in logs or outputs;
- rich output (HTML displays, ``update_display``, ``clear_output``, rich results) travels
  in-band through stdout thanks to a shim installed at session start (``_shim``),
  and completion / inspection run a small snippet in the session (``_introspect``).

- ``api_version`` picks how cells run: one synchronous ``code/execute`` on
  2024-02-02-preview (the default), or polled asynchronous executions on the
  ``executions`` versions, with a live status line, cut output reported and replacement
  seen through ``GET session`` (``_status``, ``_results``); ``auto`` probes once.

The service returns output only when an execution ends (no streaming), and an
interrupt cannot stop remote code: the cell says so.
Facts about the service are in docs/aca.md; points marked [INF] there are inferences.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import math
import shutil
import time
import uuid
from collections.abc import AsyncIterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Self

from traitlets import Bool, Float, Int, TraitType, Unicode
from traitlets.config import LoggingConfigurable

from ...errors import (
    ConfigurationError,
    ConfigurationValueError,
    ExecutorClosedError,
    ExecutorStartError,
    FunctionsError,
    RemoteServiceError,
)
from ...events import Error, Event, Finished, OutputEvent, Result, StateLost, Stream
from .._comm import CommRequest
from .._temp_dirs import make_owned_temp_dir
from .._trait_signature import TraitSignature
from ..autogen_compat import AutoGenCompatible, AutoGenComponent, autogen_base
from ..base import (
    Completion,
    ExecutorMeta,
    InputHandler,
    Inspection,
    RemoteExecutor,
)
from ._client import (
    API_VERSIONS,
    DEFAULT_API_VERSION,
    EXECUTION_CAP_SECONDS,
    OUTPUT_CAP_VERSIONS,
    TERMINAL_STATES,
    ACAClient,
    RetryPolicy,
    redact,
    session_ttl,
)
from ._comms import (
    comm_delivery_code,
    comm_info_code,
    comm_info_from_frames,
    comms_ready,
    comms_setup_code,
)
from ._credentials import TokenCache, TokenProvider, default_credential
from ._guard import guard_code, is_marker_error, new_marker, unguard_traceback
from ._introspect import (
    completion_from_reply,
    inspection_from_reply,
    introspection_code,
    reply_from_frames,
)
from ._once import (
    already_ran,
    has_end_frame,
    new_execution_id,
    once_setup_code,
    tag_cell_magic,
    tag_expression,
)
from ._results import ParsedExecution, parse_properties, truncation_notices
from ._shim import clean_traceback, new_nonce, shim_setup_code, wrap_last_expression
from ._status import StatusLine

__all__ = ["ACADynamicSessionsCodeExecutor"]

# The service's starting directory is not /mnt/data (the public clients chdir there
# themselves) [INF: undocumented]; the marker is explained in _guard.
_SETUP_CODE = """\
import os as _kb_os
try:
    _kb_os.chdir('/mnt/data')
except OSError:
    pass
del _kb_os
"""

_PACKAGES_CODE = (
    "import importlib.metadata as _kb_m, json as _kb_j, re as _kb_re\n"
    "print(_kb_j.dumps(sorted({_kb_re.sub(r'[-_.]+', '-', (d.metadata['Name'] or '')).lower()"
    " for d in _kb_m.distributions()} - {''})))\n"
    "del _kb_m, _kb_j, _kb_re\n"
)

_STATE_LOST = (
    "The Azure Container Apps session behind this kernel was replaced by the service "
    "(it sat idle longer than the session pool's cooldown period, or the service recycled "
    "it): all variables, imports and files in /mnt/data from before are gone. The "
    "user-defined functions were injected again and this cell ran in the new session."
)

_INTERRUPTED = (
    "Interrupted. Azure Container Apps sessions cannot be interrupted, so the code may "
    "still be running in the remote session; its output will not be shown. Variables it "
    "sets are kept in the session once it finishes. The next cell first waits for it to "
    "finish (up to {limit:.0f} s); restart the kernel to abandon the session instead."
)

_TIMED_OUT = (
    "The execution did not finish within the {timeout:g} s timeout{source}. The service "
    "was asked to stop it after {timeout:g} s (timeoutInSeconds) but sent no answer in "
    "time. Azure Container Apps sessions cannot be interrupted from outside, so the code "
    "may still be running in the remote session (or may not have started yet); its "
    "output will not be shown and the next cell first waits for it."
)

_SYNC_LIMIT = (
    "The service stopped this cell at its limit for synchronous executions (220 s on "
    "Azure; the emulator's --execution-cap). api-version 2024-02-02-preview has only "
    "synchronous executions: to run longer cells, set "
    "--ACADynamicSessionsCodeExecutor.api_version=2025-10-02-preview (kernel-bridge "
    "install --api-version 2025-10-02-preview), which runs cells as polled asynchronous "
    "executions."
)
_ASYNC_TIMEOUT_SECONDS = 3600
"""timeoutInSeconds of a polled cell without a timeout ([INF]: the service's limit for
asynchronous executions is not documented)."""
_START_WAIT = 60.0
"""Seconds to wait for the answer that starts an asynchronous execution."""
_EXPIRY_MARGIN = 5.0
"""Seconds before a session's expected expiry from which a cell first asks GET session."""
_POLL_FIRST = 0.002
_POLL_GROWTH = 1.6
_POLL_MAX = 1.0
"""Polling interval of an asynchronous execution: from 2 ms (a quick cell is answered
at once) growing by 60 % each time to 1 s (a long one then costs one request a
second); about 15 polls in the first 3 s."""

_CONSTRUCTOR_CONFIG = (
    "pool_management_endpoint",
    "timeout",
    "work_dir",
    "functions_module",
    "suppress_result_output",
)
"""The constructor's arguments that :meth:`ACADynamicSessionsCodeExecutor.to_config` keeps."""
_FILENAME_FORBIDDEN = set('/\\:*?"<>|\x00')
_CLIENT_GRACE = 10.0
"""Longest the client waits past the requested timeout before abandoning the request."""
_AUTOGEN_DEFAULT_TIMEOUT = 60
_INTROSPECT_TIMEOUT = 5.0
_COMM_TIMEOUT = 30.0
"""Seconds a comm message's short execution (a widget handler) may take in the session."""
"""Seconds a completion or inspection may take in the session before it answers empty."""
_INTROSPECT_SETUP_TIMEOUT = 60.0
"""Extra seconds allowed when a completion has to start the session first."""


class _PathTrait(TraitType[Path | None, Path | str | None]):
    """A directory path (str or Path in, Path out), or None."""

    default_value = None
    allow_none = True
    info_text = "a directory path"

    def validate(self, obj: Any, value: Any) -> Path | None:
        if value is None:
            return None
        if isinstance(value, str | Path):
            return Path(value)
        self.error(obj, value)


def _check_filename(name: str) -> str:
    """Return ``name`` when it is a bare file name (no path, no traversal); else raise."""
    if (
        not name
        or name in (".", "..")
        or any(ch in _FILENAME_FORBIDDEN or ord(ch) < 32 for ch in name)
    ):
        raise ConfigurationError(
            f"{name!r} is not a valid session file name: use a bare name such as "
            "'data.csv' (no directories, no '..'); the session keeps files flat in /mnt/data."
        )
    return name


def _config_schema() -> type[Any]:
    from ._autogen_config import ACAExecutorConfig

    return ACAExecutorConfig


if TYPE_CHECKING:
    _AutoGenBase = AutoGenComponent
else:  # AutoGen's CodeExecutor and Component when autogen_core is installed
    _AutoGenBase = autogen_base(
        "kernel_bridge.executors.aca.ACADynamicSessionsCodeExecutor", _config_schema
    )


class ACADynamicSessionsCodeExecutor(
    RemoteExecutor,
    AutoGenCompatible,
    LoggingConfigurable,
    _AutoGenBase,
    metaclass=ExecutorMeta,
):
    """Runs code in an Azure Container Apps dynamic session (Python code interpreter).

    ``pool_management_endpoint`` is the pool's endpoint
    (``https://<region>.dynamicsessions.io/subscriptions/.../sessionPools/<pool>``, or the
    one ``kernel-bridge aca-emulator`` prints). ``credential`` is anything with
    ``get_token(*scopes)``; None means the ``KERNEL_BRIDGE_ACA_TOKEN`` environment
    variable when set, else ``azure.identity.DefaultAzureCredential``. Configurable from
    the kernelspec: ``--ACADynamicSessionsCodeExecutor.pool_management_endpoint=URL``.
    """

    kind = "aca"
    SUPPORTED_LANGUAGES: ClassVar[list[str]] = ["python"]
    FUNCTION_PROMPT_TEMPLATE: ClassVar[str] = (
        "You have access to the following user defined functions.\n\n$functions"
    )

    pool_management_endpoint = Unicode(
        "", config=True, help="The session pool's management endpoint (https://...)."
    )
    timeout = Int(
        _AUTOGEN_DEFAULT_TIMEOUT,
        config=True,
        help="Seconds one code block may run (seed API), >= 1. When set, it also limits "
        "every kernel cell (kernel-bridge install --timeout).",
    )
    work_dir = _PathTrait(
        config=True, help="Host directory for upload/download (default: a temporary one)."
    )
    functions_module = Unicode(
        "functions", config=True, help="Module name the user-defined functions live in."
    )
    suppress_result_output = Bool(
        False, config=True, help="Leave the value of the last expression out of results."
    )
    api_version = Unicode(
        DEFAULT_API_VERSION,
        config=True,
        help="api-version of the code executions: " + ", ".join(API_VERSIONS) + ". "
        "2024-02-02-preview (default) is what the public clients speak (synchronous, "
        "about 220 s per cell); the others run cells as polled asynchronous executions; "
        "auto probes the pool once. See docs/aca.md.",
    )
    output_streams_max_length = Int(
        1024 * 1024,
        config=True,
        help="outputStreamsMaxLength asked for on 2025-10-02-preview (the service "
        "default is 4096); output cut anyway is reported in the cell.",
    )
    status_line_after = Float(
        3.0,
        config=True,
        help="Seconds after which a polled cell shows a live 'still running' line.",
    )
    delete_sessions = Bool(
        True, config=True, help="DELETE the old session on restart and stop (best effort)."
    )
    max_retries = Int(4, config=True, help="Retries of throttled (429/503) requests.")
    http_timeout = Float(
        240.0, config=True, help="HTTP read timeout in seconds (above the 220 s cap)."
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        """AutoGen's signature (``_SIGNATURE``; defaults are the traits'), plus ``parent``.

        Arguments given here win over the configuration the parent (the kernel) carries;
        options not given come from that configuration or the trait defaults.
        """
        given, passthrough = _SIGNATURE.bind(self, args, kwargs)
        credential: TokenProvider | None = given.pop("credential", None)
        functions: Sequence[object] = given.pop("functions", ())
        session_id: str | None = given.pop("session_id", None)
        if given.get("pool_management_endpoint") is None:
            given.pop("pool_management_endpoint", None)
        LoggingConfigurable.__init__(self, **passthrough, **given)
        if not isinstance(self.timeout, int) or self.timeout < 1:
            raise ConfigurationValueError("Timeout must be greater than or equal to 1.")
        # A timeout the user set also limits kernel cells; AutoGen's default of 60 s does
        # not (kernel cells may otherwise run up to the service's 220 s cap).
        configured = "timeout" in given or "timeout" in self.config.get(type(self).__name__, {})
        self._cell_timeout: float | None = float(self.timeout) if configured else None
        if not self.pool_management_endpoint:
            raise ConfigurationError(
                "The ACA executor needs the session pool's endpoint: set "
                "--ACADynamicSessionsCodeExecutor.pool_management_endpoint=URL (e.g. "
                "https://<region>.dynamicsessions.io/subscriptions/<sub>/resourceGroups/"
                "<rg>/sessionPools/<pool>, or what `kernel-bridge aca-emulator` prints)."
            )
        if not self.functions_module.isidentifier():
            raise ConfigurationValueError(
                f"functions_module {self.functions_module!r} is not a Python identifier; "
                "use a name like 'functions'."
            )
        self._owned_work_dir: Path | None = None
        if self.work_dir is None:
            self._owned_work_dir = make_owned_temp_dir("kb-aca-")
            self.work_dir = self._owned_work_dir
        else:
            self._work_dir_path().mkdir(parents=True, exist_ok=True)
        self._functions: list[object] = list(functions)
        self._tokens = TokenCache(credential if credential is not None else default_credential())
        self._client = ACAClient(
            self.pool_management_endpoint,
            self._tokens,
            api_version=self.api_version,
            http_timeout=self.http_timeout,
            retry=RetryPolicy(max_retries=self.max_retries),
        )
        self._session_id = session_id or str(uuid.uuid4())
        self._established = session_id is not None
        self._setup_done = False
        self._marker = new_marker()
        self._nonce = new_nonce()
        self._shim_mode: str | None = None
        self.supports_comms = False  # known once the session is set up (_setup)
        self._packages: set[str] | None = None
        self._lock: asyncio.Lock | None = None
        self._interrupt: _Signal | None = None
        self._abandoned: asyncio.Task[dict[str, Any]] | None = None
        self._abandoned_deadline = 0.0
        self._pending: list[OutputEvent] = []
        self._closed = False
        self._end_frames_seen = False
        self._etag: str | None = None
        self._session_ttl: float | None = None
        self._session_expires = math.inf

    # -- AutoGen-compatible surface (executors/autogen_compat.py) -------------------------

    def _work_dir_path(self) -> Path:
        path = self.work_dir
        assert isinstance(path, Path)
        return path

    @property
    def functions(self) -> list[str]:
        """Names of the user-defined functions injected at every session start."""
        module = self._functions_module()
        return list(module.function_names) if module is not None else []

    def format_functions_for_prompt(self, prompt_template: str = FUNCTION_PROMPT_TEMPLATE) -> str:
        """Return ``prompt_template`` with ``$functions`` replaced by the function stubs."""
        from ...functions import format_functions_for_prompt

        return format_functions_for_prompt(
            self._functions, prompt_template, module_name=self.functions_module
        )

    async def execute_code_blocks(
        self, code_blocks: Sequence[object], cancellation_token: object | None = None
    ) -> Any:
        """Run code blocks in order in the session (AutoGen's API); returns a CodeResult.

        Each block may run ``timeout`` seconds; the first failing block stops the run.
        """
        from .._blocks import run_code_blocks

        return await run_code_blocks(
            self,
            code_blocks,
            cancellation_token,
            timeout=float(self.timeout),
            work_dir=self._work_dir_path(),
            supported_languages=list(self.SUPPORTED_LANGUAGES),
            write_code_files=False,
            delete_tmp_files=False,
        )

    # -- configuration round trip (AutoGen's dump_component / load_component) --------------

    _CONFIG_TRAITS: ClassVar[tuple[str, ...]] = (
        "api_version",
        "output_streams_max_length",
        "status_line_after",
        "delete_sessions",
        "max_retries",
        "http_timeout",
    )

    def to_config(self) -> dict[str, Any]:
        """Return the serialisable settings (JSON-compatible), never a secret.

        Left out: the functions (as AutoGen does), the credential and any token, the
        session identifier (it is a secret: with a token it reaches the session), and a
        temporary work_dir. An executor built from the config gets the default
        credential and a new session.
        """
        config: dict[str, Any] = {
            "pool_management_endpoint": self.pool_management_endpoint,
            "timeout": self.timeout,
            "work_dir": None if self._owned_work_dir is not None else str(self.work_dir),
            "functions_module": self.functions_module,
            "suppress_result_output": self.suppress_result_output,
        }
        for name in self._CONFIG_TRAITS:
            config[name] = getattr(self, name)
        return config

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> Self:
        """Build an executor from :meth:`to_config` output (unknown keys are an error)."""
        values = dict(config)
        unknown = set(values) - {*cls._CONFIG_TRAITS, *_CONSTRUCTOR_CONFIG}
        if unknown:
            raise ConfigurationValueError(
                f"unknown ACA executor settings: {', '.join(sorted(unknown))}"
            )
        return cls(**values)

    # -- contract: lifecycle ---------------------------------------------------------------

    def _get_lock(self) -> asyncio.Lock:
        if self._lock is None:
            self._lock = asyncio.Lock()
        return self._lock

    async def start(self) -> None:
        """Allocate the session and inject the functions now (idempotent).

        Raises :class:`ExecutorStartError` when the service refuses or the functions fail.
        """
        self._check_open()
        async with self._get_lock():
            await self._start_now()

    async def _start_now(self) -> None:
        if self._setup_done:
            return
        events: list[OutputEvent] = []
        try:
            ok = await self._setup(events)
        except RemoteServiceError as exc:
            raise ExecutorStartError(str(exc)) from exc
        self._pending.extend(events)
        if not ok:
            raise ExecutorStartError(_describe(events))

    async def stop(self) -> None:
        """Delete the session (best effort, within about 2 s), close connections, clean up."""
        if self._closed:
            return
        self._closed = True
        if self._interrupt is not None:
            self._interrupt.set()
        await self._cancel_abandoned()
        if self.delete_sessions and self._established:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._client.delete_session(self._session_id), 2.0)
        with contextlib.suppress(Exception):
            await self._client.aclose()
        if self._owned_work_dir is not None:
            shutil.rmtree(self._owned_work_dir, ignore_errors=True)

    async def restart(self) -> None:
        """Switch to a new session (new identifier), delete the old one, inject functions."""
        self._check_open()
        async with self._get_lock():
            await self._cancel_abandoned()
            old, was_established = self._session_id, self._established
            self._session_id = str(uuid.uuid4())
            self._established = False
            self._setup_done = False
            self.supports_comms = False  # until the new session is set up
            self._packages = None
            self._pending.clear()
            if self.delete_sessions and was_established:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(self._client.delete_session(old), 5.0)
            self.log.info("ACA executor: restarted on a new session %s", redact(self._session_id))
            await self._start_now()

    async def interrupt(self) -> None:
        """End the running execution now; the remote code may go on (no remote cancel)."""
        if self._interrupt is not None:
            self._interrupt.set()

    async def _cancel_abandoned(self) -> None:
        task, self._abandoned = self._abandoned, None
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(BaseException):
                await task

    def _check_open(self) -> None:
        if self._closed:
            raise ExecutorClosedError(
                "This ACA executor was stopped; create a new one to run more code."
            )

    # -- session setup ---------------------------------------------------------------------

    def _functions_module(self) -> Any:
        if not self._functions:
            return None
        from ...functions import build_functions_module

        return build_functions_module(list(self._functions), self.functions_module)

    async def _setup(self, events: list[OutputEvent]) -> bool:
        """Run the session setup (cwd, marker, output shim, functions); collect its output."""
        await self._client.resolve_version(self._session_id)
        marker = new_marker()
        nonce = new_nonce()
        code = _SETUP_CODE + once_setup_code(marker) + shim_setup_code(nonce) + comms_setup_code()
        problems: tuple[str, ...] = ()
        try:
            module = self._functions_module()
        except FunctionsError as exc:
            events.append(Error("FunctionsError", str(exc), [f"FunctionsError: {exc}"]))
            module = None
            problems = ("",)
        if module is not None:
            problems = tuple(module.problems)
            if module.function_names:
                code += module.setup_code(install_packages=False)
        # Setting up twice is harmless (each step is idempotent): safe to re-send.
        properties = await self._client.execute(
            self._session_id, code, new_session=not self._established, replay_safe=True
        )
        self._established = True
        self._marker = marker
        self._nonce = nonce
        self._setup_done = True
        self._end_frames_seen = False
        await self._record_session()
        parsed = parse_properties(properties, nonce)
        hello = next((f for f in parsed.frames if f.get("t") == "hello"), None)
        self._shim_mode = str(hello.get("mode")) if hello is not None else None
        # Without the comm package in the session, widgets keep their text and a note.
        self.supports_comms = comms_ready(parsed.frames)
        if self._shim_mode is None:
            self.log.debug(
                "ACA output shim not installed in session %s: rich output falls back to "
                "the service's result",
                redact(self._session_id),
            )
        ok = not parsed.failed and not problems
        for event in parsed.events:
            if isinstance(event, Error):
                events.append(
                    Error(
                        "FunctionsError",
                        f"the user-defined functions could not be set up in the ACA "
                        f"session: {event.ename}: {event.evalue}",
                        event.traceback,
                    )
                )
            elif not isinstance(event, Result):
                events.append(event)
        if problems and any(problems):
            text = (
                "some user-defined functions could not be injected: "
                + "; ".join(p for p in problems if p)
                + ". Fix them and restart the kernel; the others are available."
            )
            events.append(Error("FunctionsError", text, [f"FunctionsError: {text}"]))
        self.log.debug("ACA session %s set up (ok=%s)", redact(self._session_id), ok)
        return ok

    # -- execution -------------------------------------------------------------------------

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
        """Run ``code`` in the session and yield its events (all at the end), then Finished.

        Starts the session first when needed. A session replaced by the service yields
        ``StateLost``, gets the functions again and the cell is re-sent once (it had not
        run). Service errors become an ``Error`` naming the status and what to check.
        """
        if language.strip().lower() not in ("python", "py", "python3"):
            text = f"unknown language {language}: the ACA executor runs Python only"
            yield Error("ValueError", text, [f"ValueError: {text}"])
            yield Finished(1)
            return
        if self._closed:
            text = "This ACA executor was stopped; create a new one to run more code."
            yield Error("ExecutorClosedError", text, [f"ExecutorClosedError: {text}"])
            yield Finished(1)
            return
        async with self._get_lock():
            pending, self._pending = self._pending, []
            for earlier in pending:
                yield earlier
            async for event in self._execute_locked(code, timeout):
                yield event

    async def _execute_locked(self, code: str, timeout: float | None) -> AsyncIterator[Event]:
        try:
            if self._abandoned is not None and not self._abandoned.done():
                yield Stream(
                    "stderr",
                    "Waiting for the interrupted execution to finish in the ACA session...\n",
                )
                if not await self._wait_abandoned():
                    text = (
                        "Interrupted while waiting for the previous (interrupted) execution "
                        "to finish in the ACA session; this cell did not run."
                    )
                    yield Error("KeyboardInterrupt", text, [f"KeyboardInterrupt: {text}"])
                    yield Finished(1)
                    return
            need_setup = not self._setup_done
            if not need_setup and await self._session_replaced():
                self.log.info(
                    "ACA session %s was replaced (GET session); setting it up again",
                    redact(self._session_id),
                )
                yield StateLost(_STATE_LOST)
                need_setup = True
            # At most two rounds: a replaced session is set up again and the cell, which
            # had not run there, is sent once more.
            outcome: ParsedExecution | list[Event] | None = None
            for attempt in (1, 2):
                if need_setup or attempt == 2:
                    setup_events: list[OutputEvent] = []
                    ok = await self._setup(setup_events)
                    for setup_event in setup_events:
                        yield setup_event
                    if not ok:
                        yield Finished(1)
                        return
                outcome = None
                async for item in self._send_cell(code, timeout):
                    if isinstance(item, ParsedExecution | list):
                        outcome = item
                    else:
                        yield item
                assert outcome is not None
                if isinstance(outcome, list):
                    for event in outcome:
                        yield event
                    return
                if attempt == 2 or not is_marker_error(
                    outcome.error, self._marker, _stdout(outcome)
                ):
                    break
                self.log.info(
                    "ACA session %s was replaced by the service; setting it up again",
                    redact(self._session_id),
                )
                yield StateLost(_STATE_LOST)
            assert isinstance(outcome, ParsedExecution)
            self._session_used()
            for output in outcome.events:
                if self.suppress_result_output and isinstance(output, Result):
                    continue
                if isinstance(output, Error):
                    output = clean_traceback(unguard_traceback(output, self._marker))
                yield output
            yield Finished(outcome.exit_code)
        except RemoteServiceError as exc:
            text, ename = str(exc), type(exc).__name__  # e.g. CodeMayHaveRunError
            self.log.debug("ACA request failed: %s", text)
            yield Error(ename, text, [f"{ename}: {text}"])
            yield Finished(1)

    async def _session_replaced(self) -> bool:
        """True when ``GET session`` says the session was replaced (gone, or a new etag).

        Only on versions that have it, and only once the session may have expired (its
        time to live, learnt from ``expireAt - lastAccessedAt``, has nearly passed): no
        round trip is added to a cell on a session in use. The marker check stays as the
        backstop for replacements the service makes earlier.
        """
        if not self._client.has_session_resource or self._etag is None:
            return False
        if time.monotonic() < self._session_expires - _EXPIRY_MARGIN:
            return False
        info = await self._client.get_session(self._session_id)
        if info is None or str(info.get("etag") or "") != self._etag:
            return True
        self._note_session(info)
        return False

    async def _record_session(self) -> None:
        """After a session start: remember its etag and time to live (GET session)."""
        self._etag = None
        self._session_expires = math.inf
        if not self._client.has_session_resource:
            return
        try:
            info = await self._client.get_session(self._session_id)
        except RemoteServiceError as exc:
            self.log.debug("ACA GET session failed: %s", exc)
            return
        if info is not None and info.get("etag"):
            self._etag = str(info["etag"])
            self._note_session(info)

    def _note_session(self, info: dict[str, Any]) -> None:
        ttl = session_ttl(info)
        if ttl is not None:
            self._session_ttl = ttl
        self._session_used()

    def _session_used(self) -> None:
        """Every request to the session restarts its idle timer."""
        if self._session_ttl is not None:
            self._session_expires = time.monotonic() + self._session_ttl

    async def _wait_abandoned(self) -> bool:
        """Wait for an interrupted request; False when interrupted again meanwhile."""
        task = self._abandoned
        assert task is not None
        interrupt = self._interrupt = _Signal()
        watched: set[asyncio.Future[Any]] = {task, interrupt.future}
        try:
            remaining = max(1.0, self._abandoned_deadline - time.monotonic())
            await asyncio.wait(watched, timeout=remaining, return_when=asyncio.FIRST_COMPLETED)
        finally:
            self._interrupt = None
        interrupted = interrupt.is_set()
        if not task.done():
            if interrupted:
                return False
            await self._cancel_abandoned()  # its HTTP wait is over: stop waiting for it
            return True
        self._abandoned = None
        with contextlib.suppress(BaseException):
            task.result()  # the result of an abandoned execution is discarded
        return True

    def _limits(self, timeout: float | None) -> tuple[float | None, int | None, float | None, str]:
        """(effective timeout, timeoutInSeconds to send, seconds to wait, where it came from)."""
        source = ""
        if self._cell_timeout is not None and (not timeout or timeout > self._cell_timeout):
            timeout, source = self._cell_timeout, " set for this kernel (--timeout)"
        if timeout is None or timeout <= 0:
            # Polled executions have no client-side limit; a synchronous request waits
            # past the service's cap.
            return None, None, None if self._client.uses_executions else self.http_timeout, ""
        polled_cap = None if self._client.uses_executions else EXECUTION_CAP_SECONDS
        seconds = max(1, math.ceil(timeout))
        timeout_seconds = seconds if polled_cap is None else min(polled_cap, seconds)
        # A short grace for a short limit: the cell ends close to the limit asked for.
        grace = min(_CLIENT_GRACE, max(1.0, timeout / 5))
        wait = timeout + grace
        if not self._client.uses_executions:
            wait = min(self.http_timeout, wait)
        return timeout, timeout_seconds, wait, source

    async def _send_cell(
        self, code: str, timeout: float | None
    ) -> AsyncIterator[OutputEvent | ParsedExecution | list[Event]]:
        """Send one cell; yield live status displays, then its parsed result (last).

        The last item is the parsed execution, or the events that end the cell when the
        answer is not awaited (interrupt, timeout) or was lost after the cell ran.
        """
        timeout, timeout_seconds, wait, source = self._limits(timeout)
        if self._shim_mode == "plain":  # no IPython display hook there: wrap the value
            code = wrap_last_expression(code)
        execution_id = new_execution_id()
        tag = tag_expression(self._marker, execution_id)
        guarded = guard_code(code, tag)
        if guarded == code and self._shim_mode == "ipython":
            guarded = tag_cell_magic(code, tag)
        replay_safe = guarded != code  # tagged: the session runs it at most once
        faults: list[str] = []
        ticks: asyncio.Queue[None] = asyncio.Queue()
        runner: asyncio.Future[dict[str, Any]]
        if self._client.uses_executions:
            runner = asyncio.ensure_future(
                self._run_polled(guarded, timeout_seconds, replay_safe, faults, ticks)
            )
        else:
            runner = asyncio.ensure_future(
                self._client.execute(
                    self._session_id,
                    guarded,
                    timeout_seconds=timeout_seconds,
                    new_session=not self._established,
                    wait=self.http_timeout,
                    replay_safe=replay_safe,
                    faults=faults,
                )
            )
        status = StatusLine(f"kb-aca-{execution_id}", self.status_line_after)
        interrupt = self._interrupt = _Signal()
        deadline = None if wait is None else status.started + wait
        try:
            while not runner.done():
                # only polled executions tick (a synchronous one spares the task)
                polled = self._client.uses_executions
                getter = asyncio.ensure_future(ticks.get()) if polled else None
                watched: set[asyncio.Future[Any]] = {runner, interrupt.future}
                if getter is not None:
                    watched.add(getter)
                remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
                try:
                    await asyncio.wait(
                        watched,
                        timeout=remaining,
                        return_when=asyncio.FIRST_COMPLETED,
                    )
                finally:
                    if getter is not None:
                        getter.cancel()
                if runner.done() or interrupt.is_set():
                    break
                if deadline is not None and time.monotonic() >= deadline:
                    break
                update = status.running()
                if update is not None:
                    yield update
        finally:
            self._interrupt = None
        if runner.done():
            try:
                properties = runner.result()
            except RemoteServiceError:
                final = status.finish("the ACA service failed")
                if final is not None:
                    yield final
                raise
            final = status.finish(None)
            if final is not None:
                yield final
            self._established = True
            yield self._parse(
                properties,
                execution_id if replay_safe else None,
                faults,
                timeout_seconds,
                status.elapsed(),
            )
            return
        self._abandoned = runner
        self._abandoned_deadline = time.monotonic() + self.http_timeout
        final = status.finish("stopped waiting; it may still be running")
        if final is not None:
            yield final
        if interrupt.is_set():
            text = _INTERRUPTED.format(limit=self.http_timeout)
            yield [Error("KeyboardInterrupt", text, [f"KeyboardInterrupt: {text}"]), Finished(1)]
            return
        text = _TIMED_OUT.format(timeout=timeout or 0, source=source)
        yield [Error("TimeoutError", text, [f"TimeoutError: {text}"]), Finished(124)]

    async def _run_polled(
        self,
        code: str,
        timeout_seconds: int | None,
        replay_safe: bool,
        faults: list[str],
        ticks: asyncio.Queue[None],
    ) -> dict[str, Any]:
        """Start an asynchronous execution and poll it until it ends; return its resource."""
        resource = await self._client.start_execution(
            self._session_id,
            code,
            timeout_seconds=timeout_seconds or _ASYNC_TIMEOUT_SECONDS,
            new_session=not self._established,
            wait=_START_WAIT,
            replay_safe=replay_safe,
            faults=faults,
            asynchronous=True,
            output_max_length=self.output_streams_max_length,
        )
        self._established = True
        execution_id = str(resource.get("id") or "")
        delay = _POLL_FIRST
        while str(resource.get("status", "")).lower() not in TERMINAL_STATES:
            if not execution_id:
                raise RemoteServiceError(
                    "The ACA service started an asynchronous execution without an `id` to "
                    "poll; use api_version 2024-02-02-preview with this pool.",
                    status=0,
                )
            await asyncio.sleep(delay)  # the polling interval, not a synchronisation
            delay = min(_POLL_MAX, delay * _POLL_GROWTH)
            resource = await self._client.get_execution(self._session_id, execution_id)
            ticks.put_nowait(None)
        return resource

    def _parse(
        self,
        properties: dict[str, Any],
        execution_id: str | None,
        faults: list[str],
        timeout_seconds: int | None,
        elapsed: float,
    ) -> ParsedExecution | list[Event]:
        """Parse an answer: lost answers, the synchronous limit and cut output said plainly.

        ``execution_id`` is None for a cell sent without the run-once check (it then has
        no end frame either).
        """
        parsed = parse_properties(properties, self._nonce)
        outcome = None if execution_id is None else already_ran(parsed.error, execution_id)
        if outcome is not None:
            return _answer_lost(outcome, faults)
        ended = execution_id is not None and has_end_frame(parsed.frames, execution_id)
        if ended:
            self._end_frames_seen = True
        notices = truncation_notices(
            properties,
            requested=(
                self.output_streams_max_length
                if self._client.api_version in OUTPUT_CAP_VERSIONS
                else None
            ),
            end_frame_missing=(
                self._end_frames_seen
                and execution_id is not None
                and not ended
                and not is_marker_error(parsed.error, self._marker, _stdout(parsed))
            ),
        )
        events = list(parsed.events)
        error = parsed.error
        if (
            error is not None
            and parsed.exit_code == 124
            and not self._client.uses_executions
            and (timeout_seconds is None or elapsed + 1 < timeout_seconds)
        ):
            error = Error(
                error.ename,
                f"{error.evalue}. {_SYNC_LIMIT}",
                [*error.traceback, _SYNC_LIMIT],
            )
            events = [error if e is parsed.error else e for e in events]
        events += [Stream("stderr", notice) for notice in notices]
        return dataclasses.replace(parsed, events=events, error=error)

    # -- contract: introspection -------------------------------------------------------------

    async def complete(self, code: str, cursor_pos: int) -> Completion:
        """Completions computed in the session (IPython's completer, else rlcompleter).

        Starts the session when none is set up yet; answers no matches when the session
        is busy with an interrupted execution, after 5 s, or on any failure.
        """
        reply = await self._introspect("complete", code, cursor_pos, 0)
        return completion_from_reply(reply, cursor_pos)

    async def inspect(self, code: str, cursor_pos: int, detail_level: int = 0) -> Inspection:
        """Help for the name at the cursor, computed in the session (like :meth:`complete`)."""
        reply = await self._introspect("inspect", code, cursor_pos, detail_level)
        return inspection_from_reply(reply)

    async def _introspect(
        self, op: str, code: str, cursor_pos: int, detail_level: int
    ) -> dict[str, Any] | None:
        if self._closed:
            return None
        limit = _INTROSPECT_TIMEOUT + (0.0 if self._setup_done else _INTROSPECT_SETUP_TIMEOUT)
        try:
            return await asyncio.wait_for(
                self._introspect_locked(op, code, cursor_pos, detail_level), limit
            )
        except Exception as exc:  # never fail a completion request
            self.log.debug("ACA %s unavailable: %s", op, type(exc).__name__)
            return None

    async def _introspect_locked(
        self, op: str, code: str, cursor_pos: int, detail_level: int
    ) -> dict[str, Any] | None:
        async with self._get_lock():
            if self._abandoned is not None and not self._abandoned.done():
                return None  # the session is still busy with an interrupted cell
            if not self._setup_done:
                events: list[OutputEvent] = []
                await self._setup(events)
                self._pending.extend(events)
            request_id, cell = introspection_code(op, code, cursor_pos, detail_level)
            properties = await self._client.execute(
                self._session_id,
                cell,
                timeout_seconds=math.ceil(_INTROSPECT_TIMEOUT),
                new_session=not self._established,
                wait=_INTROSPECT_TIMEOUT + _CLIENT_GRACE,
                replay_safe=True,  # read-only
            )
            self._established = True
            return reply_from_frames(parse_properties(properties, self._nonce).frames, request_id)

    # -- contract: comms (see _comms) ----------------------------------------------------

    async def deliver_comm(self, comm: CommRequest) -> AsyncIterator[Event]:
        """Deliver a frontend comm message by a short execution; yield what it caused.

        The handlers' comm replies (``echo_update``, ``update_states``) and output come
        back in that execution's output. Without comms in the session (or before it is
        set up) a ``comm_open`` is answered by a ``comm_close``, as the base does.
        """
        if self._closed or not self.supports_comms:
            async for event in super().deliver_comm(comm):
                yield event
            return
        try:
            async with self._get_lock():
                if self._abandoned is not None and not self._abandoned.done():
                    self.log.debug("ACA comm %s dropped: the session is busy", comm.msg_type)
                    yield Finished(1)
                    return
                properties = await self._client.execute(
                    self._session_id,
                    comm_delivery_code(comm),
                    timeout_seconds=math.ceil(_COMM_TIMEOUT),
                    new_session=not self._established,
                    wait=_COMM_TIMEOUT + _CLIENT_GRACE,
                    output_max_length=self.output_streams_max_length,
                )
        except RemoteServiceError as exc:
            self.log.debug("ACA comm %s not delivered: %s", comm.msg_type, exc)
            yield Finished(1)
            return
        self._session_used()
        parsed = parse_properties(properties, self._nonce)
        for event in parsed.events:
            if not isinstance(event, Result):  # the exec() call's None
                yield event
        yield Finished(parsed.exit_code)

    async def comm_info(self, target_name: str | None) -> dict[str, dict[str, str]]:
        """The open comms in the session, from a short execution ({} on any failure)."""
        if self._closed or not self.supports_comms:
            return {}
        try:
            return await asyncio.wait_for(self._comm_info_locked(target_name), _COMM_TIMEOUT)
        except Exception as exc:  # never fail a comm_info_request
            self.log.debug("ACA comm_info unavailable: %s", type(exc).__name__)
            return {}

    async def _comm_info_locked(self, target_name: str | None) -> dict[str, dict[str, str]]:
        async with self._get_lock():
            if self._abandoned is not None and not self._abandoned.done():
                return {}
            request_id, cell = comm_info_code(target_name)
            properties = await self._client.execute(
                self._session_id,
                cell,
                timeout_seconds=math.ceil(_COMM_TIMEOUT),
                new_session=not self._established,
                wait=_COMM_TIMEOUT + _CLIENT_GRACE,
                output_max_length=self.output_streams_max_length,
                replay_safe=True,  # read-only
            )
            frames = parse_properties(properties, self._nonce).frames
            return comm_info_from_frames(frames, request_id) or {}

    # -- files and packages ----------------------------------------------------------------

    def _local_path(self, name: Path | str) -> Path:
        base = self._work_dir_path().resolve()
        path = (base / name).resolve()
        if not path.is_relative_to(base):
            raise ConfigurationError(
                f"{str(name)!r} is outside the work_dir {str(base)!r}; use names inside it."
            )
        return path

    async def upload_files(
        self, files: Sequence[Path | str], cancellation_token: object | None = None
    ) -> None:
        """Upload files from ``work_dir`` to the session's /mnt/data (by base name)."""
        self._check_open()
        for name in files:
            path = self._local_path(name)
            if not path.is_file():
                raise ConfigurationError(f"{str(name)!r} is not a file in {self.work_dir}.")
            remote = _check_filename(path.name)
            data = await asyncio.to_thread(path.read_bytes)
            await self._client.upload(self._session_id, remote, data)
            self._established = True

    async def download_files(
        self, files: Sequence[Path | str], cancellation_token: object | None = None
    ) -> list[str]:
        """Download files from the session's /mnt/data into ``work_dir``; return the paths."""
        self._check_open()
        written: list[str] = []
        for name in files:
            remote = _check_filename(str(name).removeprefix("/mnt/data/"))
            target = self._local_path(remote)
            data = await self._client.download(self._session_id, remote)
            await asyncio.to_thread(target.write_bytes, data)
            written.append(str(target))
        return written

    async def get_file_list(self, cancellation_token: object | None = None) -> list[str]:
        """List the file names in the session's /mnt/data."""
        self._check_open()
        entries = await self._client.list_files(self._session_id)
        return [
            str(e.get("filename", "")).removeprefix("/mnt/data/")
            for e in entries
            if e.get("filename")
        ]

    async def get_available_packages(self, cancellation_token: object | None = None) -> set[str]:
        """Normalised names of the distributions installed in the session (cached)."""
        self._check_open()
        if self._packages is not None:
            return set(self._packages)
        out: list[str] = []
        errors: list[Error] = []
        async for event in self.execute(_PACKAGES_CODE, silent=True, store_history=False):
            if isinstance(event, Stream) and event.name == "stdout":
                out.append(event.text)
            elif isinstance(event, Error):
                errors.append(event)
        if errors:
            raise RemoteServiceError(
                "Could not list the packages of the ACA session: "
                + "; ".join(f"{e.ename}: {e.evalue}" for e in errors)
            )
        lines = "".join(out).strip().splitlines()
        names = json.loads(lines[-1]) if lines else []
        self._packages = {str(n) for n in names}
        return set(self._packages)


class _Signal:
    """A flag set by :meth:`ACADynamicSessionsCodeExecutor.interrupt` (or ``stop``) that
    ``asyncio.wait`` watches as a plain future: an ``asyncio.Event`` would need a task
    per wait, an extra event-loop turn on every cell."""

    def __init__(self) -> None:
        self.future: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def set(self) -> None:
        """Set the flag (idempotent)."""
        if not self.future.done():
            self.future.set_result(None)

    def is_set(self) -> bool:
        """True once :meth:`set` was called."""
        return self.future.done()


def _answer_lost(outcome: str, faults: Sequence[str]) -> list[Event]:
    """The events of a cell that ran once but whose answer was lost (it was not re-run)."""
    why = ", ".join(dict.fromkeys(faults)) or "a fault"
    head = (
        f"This cell ran once in the ACA session, but the service's answer was lost ({why}). "
        "It was sent again and the session recognised it, so it did not run a second time. "
        "Its output cannot be shown"
    )
    if outcome == "ok":
        return [Stream("stderr", f"{head}; it finished without an error.\n"), Finished(0)]
    if outcome.startswith("error:"):
        text = f"{head}; it ended with {outcome.removeprefix('error:')}."
        return [Error("RemoteExecutionError", text, [f"RemoteExecutionError: {text}"]), Finished(1)]
    return [
        Stream("stderr", f"{head}; whether it finished without an error is unknown.\n"),
        Finished(0),
    ]


def _stdout(parsed: ParsedExecution) -> str:
    return "".join(e.text for e in parsed.events if isinstance(e, Stream) and e.name == "stdout")


def _describe(events: Sequence[OutputEvent]) -> str:
    parts: list[str] = []
    for event in events:
        if isinstance(event, Error):
            parts.append(f"{event.ename}: {event.evalue}")
        elif isinstance(event, Stream):
            parts.append(event.text.rstrip())
    return "\n".join(p for p in parts if p) or "the ACA session could not be set up"


_SIGNATURE = TraitSignature(
    positional=(
        "pool_management_endpoint", "credential", "timeout", "work_dir", "functions",
        "functions_module", "suppress_result_output", "session_id",
    ),
    keyword=(),
    others={"pool_management_endpoint": None, "credential": None, "functions": (),
            "session_id": None},
)  # fmt: skip
_SIGNATURE.install(ACADynamicSessionsCodeExecutor)
