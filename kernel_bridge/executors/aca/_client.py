"""HTTP client of the ACA dynamic sessions data plane.

Code runs through ``POST code/execute`` on ``2024-02-02-preview`` (what the public Python
clients speak), or through the ``executions`` resource on ``2024-10-02-preview`` and later
(:data:`EXECUTIONS_VERSIONS`: synchronous, or asynchronous and polled with
``GET executions/{id}``). Files always use the 2024-02-02-preview routes, which every
version's pools serve [INF]. ``GET session`` and ``DELETE session`` come with
``2025-02-02-preview``.

One :class:`ACAClient` per executor keeps one ``httpx.AsyncClient`` open, so connections
are reused; where no proxy is configured its transport is ``_transport.LeanTransport``
(HTTP/1.1 keep-alive on asyncio, TLS verified as httpx would). It builds URLs with
every part percent-encoded, adds the bearer token from a
:class:`~kernel_bridge.executors.aca._credentials.TokenCache`, and handles faults:

- a connection that could not be opened: retried (nothing was sent);
- for requests that are safe to repeat (reads, uploads, and code executions the session
  runs at most once, see ``_once``): 401 refreshes the token once and re-sends; 429
  and 503 are retried honouring ``Retry-After``; other 5xx and a connection lost after
  sending are retried with backoff;
- a code execution that is not safe to repeat is **never** sent again once it may have
  arrived, whatever the answer: a 429 or 503 can come from a gateway after the session
  ran the code [INF], so the status alone does not prove that it did not run;
- a timeout is never retried for a code execution (it may still be running);
- any other status: :class:`~kernel_bridge.errors.RemoteServiceError` naming the status and
  what to check (403: the Session Executor role; 404 for a new session: pool full).

Session identifiers are secrets (anyone with a token and the identifier reaches the
session): they never appear in logs or messages except as :func:`redact` shows them.
"""

from __future__ import annotations

import asyncio
import datetime
import email.utils
import json
import logging
import random
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import SplitResult, quote, urlencode, urlsplit

import httpx

from ...errors import (
    CodeMayHaveRunError,
    ConfigurationValueError,
    RemoteServiceError,
    ServiceThrottledError,
    ServiceTimeoutError,
    SessionPoolFullError,
)
from ._credentials import TokenCache
from ._transport import LeanTransport, lean_transport_applies

__all__ = [
    "API_VERSIONS",
    "AUTO",
    "DEFAULT_API_VERSION",
    "EXECUTIONS_VERSIONS",
    "EXECUTION_CAP_SECONDS",
    "SESSION_API_VERSION",
    "SESSION_VERSIONS",
    "ACAClient",
    "RetryPolicy",
    "build_url",
    "redact",
    "session_ttl",
]

DEFAULT_API_VERSION = "2024-02-02-preview"
"""The api-version every public Python client speaks for code execution."""
SESSION_API_VERSION = "2025-02-02-preview"
"""The first api-version with ``DELETE session`` (used best-effort on restart and stop)."""
EXECUTIONS_VERSIONS = ("2024-10-02-preview", "2025-02-02-preview", "2025-10-02-preview")
"""Versions with the ``executions`` resource (asynchronous executions), oldest first."""
SESSION_VERSIONS = ("2025-02-02-preview", "2025-10-02-preview")
"""Versions with ``GET session`` (etag, expireAt) and ``DELETE session``."""
OUTPUT_CAP_VERSIONS = ("2025-10-02-preview",)
"""Versions whose executions take ``outputStreamsMaxLength``."""
AUTO = "auto"
API_VERSIONS = (DEFAULT_API_VERSION, *EXECUTIONS_VERSIONS, AUTO)
"""The values the ``api_version`` option accepts."""
TERMINAL_STATES = frozenset({"succeeded", "failed", "canceled", "cancelled"})
EXECUTION_CAP_SECONDS = 220
"""The service's limit for one execution; HTTP timeouts are set above it."""
_DEFAULT_HTTP_TIMEOUT = 240.0
_USER_AGENT = "kernel-bridge (Language=Python)"

_log = logging.getLogger(__name__)
_IDENTIFIER_IN_URL = re.compile(r"(identifier=)[^&\s\"']+")


def redact(identifier: str) -> str:
    """Return a session identifier shortened for logs and messages (``abcd…``)."""
    return identifier[:4] + "…" if len(identifier) > 4 else "…"


