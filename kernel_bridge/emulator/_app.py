"""The emulator's ASGI application (starlette): the dynamic-sessions data plane.

Routes are matched on the end of the path, so any pool prefix works
(``/subscriptions/S/resourceGroups/R/sessionPools/P/code/execute`` and ``/code/execute``
alike). 2024-02-02-preview (what the public Python clients speak)::

    POST code/execute            GET files            POST files/upload
    GET  files/content/{name}

2024-10-02-preview and later (a subset)::

    POST executions              GET executions/{id}
    GET  session                 DELETE session

Test-only admin routes under ``/_emulator/`` (same token rules): ``GET stats``,
``POST faults`` (a JSON list of :class:`~kernel_bridge.emulator.Fault`),
``DELETE faults``, ``POST expire`` (expire every idle session now).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import io
import logging
import os
import re
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import quote, unquote

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ..errors import ConfigurationError, DroppedConnection
from ..events import Error, Event, Finished
from ..executors._host_files import (
    MAX_COMPONENT_BYTES,
    describe_name,
    list_regular_files,
    open_regular_file,
    write_file,
)
from ._auth import TokenChecker
from ._faults import Fault, FaultQueue
from ._results import fold_events
from ._sessions import EmulatedSession, PoolFull, SessionManager

__all__ = ["DroppedConnection", "EmulatorState", "create_app"]

_log = logging.getLogger(__name__)

V2024 = frozenset({"2024-02-02-preview", "2024-08-02-preview"})
V_EXECUTIONS = frozenset({"2024-10-02-preview", "2025-02-02-preview", "2025-10-02-preview"})
V_SESSION = frozenset({"2025-02-02-preview", "2025-10-02-preview"})
_KEPT_EXECUTIONS = 1000
"""Execution resources kept for ``GET executions/{id}`` (older ones answer 404)."""
DEFAULT_OUTPUT_STREAMS_MAX_LENGTH = 4096
"""``outputStreamsMaxLength`` when a 2025-10-02-preview request does not set it."""


def _cap_error(cap: float) -> Error:
    """The error of a synchronous execution stopped at the execution cap [INF: wording]."""
    text = (
        f"the execution exceeded the {cap:g} s limit of synchronous executions and was "
        "stopped; run it as an asynchronous execution (api-version 2024-10-02-preview or "
        "later) to go beyond it"
    )
    return Error("TimeoutError", text, [f"TimeoutError: {text}"])


_IDENTIFIER = re.compile(r"^[A-Za-z0-9_\-|&^%$#(){}\[\];<>]{4,128}$")
_FILENAME_FORBIDDEN = re.compile(r"[/\\\x00-\x1f]")
_LONG_FILENAME = re.compile(rb'filename="([^"]{256,})"')


@dataclass
class EmulatorState:
    """Everything the routes share: sessions, faults, token record, counters."""

    sessions: SessionManager
    tokens: TokenChecker
    faults: FaultQueue = field(default_factory=FaultQueue)
    execution_cap: float = 220.0
    async_execution_cap: float = 3600.0
    max_output_length: int = 1024 * 1024
    max_upload_bytes: int = 128 * 1024 * 1024
    success_status: int = 200
    executions: int = 0
    """Executions that actually ran (started running code)."""
    requests: int = 0
    _results: dict[str, dict[str, Any]] = field(default_factory=dict)
    _tasks: set[asyncio.Future[Any]] = field(default_factory=set)


def _now_iso(when: float | None = None) -> str:
    stamp = dt.datetime.fromtimestamp(time.time() if when is None else when, dt.UTC)
    return stamp.strftime("%Y-%m-%dT%H:%M:%S.%f") + "0Z"


def _azure_error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse(
        {"error": {"code": code, "message": message}},
        status_code=status,
        headers={"x-ms-error-code": code},
    )


def _valid_filename(name: str) -> bool:
    return bool(name) and name not in (".", "..") and not _FILENAME_FORBIDDEN.search(name)


def _filename_problem(name: str) -> str | None:
    """Why ``name`` cannot be a file of /mnt/data (None when it can), naming the file."""
    if "\x00" in name:
        return f"The file name {describe_name(name)} contains a NUL character; remove it."
    if len(name.encode("utf-8", "surrogateescape")) > MAX_COMPONENT_BYTES:
        return (
            f"The file name {describe_name(name)} is longer than {MAX_COMPONENT_BYTES} bytes; "
            "use a shorter name."
        )
    if not _valid_filename(name):
        return (
            f"The file name {describe_name(name)} is not valid: give a plain name without "
            "'/', '\\' or control characters."
        )
    return None


def _read_regular(directory: Path, name: str) -> bytes:
    """The bytes of the regular file ``directory/name`` (ConfigurationError otherwise)."""
    handle, _info = open_regular_file(directory, PurePosixPath(name))
    with handle:
        return handle.read()


def _normalise_filename(name: str) -> str:
    for prefix in ("/mnt/data/", "mnt/data/"):
        if name.startswith(prefix):
            return name[len(prefix) :]
    return name


class _Routes:
    """The request handlers, bound to one :class:`EmulatorState`."""

    def __init__(self, state: EmulatorState) -> None:
        self.state = state

    # -- dispatch ------------------------------------------------------------------

    async def dispatch(self, request: Request) -> Response:
        """Match the path's end against the known routes and run the handler."""
        raw = request.scope.get("raw_path") or request.url.path.encode()
        path = raw.decode("latin-1").split("?", 1)[0].rstrip("/")
        method = request.method
        if path.startswith("/_emulator/"):
            if not self.state.tokens.check(request.headers.get("authorization")):
                return Response(status_code=401)
            return await self._admin(request, path[len("/_emulator/") :])
        routes: list[tuple[str, str, str, Callable[..., Awaitable[Response]]]] = [
            ("POST", r"/code/execute", "execute", self.execute_2024),
            ("POST", r"/files/upload", "upload", self.upload),
            ("GET", r"/files/content/(?P<name>[^/]+)", "download", self.download),
            ("GET", r"/files", "list", self.list_files),
            ("POST", r"/executions", "execute", self.execute_new),
            ("GET", r"/executions/(?P<execution>[^/]+)", "poll", self.get_execution),
            ("GET", r"/session", "session", self.get_session),
            ("DELETE", r"/session", "session", self.delete_session),
        ]
        for route_method, pattern, operation, handler in routes:
            match = re.search(pattern + "$", path)
            if match is None:
                continue
            if route_method != method:
                continue
            args = {k: unquote(v) for k, v in match.groupdict().items()}
            return await self._guarded(request, operation, handler, args)
        return _azure_error(404, "NotFound", f"No route for {method} {request.url.path}.")

    async def _guarded(
        self,
        request: Request,
        operation: str,
        handler: Callable[..., Awaitable[Response]],
        args: dict[str, str],
    ) -> Response:
        self.state.requests += 1
        if not self.state.tokens.check(request.headers.get("authorization")):
            return Response(status_code=401)
        fault = self.state.faults.take(operation)
        if fault is not None and fault.delay:
            await asyncio.sleep(fault.delay)
        if fault is not None and not fault.after and (fault.status or fault.drop):
            return self._fault_response(fault)
        response = await handler(request, **args)
        if fault is not None and fault.after and (fault.status or fault.drop):
            return self._fault_response(fault)
        return response

    @staticmethod
    def _fault_response(fault: Fault) -> Response:
        if fault.drop:
            return _DropResponse()
        status = fault.status or 500
        headers = {}
        if fault.retry_after is not None:
            headers["Retry-After"] = f"{fault.retry_after:g}"
        if status == 401:
            return Response(status_code=401, headers=headers)
        response = _azure_error(status, "InjectedFault", f"Injected fault: HTTP {status}.")
        response.headers.update(headers)
        return response

    # -- validation helpers ----------------------------------------------------------

    def _check_query(self, request: Request, versions: frozenset[str]) -> Response | str:
        version = request.query_params.get("api-version")
        if not version:
            return _azure_error(
                400,
                "MissingApiVersionParameter",
                "The api-version query parameter (?api-version=) is required for all requests.",
            )
        if version not in versions:
            return _azure_error(
                400,
                "UnsupportedApiVersion",
                f"The api-version '{version}' "
                f"is not supported here; use one of {sorted(versions)}.",
            )
        identifier = request.query_params.get("identifier")
        if not identifier:
            return _azure_error(
                400, "MissingIdentifier", "The identifier query parameter is required."
            )
        if not _IDENTIFIER.match(identifier):
            return _azure_error(
                400,
                "InvalidIdentifier",
                "The session identifier must be 4 "
                "to 128 letters, digits or - _ | & ^ % $ # ( ) { } [ ] ; < >.",
            )
        return identifier

    async def _session(self, identifier: str) -> EmulatedSession | Response:
        try:
            return await self.state.sessions.get(identifier)
        except PoolFull:
            return _azure_error(
                404,
                "SessionPoolFull",
                "No session could be allocated: the "
                "session pool reached its maximum number of sessions.",
            )

    # -- execution -------------------------------------------------------------------

    async def _run(
        self, session: EmulatedSession, code: str, timeout: float, *, synchronous: bool = True
    ) -> dict[str, Any]:
        session.busy += 1
        started = time.monotonic()
        try:
            async with session.lock:
                self.state.executions += 1
                events: list[Event] = []
                try:
                    async for event in session.executor.execute(code, timeout=timeout):
                        if (
                            synchronous
                            and isinstance(event, Error)
                            and event.ename == "TimeoutError"
                            and timeout >= self.state.execution_cap
                        ):
                            event = _cap_error(self.state.execution_cap)
                        events.append(event)
                except Exception as exc:  # the runtime could not start
                    _log.warning("session runtime failed: %s", exc)
                    events += [Error(type(exc).__name__, str(exc), []), Finished(1)]
        finally:
            session.busy -= 1
            session.touch()
        folded = fold_events(events)
        folded["executionTimeInMilliseconds"] = int((time.monotonic() - started) * 1000)
        return folded

    def _timeout(self, body: dict[str, Any], cap: float | None = None) -> float | Response:
        # Over the cap the code is interrupted and the answer is status Failure with a
        # TimeoutError traceback [INF: the gateway's real answer to a timeout is unknown].
        cap = self.state.execution_cap if cap is None else cap
        requested = body.get("timeoutInSeconds")
        if requested is None:
            return cap
        if not isinstance(requested, int | float) or isinstance(requested, bool) or requested <= 0:
            return _azure_error(
                400, "InvalidTimeout", "timeoutInSeconds must be a positive number."
            )
        return float(min(requested, cap))

    @staticmethod
    async def _json(request: Request) -> dict[str, Any] | Response:
        try:
            body = await request.json()
        except ValueError:
            return _azure_error(400, "InvalidRequestBody", "The request body must be JSON.")
        if not isinstance(body, dict):
            return _azure_error(400, "InvalidRequestBody", "The request body must be an object.")
        return body

    def _headers(self, session: EmulatedSession, folded: dict[str, Any]) -> dict[str, str]:
        ms = str(folded.get("executionTimeInMilliseconds", 0))
        return {
            "operation-id": str(uuid.uuid4()),
            "x-ms-session-guid": session.guid,
            "x-ms-container-execution-duration": ms,
            "x-ms-execution-request-time": ms,
            "x-ms-overall-execution-time": ms,
        }

    async def execute_2024(self, request: Request) -> Response:
        """``POST code/execute`` (2024-02-02-preview): the ``properties`` envelope."""
        identifier = self._check_query(request, V2024)
        if isinstance(identifier, Response):
            return identifier
        body = await self._json(request)
        if isinstance(body, Response):
            return body
        props = body.get("properties")
        if not isinstance(props, dict):
            return _azure_error(
                400, "InvalidRequestBody", "The request body must have a `properties` object."
            )
        code = props.get("code")
        if not isinstance(code, str):
            return _azure_error(
                400, "InvalidRequestBody", "`Code` field is required in the request"
            )
        for key, allowed in (("codeInputType", "inline"), ("executionType", "synchronous")):
            value = props.get(key, allowed)
            if not isinstance(value, str) or value.lower() != allowed:
                return _azure_error(
                    400, "InvalidRequestBody", f"`{key}` must be '{allowed}' (got {value!r})."
                )
        timeout = self._timeout(props)
        if isinstance(timeout, Response):
            return timeout
        session = await self._session(identifier)
        if isinstance(session, Response):
            return session
        folded = await self._run(session, code, timeout)
        payload = {
            "$id": "1",
            "properties": {
                "$id": "2",
                "status": folded["status"],
                "stdout": folded["stdout"],
                "stderr": folded["stderr"],
                "result": folded["result"],
                "executionTimeInMilliseconds": folded["executionTimeInMilliseconds"],
            },
        }
        return JSONResponse(
            payload, status_code=self.state.success_status, headers=self._headers(session, folded)
        )

    def _output_cap(self, body: dict[str, Any], version: str | None) -> int | Response | None:
        # outputStreamsMaxLength exists from 2025-10-02-preview on (default 4096 there);
        # earlier versions' cap is undocumented, so they are not cut [INF].
        if version != "2025-10-02-preview":
            return None
        requested = body.get("outputStreamsMaxLength", DEFAULT_OUTPUT_STREAMS_MAX_LENGTH)
        if not isinstance(requested, int) or isinstance(requested, bool) or requested <= 0:
            return _azure_error(
                400, "InvalidRequestBody", "outputStreamsMaxLength must be a positive integer."
            )
        return min(requested, self.state.max_output_length)

    async def execute_new(self, request: Request) -> Response:
        """``POST executions`` (2024-10-02-preview and later): the execution resource.

        ``executionType: Synchronous`` (the default) runs the code within the request,
        capped at the execution cap like ``code/execute``; ``Asynchronous`` answers 202
        with ``status: Running`` and ``Operation-Location`` at once, runs the code in the
        background (up to ``timeoutInSeconds``, at most the asynchronous cap) and
        ``GET executions/{id}`` reports it.
        """
        identifier = self._check_query(request, V_EXECUTIONS)
        if isinstance(identifier, Response):
            return identifier
        body = await self._json(request)
        if isinstance(body, Response):
            return body
        code = body.get("code")
        if not isinstance(code, str):
            return _azure_error(
                400, "InvalidRequestBody", "`Code` field is required in the request"
            )
        kind = body.get("executionType", "Synchronous")
        if not isinstance(kind, str) or kind.lower() not in ("synchronous", "asynchronous"):
            return _azure_error(
                400,
                "InvalidRequestBody",
                f"`executionType` must be 'Synchronous' or 'Asynchronous' (got {kind!r}).",
            )
        asynchronous = kind.lower() == "asynchronous"
        version = request.query_params.get("api-version")
        cap = self._output_cap(body, version)
        if isinstance(cap, Response):
            return cap
        limit = self.state.async_execution_cap if asynchronous else self.state.execution_cap
        timeout = self._timeout(body, limit)
        if isinstance(timeout, Response):
            return timeout
        session = await self._session(identifier)
        if isinstance(session, Response):
            return session
        execution_id = str(uuid.uuid4())
        resource: dict[str, Any] = {
            "id": execution_id,
            "identifier": identifier,
            "executionType": "Asynchronous" if asynchronous else "Synchronous",
            "status": "Running",
            "result": None,
        }
        self.state._results[execution_id] = resource
        while len(self.state._results) > _KEPT_EXECUTIONS:  # oldest first (insertion order)
            self.state._results.pop(next(iter(self.state._results)))
        headers = {"operation-id": execution_id, "x-ms-session-guid": session.guid}
        if asynchronous:
            task = asyncio.ensure_future(
                self._finish(resource, session, code, timeout, cap, synchronous=False)
            )
            self.state._tasks.add(task)
            task.add_done_callback(self.state._tasks.discard)
            headers["Operation-Location"] = (
                f"{request.url.path.rstrip('/')}/{execution_id}?api-version={version}"
                f"&identifier={quote(identifier, safe='')}"
            )
            return JSONResponse(resource, status_code=202, headers=headers)
        folded = await self._finish(resource, session, code, timeout, cap, synchronous=True)
        headers.update(self._headers(session, folded))
        headers["operation-id"] = execution_id
        status = 202 if version == "2024-10-02-preview" else 200
        return JSONResponse(resource, status_code=status, headers=headers)

    async def _finish(
        self,
        resource: dict[str, Any],
        session: EmulatedSession,
        code: str,
        timeout: float,
        cap: int | None,
        *,
        synchronous: bool,
    ) -> dict[str, Any]:
        """Run the code and fill ``resource`` with its terminal status and result."""
        folded = await self._run(session, code, timeout, synchronous=synchronous)
        stdout, stderr = folded["stdout"], folded["stderr"]
        if cap is not None:  # each stream is cut, with no flag (aca-api.md §3)
            stdout, stderr = stdout[:cap], stderr[:cap]
        resource["status"] = "Succeeded" if folded["status"] == "Success" else "Failed"
        resource["result"] = {
            "stdout": stdout,
            "stderr": stderr,
            "executionResult": folded["result"],
            "executionTimeInMilliseconds": folded["executionTimeInMilliseconds"],
        }
        return folded

    async def get_execution(self, request: Request, execution: str) -> Response:
        """``GET executions/{id}``: the execution's resource (``Running`` or terminal)."""
        identifier = self._check_query(request, V_EXECUTIONS)
        if isinstance(identifier, Response):
            return identifier
        resource = self.state._results.get(execution)
        if resource is None or resource["identifier"] != identifier:
            return _azure_error(
                404, "ExecutionNotFound", f"No execution available for operation Id: {execution}"
            )
        return JSONResponse(resource)

    # -- sessions --------------------------------------------------------------------

    async def get_session(self, request: Request) -> Response:
        """``GET session`` (2025-02-02-preview): the session's times."""
        identifier = self._check_query(request, V_SESSION)
        if isinstance(identifier, Response):
            return identifier
        session = self.state.sessions.find(identifier)
        if session is None:
            return _azure_error(404, "SessionNotFound", "No such session.")
        session.touch()
        return JSONResponse(
            {
                "identifier": identifier,
                "createdAt": _now_iso(session.created_at),
                "lastAccessedAt": _now_iso(session.last_access),
                "expireAt": _now_iso(session.last_access + self.state.sessions.cooldown),
                "etag": session.guid,
            }
        )

    async def delete_session(self, request: Request) -> Response:
        """``DELETE session`` (2025-02-02-preview): destroy the session now (204)."""
        identifier = self._check_query(request, V_SESSION)
        if isinstance(identifier, Response):
            return identifier
        if not await self.state.sessions.delete(identifier):
            return _azure_error(404, "SessionNotFound", "No such session.")
        return Response(status_code=204)

    # -- files -----------------------------------------------------------------------

    @staticmethod
    def _file_entry(name: str, stat: os.stat_result, n: int) -> dict[str, Any]:
        return {
            "$id": str(n),
            "properties": {
                "$id": str(n + 1),
                "filename": name,
                "size": stat.st_size,
                "lastModifiedTime": _now_iso(stat.st_mtime),
            },
        }

    def _listing(self, files: list[tuple[str, os.stat_result]]) -> JSONResponse:
        return JSONResponse(
            {
                "$id": "1",
                "value": [
                    self._file_entry(name, info, 2 + 2 * i) for i, (name, info) in enumerate(files)
                ],
            }
        )

    async def list_files(self, request: Request) -> Response:
        """``GET files``: the files in the session's /mnt/data."""
        identifier = self._check_query(request, V2024)
        if isinstance(identifier, Response):
            return identifier
        session = await self._session(identifier)
        if isinstance(session, Response):
            return session
        # Session code may put links or FIFOs in /mnt/data: list regular files only.
        files = await asyncio.to_thread(list_regular_files, session.data_dir)
        return self._listing(files)

    async def download(self, request: Request, name: str) -> Response:
        """``GET files/content/{name}``: the file's bytes."""
        identifier = self._check_query(request, V2024)
        if isinstance(identifier, Response):
            return identifier
        name = _normalise_filename(name)
        problem = _filename_problem(name)
        if problem is not None:
            return _azure_error(400, "InvalidFileName", problem)
        session = await self._session(identifier)
        if isinstance(session, Response):
            return session
        try:
            # Opened without following links: session code (in a container) must not be
            # able to make the emulator serve a host file through a symlink.
            data = await asyncio.to_thread(_read_regular, session.data_dir, name)
        except ConfigurationError:
            return _azure_error(
                404, "FileNotFound", f"The file {describe_name(name)} does not exist."
            )
        return Response(data, media_type="application/octet-stream")

    async def upload(self, request: Request) -> Response:
        """``POST files/upload``: multipart part ``file`` written to /mnt/data."""
        identifier = self._check_query(request, V2024)
        if isinstance(identifier, Response):
            return identifier
        limit = self.state.max_upload_bytes
        length = request.headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > limit:
            return _azure_error(
                413, "RequestEntityTooLarge", f"The upload exceeds the {limit} byte limit."
            )
        chunks: list[bytes] = []
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                return _azure_error(
                    413, "RequestEntityTooLarge", f"The upload exceeds the {limit} byte limit."
                )
            chunks.append(chunk)
        request._body = b"".join(chunks)  # lets request.form() parse what was read
        request = _as_multipart(request)
        try:
            form = await request.form(max_files=100)
        except Exception:
            # The multipart parser refuses over-long part headers; say which name did it.
            long_name = _LONG_FILENAME.search(request._body)
            if long_name is not None:
                name = long_name.group(1).decode("utf-8", "replace")
                problem = _filename_problem(name)
                return _azure_error(400, "InvalidFileName", problem or "Invalid file name.")
            return _azure_error(
                400,
                "InvalidRequestBody",
                "The body must be multipart/form-data with a part named 'file'.",
            )
        uploads = [u for u in form.getlist("file") if not isinstance(u, str)]
        if not uploads:
            return _azure_error(
                400,
                "InvalidRequestBody",
                "The body must be multipart/form-data with a part named 'file'.",
            )
        session = await self._session(identifier)
        if isinstance(session, Response):
            return session
        written = []
        for upload in uploads:
            name = _normalise_filename(upload.filename or "")
            problem = _filename_problem(name)
            if problem is not None:
                return _azure_error(400, "InvalidFileName", problem)
            data = await upload.read()
            # Replaces a link session code put at the name instead of writing through it.
            target = await asyncio.to_thread(
                write_file, session.data_dir, PurePosixPath(name), io.BytesIO(data)
            )
            written.append((name, os.lstat(target)))
        session.touch()
        return self._listing(written)

    # -- admin -----------------------------------------------------------------------

    async def _admin(self, request: Request, what: str) -> Response:
        state = self.state
        if what == "stats" and request.method == "GET":
            return JSONResponse(stats(state))
        if what == "faults" and request.method == "POST":
            try:
                body = await request.json()
                items = body if isinstance(body, list) else [body]
                faults = [Fault.from_json(item) for item in items]
            except (ValueError, TypeError) as exc:
                return _azure_error(400, "InvalidFault", str(exc))
            state.faults.add(*faults)
            return JSONResponse({"queued": len(state.faults.pending())})
        if what == "faults" and request.method == "DELETE":
            state.faults.clear()
            return Response(status_code=204)
        if what == "expire" and request.method == "POST":
            state.sessions.cooldown, saved = 0.0, state.sessions.cooldown
            try:
                await state.sessions.reap()
            finally:
                state.sessions.cooldown = saved
            return Response(status_code=204)
        return _azure_error(404, "NotFound", f"Unknown admin route {what!r}.")