class _RedactIdentifiers(logging.Filter):
    """Removes session identifiers from httpx's request log lines (``identifier=…``)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.args:
            record.msg = _IDENTIFIER_IN_URL.sub(r"\1<redacted>", record.getMessage())
            record.args = None
        elif isinstance(record.msg, str):
            record.msg = _IDENTIFIER_IN_URL.sub(r"\1<redacted>", record.msg)
        return True


_HTTP_LOGGERS = (
    "httpx",
    "httpcore",
    "httpcore.connection",
    "httpcore.http11",
    "httpcore.http2",
    "httpcore.proxy",
    "httpcore.socks",
)


def _install_log_filter() -> None:
    # A logger's filters see only its own records, so httpcore's child loggers (which log
    # response headers such as Operation-Location, carrying the identifier) get one each.
    for name in _HTTP_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, _RedactIdentifiers) for f in logger.filters):
            logger.addFilter(_RedactIdentifiers())


def build_url(
    endpoint: str,
    path: str,
    query: Mapping[str, str],
    path_args: tuple[str, ...] = (),
) -> str:
    """Join ``endpoint``, ``path`` and percent-encoded ``path_args`` and ``query``.

    ``build_url(ep, "files/content", {...}, ("a b.txt",))`` gives
    ``ep/files/content/a%20b.txt?api-version=...&identifier=...``. The endpoint's own
    path (``/subscriptions/.../sessionPools/<pool>``) is kept: joining never uses an
    RFC 3986 resolver, which would drop it.
    """
    base = endpoint.rstrip("/")
    parts = [path.strip("/")] if path else []
    parts += [quote(arg, safe="") for arg in path_args]
    url = base + "/" + "/".join(parts)
    return url + "?" + urlencode(dict(query), quote_via=quote, safe="")


_URL_CACHE_SIZE = 64
"""Parsed request URLs kept per client (a few per session identifier)."""


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how long to retry refused requests (429/503, connect failures)."""

    max_retries: int = 4
    """Retries after the first attempt."""
    base_delay: float = 0.5
    """First backoff delay in seconds (doubled on each retry, with jitter)."""
    max_delay: float = 30.0
    """Longest single wait, also the cap on a ``Retry-After`` value."""

    def backoff(self, attempt: int) -> float:
        """Delay before retry number ``attempt`` (1-based) when no Retry-After was given."""
        delay: float = min(self.max_delay, self.base_delay * 2 ** (attempt - 1))
        return delay * (0.75 + random.random() / 2)


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _endpoint_parts(endpoint: str) -> SplitResult:
    """Split a pool endpoint, refusing anything httpx could not send a request to.

    Raises :class:`ConfigurationValueError` (a ``ValueError`` too, as AutoGen's API has
    it) naming the problem, so a typo is a configuration error, not a crash at first use.
    """
    example = (
        "https://<region>.dynamicsessions.io/subscriptions/<sub>/resourceGroups/<rg>"
        "/sessionPools/<pool> (copy it from the session pool's overview page)"
    )
    try:
        parts = urlsplit(endpoint)
        parts.port  # noqa: B018 - raises ValueError for a port that is not 0-65535
        httpx.URL(endpoint)
    except (ValueError, httpx.InvalidURL) as exc:
        raise ConfigurationValueError(
            f"pool_management_endpoint is not a valid URL ({exc}); it looks like {example}."
        ) from None
    if parts.scheme not in ("http", "https") or not parts.netloc or " " in endpoint:
        raise ConfigurationValueError(
            f"pool_management_endpoint must be an http(s) URL such as {example}."
        )
    return parts


class _SetCookiesOnly(httpx.Cookies):
    """A cookie jar that skips the standard library's cookie parsing (a urllib request
    built per response) when the response sets no cookie, as ACA's answers do."""

    def extract_cookies(self, response: httpx.Response) -> None:
        """Store the response's cookies (httpx calls this for every response)."""
        if "set-cookie" in response.headers or "set-cookie2" in response.headers:
            super().extract_cookies(response)


class _HTTPClient(httpx.AsyncClient):
    """``httpx.AsyncClient`` whose cookie jar is a :class:`_SetCookiesOnly`."""

    @property
    def cookies(self) -> httpx.Cookies:
        """The client's cookies (httpx reads this on every request and response)."""
        jar: httpx.Cookies = self.__dict__.setdefault("_kb_cookies", _SetCookiesOnly())
        return jar

    @cookies.setter
    def cookies(self, cookies: Any) -> None:
        self.__dict__["_kb_cookies"] = _SetCookiesOnly(cookies)


class ACAClient:
    """Speaks to one session pool; one instance per executor, closed by :meth:`aclose`.

    ``endpoint`` is the pool management endpoint
    (``https://<region>.dynamicsessions.io/subscriptions/.../sessionPools/<pool>``).
    """

    def __init__(
        self,
        endpoint: str,
        tokens: TokenCache,
        *,
        api_version: str = DEFAULT_API_VERSION,
        http_timeout: float = _DEFAULT_HTTP_TIMEOUT,
        retry: RetryPolicy | None = None,
    ) -> None:
        parts = _endpoint_parts(endpoint)
        if parts.query:
            raise ConfigurationValueError(
                "pool_management_endpoint must not contain a query string ('?...')."
            )
        if api_version not in API_VERSIONS:
            raise ConfigurationValueError(
                f"api_version {api_version!r} is not supported: use one of "
                + ", ".join(API_VERSIONS)
                + f" ({DEFAULT_API_VERSION} is what the public clients speak; see docs/aca.md)."
            )
        self.endpoint = endpoint.rstrip("/")
        self.api_version = api_version
        self.tokens = tokens
        self.retry = retry or RetryPolicy()
        self.http_timeout = http_timeout
        self._host = parts.netloc
        self._http: httpx.AsyncClient | None = None
        self._urls: dict[tuple[str, str, str, tuple[str, ...]], httpx.URL] = {}
        _install_log_filter()

    # -- public operations -------------------------------------------------------------

    async def execute(
        self,
        identifier: str,
        code: str,
        *,
        timeout_seconds: int | None = None,
        new_session: bool = False,
        wait: float | None = None,
        replay_safe: bool = False,
        faults: list[str] | None = None,
        output_max_length: int | None = None,
    ) -> dict[str, Any]:
        """POST ``code/execute`` and return the response's ``properties``.

        ``new_session`` says that no request has succeeded on this identifier yet (a 404
        then means the pool is full). ``wait`` is the HTTP read timeout (default above
        the service's 220 s cap). ``replay_safe`` says that running ``code`` twice is
        harmless (idempotent, or tagged so that the session runs it at most once); only
        then is it sent again after a fault that may have come after it ran. Each fault
        that led to a re-send is appended to ``faults`` (e.g. ``"HTTP 503"``).
        ``output_max_length``: as for :meth:`start_execution` (versions with executions).
        """
        if self.uses_executions:
            return await self.start_execution(
                identifier,
                code,
                timeout_seconds=timeout_seconds,
                new_session=new_session,
                wait=wait,
                replay_safe=replay_safe,
                faults=faults,
                asynchronous=False,
                output_max_length=output_max_length,
            )
        body: dict[str, Any] = {
            "properties": {
                "codeInputType": "inline",
                "executionType": "synchronous",
                "code": code,
            }
        }
        if timeout_seconds is not None:
            body["properties"]["timeoutInSeconds"] = timeout_seconds
        response = await self._send(
            "POST",
            "code/execute",
            identifier,
            json_body=body,
            replayable=replay_safe,
            retry_timeouts=False,
            operation="code execution",
            carries_code=True,
            new_session=new_session,
            read_timeout=wait,
            faults=faults,
        )
        try:
            payload = response.json()
        except ValueError as exc:
            raise RemoteServiceError(
                f"The ACA service answered the code execution with HTTP "
                f"{response.status_code} but not with JSON; check pool_management_endpoint.",
                status=response.status_code,
            ) from exc
        properties = payload.get("properties") if isinstance(payload, dict) else None
        if not isinstance(properties, dict):
            raise RemoteServiceError(
                "The ACA service's answer to the code execution has no `properties` object; "
                "check that pool_management_endpoint is a Python code-interpreter pool.",
                status=response.status_code,
            )
        return properties

    @property
    def uses_executions(self) -> bool:
        """True when code runs through the ``executions`` resource (2024-10-02-preview+)."""
        return self.api_version in EXECUTIONS_VERSIONS

    @property
    def has_session_resource(self) -> bool:
        """True when ``GET session`` (etag, expireAt) exists in the version spoken."""
        return self.api_version in SESSION_VERSIONS

    async def start_execution(
        self,
        identifier: str,
        code: str,
        *,
        timeout_seconds: int | None = None,
        new_session: bool = False,
        wait: float | None = None,
        replay_safe: bool = False,
        faults: list[str] | None = None,
        asynchronous: bool = True,
        output_max_length: int | None = None,
    ) -> dict[str, Any]:
        """``POST executions``; return the execution resource (``status`` Running or terminal).

        Asynchronous executions answer at once (poll them with :meth:`get_execution`);
        synchronous ones answer when done, within the service's synchronous limit.
        ``output_max_length`` is sent as ``outputStreamsMaxLength`` where the version has
        it. Re-sending follows the rules of :meth:`execute`.
        """
        body: dict[str, Any] = {
            "codeInputType": "Inline",
            "executionType": "Asynchronous" if asynchronous else "Synchronous",
            "code": code,
            "timeoutInSeconds": timeout_seconds or EXECUTION_CAP_SECONDS,
        }
        if output_max_length is not None and self.api_version in OUTPUT_CAP_VERSIONS:
            body["outputStreamsMaxLength"] = output_max_length
        response = await self._send(
            "POST",
            "executions",
            identifier,
            json_body=body,
            replayable=replay_safe,
            retry_timeouts=False,
            operation="code execution",
            carries_code=True,
            new_session=new_session,
            read_timeout=wait,
            faults=faults,
        )
        return _execution_resource(response)

    async def get_execution(self, identifier: str, execution_id: str) -> dict[str, Any]:
        """``GET executions/{id}``: the execution resource (a read: retried freely)."""
        response = await self._send(
            "GET",
            "executions",
            identifier,
            path_args=(execution_id,),
            replayable=True,
            operation="execution status",
            read_timeout=30.0,
        )
        return _execution_resource(response)

    async def get_session(self, identifier: str) -> dict[str, Any] | None:
        """``GET session`` (2025-02-02-preview+): identifier, etag, expireAt...; None on 404."""
        response = await self._send(
            "GET",
            "session",
            identifier,
            replayable=True,
            operation="session lookup",
            raise_for_status=False,
            read_timeout=30.0,
        )
        if response.status_code == 404:
            return None
        if not response.is_success:
            raise self._error(response, "session lookup", False, False, True, 0)
        try:
            payload = response.json()
        except ValueError:
            return None
        return payload if isinstance(payload, dict) else None

    async def resolve_version(self, identifier: str) -> str:
        """For ``api_version='auto'``: probe once, settle on a version and return it.

        The probe is ``GET executions/<random id>`` with the newest version: a 404 whose
        error code names the execution means the pool knows the ``executions`` resource
        (that version is kept); any other answer falls back to 2024-02-02-preview [INF:
        based on the spec and the emulator; the service's answers to unknown versions
        are not documented].
        """
        if self.api_version != AUTO:
            return self.api_version
        newest = EXECUTIONS_VERSIONS[-1]
        chosen = DEFAULT_API_VERSION
        try:
            response = await self._send(
                "GET",
                "executions",
                identifier,
                path_args=(f"kb-probe-{random.getrandbits(64):016x}",),
                replayable=True,
                operation="api-version probe",
                api_version=newest,
                raise_for_status=False,
                read_timeout=15.0,
                retries=1,
            )
        except RemoteServiceError as exc:
            _log.info("ACA api-version probe failed (%s); using %s", exc, chosen)
        else:
            code = response.headers.get("x-ms-error-code", "") or _error_detail(response)
            if response.status_code == 404 and "execution" in code.lower():
                chosen = newest
        _log.info("ACA api_version=auto: using %s", chosen)
        self.api_version = chosen
        return chosen

    async def upload(self, identifier: str, name: str, data: bytes) -> None:
        """POST ``files/upload`` with one multipart part ``file`` named ``name``."""
        await self._send(
            "POST",
            "files/upload",
            identifier,
            files={"file": (name, data, "application/octet-stream")},
            replayable=True,
            operation=f"upload of {name!r}",
            api_version=DEFAULT_API_VERSION,
        )

    async def list_files(self, identifier: str) -> list[dict[str, Any]]:
        """GET ``files`` and return each entry's ``properties`` (filename, size, ...)."""
        response = await self._send(
            "GET",
            "files",
            identifier,
            replayable=True,
            operation="file listing",
            api_version=DEFAULT_API_VERSION,
        )
        try:
            payload = response.json()
        except ValueError as exc:
            raise RemoteServiceError(
                "The ACA service's file listing is not JSON.", status=response.status_code
            ) from exc
        entries = payload.get("value", []) if isinstance(payload, dict) else []
        if isinstance(entries, dict):  # the "$values" wrapper seen in 2024
            entries = entries.get("$values", [])
        result: list[dict[str, Any]] = []
        for entry in entries if isinstance(entries, list) else []:
            if isinstance(entry, dict):
                props = entry.get("properties", entry)
                if isinstance(props, dict):
                    result.append(props)
        return result

    async def download(self, identifier: str, name: str) -> bytes:
        """GET ``files/content/{name}`` and return the bytes."""
        response = await self._send(
            "GET",
            "files/content",
            identifier,
            path_args=(name,),
            replayable=True,
            operation=f"download of {name!r}",
            api_version=DEFAULT_API_VERSION,
        )
        return response.content

    async def delete_session(self, identifier: str) -> bool:
        """Best effort ``DELETE session`` (api-version 2025-02-02-preview); True if deleted.

        Called on restart and stop. Pools or gateways that do not know the route answer
        4xx; that is not an error (the session then expires after the pool's cooldown).
        """
        try:
            response = await self._send(
                "DELETE",
                "session",
                identifier,
                replayable=True,
                operation="session deletion",
                api_version=(
                    self.api_version if self.has_session_resource else SESSION_API_VERSION
                ),
                raise_for_status=False,
                read_timeout=5.0,
                retries=0,
            )
        except RemoteServiceError as exc:
            _log.debug("could not delete ACA session %s: %s", redact(identifier), exc)
            return False
        ok = response.is_success
        _log.debug("DELETE session %s -> HTTP %d", redact(identifier), response.status_code)
        return ok

    async def aclose(self) -> None:
        """Close the HTTP connections (called by the executor's stop)."""
        if self._http is not None:
            http, self._http = self._http, None
            await http.aclose()

    # -- machinery ---------------------------------------------------------------------

    def _url(
        self, path: str, identifier: str, api_version: str, path_args: tuple[str, ...]
    ) -> httpx.URL:
        """The request URL, parsed once: httpx's URL parser costs a cell ~0.1 ms each time."""
        key = (path, identifier, api_version, path_args)
        url = self._urls.get(key)
        if url is None:
            if len(self._urls) >= _URL_CACHE_SIZE:
                self._urls.clear()
            query = {"api-version": api_version, "identifier": identifier}
            url = self._urls[key] = httpx.URL(build_url(self.endpoint, path, query, path_args))
        return url

    def _client(self) -> httpx.AsyncClient:
        if self._http is None:
            transport: httpx.AsyncBaseTransport | None = None
            if lean_transport_applies():
                # The context httpx's default transport would build (certifi, or
                # SSL_CERT_FILE / SSL_CERT_DIR), shared by the fallback for uploads.
                context = httpx.create_ssl_context()
                context.set_alpn_protocols(["http/1.1"])
                transport = LeanTransport(context, httpx.AsyncHTTPTransport(verify=context))
            self._http = _HTTPClient(
                timeout=httpx.Timeout(self.http_timeout, connect=15.0),
                headers={"User-Agent": _USER_AGENT},
                follow_redirects=False,
                transport=transport,
            )
        return self._http

    async def _send(
        self,
        method: str,
        path: str,
        identifier: str,
        *,
        operation: str,
        replayable: bool,
        carries_code: bool = False,
        path_args: tuple[str, ...] = (),
        json_body: Any = None,
        files: Any = None,
        new_session: bool = False,
        api_version: str | None = None,
        raise_for_status: bool = True,
        read_timeout: float | None = None,
        retries: int | None = None,
        retry_timeouts: bool = True,
        faults: list[str] | None = None,
    ) -> httpx.Response:
        url = self._url(path, identifier, api_version or self.api_version, path_args)
        content: bytes | None = None
        headers = {"Authorization": ""}
        if json_body is not None:  # encoded once for every attempt, as httpx's json= would
            content = json.dumps(
                json_body, ensure_ascii=False, separators=(",", ":"), allow_nan=False
            ).encode()
            headers["Content-Type"] = "application/json"
        max_retries = self.retry.max_retries if retries is None else retries
        timeout = httpx.Timeout(read_timeout or self.http_timeout, connect=15.0)
        attempt = 0
        refreshed = False
        while True:
            token = await self.tokens.get()
            headers["Authorization"] = f"Bearer {token}"
            try:
                response = await self._client().request(
                    method,
                    url,
                    headers=headers,
                    content=content,
                    files=files,
                    timeout=timeout,
                )
            except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
                # Nothing was sent: safe to try again for any request.
                if attempt < max_retries:
                    attempt += 1
                    delay = self.retry.backoff(attempt)
                    _log.info(
                        "ACA %s: could not connect (%s); retry %d/%d in %.1f s",
                        operation,
                        type(exc).__name__,
                        attempt,
                        max_retries,
                        delay,
                    )
                    await asyncio.sleep(delay)
                    continue
                raise RemoteServiceError(
                    f"Could not connect to the ACA session pool at {self._host} for the "
                    f"{operation} ({type(exc).__name__}); check pool_management_endpoint "
                    "and the network.",
                    status=0,
                ) from exc
            except httpx.TimeoutException as exc:
                if replayable and retry_timeouts and attempt < max_retries:
                    attempt += 1
                    await asyncio.sleep(self.retry.backoff(attempt))
                    continue
                raise (CodeMayHaveRunError if carries_code else ServiceTimeoutError)(
                    f"The ACA service did not answer the {operation} within "
                    f"{timeout.read:.0f} s. "
                    + (
                        "Try again later."
                        if retry_timeouts
                        else "The code may still be running in the session; it was not "
                        "sent again, so nothing runs twice."
                    ),
                    status=0,
                ) from exc
            except httpx.TransportError as exc:
                if replayable and attempt < max_retries:
                    attempt += 1
                    _note(faults, f"connection lost ({type(exc).__name__})")
                    await asyncio.sleep(self.retry.backoff(attempt))
                    continue
                raise (CodeMayHaveRunError if carries_code else RemoteServiceError)(
                    f"The connection to the ACA service was lost during the {operation} "
                    f"({type(exc).__name__}). "
                    + _unknown_outcome(carries_code, replayable, attempt),
                    status=0,
                ) from exc
            except httpx.HTTPError as exc:  # e.g. a malformed answer
                raise RemoteServiceError(
                    f"The ACA service's answer to the {operation} could not be read "
                    f"({type(exc).__name__}); check pool_management_endpoint.",
                    status=0,
                ) from exc
            status = response.status_code
            _log.debug("ACA %s -> HTTP %d", operation, status)
            if status == 401 and not refreshed:
                refreshed = True
                _log.info("ACA %s: token rejected (401); refreshing it once", operation)
                await self.tokens.refresh(rejected=token)
                if replayable:
                    _note(faults, "HTTP 401")
                    continue
            if status in (429, 503) and replayable and attempt < max_retries:
                attempt += 1
                _note(faults, f"HTTP {status}")
                hinted = _retry_after(response)
                delay = (
                    min(hinted, self.retry.max_delay)
                    if hinted is not None
                    else self.retry.backoff(attempt)
                )
                _log.info(
                    "ACA %s: HTTP %d; retry %d/%d in %.1f s",
                    operation,
                    status,
                    attempt,
                    max_retries,
                    delay,
                )
                await asyncio.sleep(delay)
                continue
            if status >= 500 and replayable and attempt < max_retries:
                attempt += 1
                _note(faults, f"HTTP {status}")
                await asyncio.sleep(self.retry.backoff(attempt))
                continue
            if response.is_success or not raise_for_status:
                return response
            raise self._error(response, operation, carries_code, new_session, replayable, attempt)

    def _error(
        self,
        response: httpx.Response,
        operation: str,
        carries_code: bool,
        new_session: bool,
        replayable: bool,
        attempt: int,
    ) -> RemoteServiceError:
        """The exception for an error answer: its type says what it means for the caller
        (pool full, throttled, code that may have run), its message what to do."""
        status = response.status_code
        where = f"The ACA session pool at {self._host} answered the {operation} with HTTP {status}"
        detail = _error_detail(response)
        outcome = _unknown_outcome(carries_code, replayable, attempt)
        kind: type[RemoteServiceError] = RemoteServiceError
        if status == 401 and carries_code and not replayable:
            hint = (
                "the access token was rejected; it was refreshed for the next request. " + outcome
            )
            kind = CodeMayHaveRunError
        elif status == 401:
            hint = (
                "the access token was rejected even after a refresh: check that the "
                "credential is for the right tenant and that the token's audience is "
                "https://dynamicsessions.io (a static KERNEL_BRIDGE_ACA_TOKEN may have "
                "expired)."
            )
            if carries_code:
                hint += " " + outcome
                kind = CodeMayHaveRunError
        elif status == 403:
            hint = (
                "the identity is not allowed to use this pool: assign it the "
                "'Azure ContainerApps Session Executor' role on the session pool "
                "(role assignments can take a few minutes to apply)."
            )
        elif status == 404 and new_session and carries_code:
            hint = (
                "no new session could be allocated: the session pool is full (it reached "
                "maxConcurrentSessions). Wait for idle sessions to expire, stop other "
                "kernels, or raise the pool's maxConcurrentSessions."
            )
            kind = SessionPoolFullError
        elif status == 404:
            hint = (
                "not found: check pool_management_endpoint (it ends with "
                "/sessionPools/<pool>), or the file name."
            )
        elif status == 413:
            hint = "the request is too large (the service accepts files up to 128 MB)."
        elif status == 400:
            hint = "the service rejected the request as invalid."
        elif status in (429, 503) and replayable:
            hint = "the service is throttling requests and kept doing so; try again later."
            kind = ServiceThrottledError
            if carries_code:
                hint += " " + outcome
                kind = CodeMayHaveRunError
        elif status == 429 or status >= 500:
            throttled = status == 429
            hint = (
                "the service is throttling requests. " if throttled else "the service failed. "
            ) + (outcome if carries_code else "Try again later.")
            if carries_code:
                kind = CodeMayHaveRunError
            elif throttled:
                kind = ServiceThrottledError
        else:
            hint = "an unexpected answer."
        message = f"{where}: {hint}"
        if detail:
            message += f" Service said: {detail}"
        return kind(message, status=status)