def stats(state: EmulatorState) -> dict[str, Any]:
    """The counters tests read: executions, sessions, and token uses (fingerprints)."""
    return {
        "executions": state.executions,
        "requests": state.requests,
        "sessions_created": state.sessions.created,
        "sessions_expired": state.sessions.expired,
        "live_sessions": len(state.sessions.live()),
        "faults_pending": len(state.faults.pending()),
        "tokens": [
            {
                "fingerprint": use.fingerprint,
                "expires_at": use.expires_at,
                "used_at": use.used_at,
                "accepted": use.accepted,
                "reason": use.reason,
            }
            for use in state.tokens.snapshot()
        ],
    }


_BOUNDARY_LINE = re.compile(rb"^--([!-~]{1,70})\r\n")


def _as_multipart(request: Request) -> Request:
    """``request`` labelled multipart when its body is multipart but its header says not.

    Semantic Kernel's sessions plugin sets ``Content-Type: application/json`` on its shared
    client after a code execution, so its uploads carry a multipart body under a JSON
    label; the service accepts them [INF: SK's documented upload flow works against it].
    The boundary is read from the body's first line.
    """
    content_type = request.headers.get("content-type", "")
    if content_type.lower().startswith("multipart/"):
        return request
    match = _BOUNDARY_LINE.match(request._body)
    if match is None:
        return request
    boundary = match.group(1)
    scope = dict(request.scope)
    scope["headers"] = [
        (key, value) for key, value in request.scope["headers"] if key.lower() != b"content-type"
    ] + [(b"content-type", b"multipart/form-data; boundary=" + boundary)]
    relabelled = Request(scope, request.receive)
    relabelled._body = request._body
    return relabelled


class _DropResponse(Response):
    """Sends the response headers, then makes the server drop the connection."""

    def __init__(self) -> None:
        super().__init__(status_code=200, headers={"content-length": "1000"})

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-length", b"1000")],
            }
        )
        raise DroppedConnection("emulator fault: connection dropped on purpose")


def create_app(state: EmulatorState) -> Starlette:
    """Build the ASGI app serving ``state``'s pool; the reaper runs while it is served."""
    routes = _Routes(state)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        reaper = asyncio.ensure_future(state.sessions.reaper())
        try:
            yield
        finally:
            reaper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reaper
            for task in list(state._tasks):  # asynchronous executions still running
                task.cancel()
            await state.sessions.close()

    return Starlette(
        routes=[Route("/{path:path}", routes.dispatch, methods=["GET", "POST", "DELETE", "PUT"])],
        lifespan=lifespan,
    )