_FRACTION = re.compile(r"(\.\d{6})\d+")


def _parse_time(value: Any) -> float | None:
    if not isinstance(value, str) or not value:
        return None
    text = _FRACTION.sub(r"\1", value.strip()).replace("Z", "+00:00")
    try:
        return datetime.datetime.fromisoformat(text).timestamp()
    except ValueError:
        return None


def session_ttl(info: dict[str, Any]) -> float | None:
    """A session's idle time to live from ``GET session``: ``expireAt - lastAccessedAt``."""
    expire, last = _parse_time(info.get("expireAt")), _parse_time(info.get("lastAccessedAt"))
    if expire is None or last is None or expire <= last:
        return None
    return expire - last


def _execution_resource(response: httpx.Response) -> dict[str, Any]:
    """The JSON execution resource of an ``executions`` answer, checked."""
    try:
        payload = response.json()
    except ValueError as exc:
        raise RemoteServiceError(
            f"The ACA service answered the execution with HTTP {response.status_code} but "
            "not with JSON; check pool_management_endpoint.",
            status=response.status_code,
        ) from exc
    if not isinstance(payload, dict) or not payload.get("status"):
        raise RemoteServiceError(
            "The ACA service's execution resource has no `status`; check that "
            "pool_management_endpoint is a Python code-interpreter pool and the api_version.",
            status=response.status_code,
        )
    return payload


def _note(faults: list[str] | None, what: str) -> None:
    if faults is not None:
        faults.append(what)


def _unknown_outcome(carries_code: bool, replayable: bool, attempt: int) -> str:
    """What a failed request means for the code it carried (said in every such error)."""
    if not carries_code:
        return "Check the network and try again."
    if replayable:
        return (
            f"The code may or may not have run; it was sent {attempt + 1} times and the "
            "session runs it at most once. Check the session's state before running the "
            "cell again."
        )
    return (
        "The code may or may not have run; it was not sent again so that nothing runs "
        "twice (this cell cannot carry the run-once check). Check the session's state "
        "before running the cell again."
    )


def _error_detail(response: httpx.Response) -> str:
    """A short, secret-free excerpt of an error body (Azure.Core error or plain text)."""
    text = ""
    try:
        payload = response.json()
    except ValueError:
        text = response.text
    else:
        if isinstance(payload, dict):
            error = payload.get("error")
            if isinstance(error, dict):
                text = f"{error.get('code', '')}: {error.get('message', '')}".strip(": ")
            else:
                text = str(payload.get("message", ""))
        elif isinstance(payload, str):
            text = payload
    text = " ".join(text.split())
    text = re.sub(r"[0-9a-fA-F-]{16,}", "<redacted>", text)  # never echo identifiers
    return text[:300]
