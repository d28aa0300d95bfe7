"""A lean HTTP/1.1 transport for the ACA client: keep-alive connections on asyncio directly.

httpx's default transport (httpcore, h11, anyio) costs a cell a few tenths of a
millisecond of Python per request and sends a request's headers and body as two
packets, which the server then reads in two wake-ups. :class:`LeanTransport` speaks
HTTP/1.1 itself on an ``asyncio.Protocol``: each request goes out in one write, the
answer is parsed from one buffer, and idle connections are kept for reuse.
``httpx.AsyncClient`` stays the interface (URLs, headers, auth, cookies, decoding);
only the bytes on the wire are ours.

The ACA client uses it only where it changes nothing but speed: plain ``http`` or
``https`` with no proxy configured in the environment (:func:`lean_transport_applies`),
TLS verified with the very context httpx would build (``httpx.create_ssl_context``).
Requests whose body is a stream (multipart uploads) go to the ``fallback`` transport
(httpx's default), as does anything it is given for another scheme.

Framing follows RFC 9112 as h11 applies it to responses: no body for HEAD, 1xx, 204
and 304; ``Transfer-Encoding: chunked`` (any other coding is refused), else
``Content-Length`` (one value, digits only), else the body runs to the connection's
close. A connection is reused only after an HTTP/1.1 answer without
``Connection: close``, read to its end with nothing after it. The server is not
trusted: its header block and chunk lines are capped (as httpcore caps them), bodies
are streamed in pieces (httpx then gathers them as it does today), and reading stops
(``pause_reading``) while more than a few pieces wait unread.

Errors are httpx's, with httpcore's meanings, so the client's retry rules apply
unchanged: nothing sent (``ConnectError``, ``ConnectTimeout``), or the request may
have arrived (``RemoteProtocolError`` for a connection closed before a full answer,
``ReadError``, ``WriteError``, ``ReadTimeout``, ``WriteTimeout``). A kept-alive
connection that the server closed while idle is noticed before it is used; one
closed after the request went out is the "connection lost after sending" case, and
the client decides whether the request may be sent again.
"""

from __future__ import annotations

import asyncio
import re
import select
import ssl
import time
import urllib.request
from collections.abc import AsyncIterator
from typing import Any

import httpx

__all__ = ["MAX_HEADER_BYTES", "LeanTransport", "lean_transport_applies"]

MAX_HEADER_BYTES = 100 * 1024
"""Longest response header block (and chunk-size or trailer line) accepted, as httpcore."""
_READ_PIECE = 64 * 1024
"""Body bytes handed on at a time (httpcore reads 64 KiB per receive)."""
_HIGH_WATER = 4 * _READ_PIECE
"""Unread bytes at which the socket stops being read until the body is consumed."""
_EAGER_BODY = 256 * 1024
"""Bodies up to this Content-Length are read before the response is returned."""
_KEEPALIVE_EXPIRY = 5.0
"""Seconds an idle connection is kept (httpx's default ``keepalive_expiry``)."""
_MAX_IDLE_PER_ORIGIN = 8
_MAX_INTERIM = 20
"""1xx answers tolerated before the final one."""

_STATUS_LINE = re.compile(rb"HTTP/1\.([01]) ([0-9]{3})(?: ([^\r\n]*))?")
_TOKEN = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_UNSAFE_HEADER = re.compile(rb"[\r\n\x00]")
_NO_BODY_STATUS = frozenset({204, 304})


def lean_transport_applies() -> bool:
    """True when no proxy is configured in the environment (the client then uses the lean
    transport; with a proxy, httpx's own handling of it is kept)."""
    proxies = urllib.request.getproxies()
    return not any(key in proxies for key in ("http", "https", "all"))


class _Connection(asyncio.Protocol):
    """One TCP (or TLS) connection: a receive buffer with flow control, and its state."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self.transport: asyncio.Transport | None = None
        self._buffer = bytearray()
        self._eof = False
        self._lost: Exception | None = None
        self._waiter: asyncio.Future[None] | None = None
        self._paused = False
        self._write_ready: asyncio.Future[None] | None = None
        self.idle_since = 0.0

    # -- asyncio.Protocol --------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        if not self._paused and len(self._buffer) > _HIGH_WATER and self.transport is not None:
            self._paused = True
            self.transport.pause_reading()
        self._wake()

    def eof_received(self) -> bool:
        self._eof = True
        self._wake()
        return False  # close the transport: we never half-close

    def connection_lost(self, exc: Exception | None) -> None:
        self._eof = True
        self._lost = exc
        self._wake()
        ready = self._write_ready
        if ready is not None and not ready.done():
            ready.set_result(None)

    def pause_writing(self) -> None:
        if self._write_ready is None or self._write_ready.done():
            self._write_ready = self._loop.create_future()

    def resume_writing(self) -> None:
        ready = self._write_ready
        if ready is not None and not ready.done():
            ready.set_result(None)

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    # -- state -------------------------------------------------------------------------

    @property
    def buffered(self) -> int:
        """Bytes received and not yet consumed."""
        return len(self._buffer)

    def usable(self, now: float) -> bool:
        """True when an idle connection can carry another request."""
        transport = self.transport
        if (
            transport is None
            or self._eof
            or self._buffer
            or transport.is_closing()
            or now - self.idle_since > _KEEPALIVE_EXPIRY
        ):
            return False
        # A close (or stray bytes) the event loop has not read yet: as httpcore's check.
        sock = transport.get_extra_info("socket")
        if sock is not None:
            try:
                readable, _, _ = select.select([sock], [], [], 0)
            except (OSError, ValueError):
                return False
            if readable:
                return False
        return True

    def close(self) -> None:
        """Close the connection now (never reused after an error or an unread body)."""
        if self.transport is not None:
            self.transport.abort()

    # -- I/O ---------------------------------------------------------------------------

    async def write(self, data: bytes, timeout: float | None) -> None:
        transport = self.transport
        if transport is None or transport.is_closing():
            raise httpx.WriteError("the connection was closed before the request was sent")
        transport.write(data)
        ready = self._write_ready
        if ready is not None and not ready.done():
            try:
                async with asyncio.timeout(timeout):
                    await ready
            except TimeoutError:
                raise httpx.WriteTimeout("timed out sending the request") from None

    async def _wait(self, timeout: float | None) -> None:
        """Wait for more data or the end of the stream."""
        if self._paused and self.transport is not None:
            self._paused = False
            self.transport.resume_reading()
        self._waiter = self._loop.create_future()
        try:
            async with asyncio.timeout(timeout):
                await self._waiter
        except TimeoutError:
            raise httpx.ReadTimeout("timed out waiting for the response") from None
        finally:
            self._waiter = None

    def _take(self, size: int) -> bytes:
        data = bytes(self._buffer[:size])
        del self._buffer[:size]
        if self._paused and len(self._buffer) <= _HIGH_WATER // 2 and self.transport is not None:
            self._paused = False
            self.transport.resume_reading()
        return data

    def _ended(self, what: str) -> httpx.HTTPError:
        if self._lost is not None:
            return httpx.ReadError(f"the connection was lost while reading {what} ({self._lost})")
        return httpx.RemoteProtocolError(f"the server closed the connection before {what} ended")

    async def read_head(self, timeout: float | None, limit: int) -> bytes:
        """Bytes up to the blank line ending a header block (without it)."""
        start = 0
        while True:
            end = self._buffer.find(b"\r\n\r\n", start)
            if end >= 0:
                return self._take(end + 4)[:end]
            bare = self._buffer.find(b"\n\n", start)
            if bare >= 0:
                return self._take(bare + 2)[:bare]
            if len(self._buffer) > limit:
                raise httpx.RemoteProtocolError(
                    f"the response's header block is longer than {limit} bytes"
                )
            if self._eof:
                if not self._buffer and self._lost is None:
                    raise httpx.RemoteProtocolError(
                        "Server disconnected without sending a response."
                    )
                raise self._ended("the response headers")
            start = max(0, len(self._buffer) - 3)
            await self._wait(timeout)

    async def read_line(self, timeout: float | None, limit: int) -> bytes:
        """One CRLF- (or LF-) terminated line, without its terminator."""
        start = 0
        while True:
            end = self._buffer.find(b"\n", start)
            if end >= 0:
                line = self._take(end + 1)
                return line[:-2] if line.endswith(b"\r\n") else line[:-1]
            if len(self._buffer) > limit:
                raise httpx.RemoteProtocolError(f"a chunk line is longer than {limit} bytes")
            if self._eof:
                raise self._ended("the chunked body")
            start = len(self._buffer)
            await self._wait(timeout)

    async def read_exactly(self, size: int, timeout: float | None) -> bytes:
        while len(self._buffer) < size:
            if self._eof:
                raise self._ended("the body")
            await self._wait(timeout)
        return self._take(size)

    async def read_some(self, size: int, timeout: float | None) -> bytes:
        """Up to ``size`` bytes; ``b""`` once the server closed the connection."""
        while not self._buffer:
            if self._eof:
                if self._lost is not None:
                    raise self._ended("the body")
                return b""
            await self._wait(timeout)
        return self._take(min(size, len(self._buffer)))


def _raise_if_unsafe(raw: bytes, what: str) -> None:
    if _UNSAFE_HEADER.search(raw):
        raise httpx.LocalProtocolError(f"the request's {what} contains CR, LF or NUL")


def _request_head(request: httpx.Request) -> bytes:
    target = request.url.raw_path
    method = request.method.encode("ascii")
    _raise_if_unsafe(target, "target")
    lines = [method + b" " + target + b" HTTP/1.1"]
    for name, value in request.headers.raw:
        if not _TOKEN.fullmatch(name):
            raise httpx.LocalProtocolError(f"invalid request header name {name!r}")
        _raise_if_unsafe(value, "header values")
        lines.append(name + b": " + value)
    lines.append(b"\r\n")
    return b"\r\n".join(lines)


def _parse_head(head: bytes) -> tuple[int, int, bytes, list[tuple[bytes, bytes]]]:
    """(minor version, status, reason, headers) of a response header block."""
    lines = head.split(b"\n")
    first = lines[0].rstrip(b"\r")
    match = _STATUS_LINE.fullmatch(first)
    if match is None:
        raise httpx.RemoteProtocolError("the server's answer is not an HTTP/1.x status line")
    headers: list[tuple[bytes, bytes]] = []
    for line in lines[1:]:
        line = line.rstrip(b"\r")
        if line[:1] in (b" ", b"\t"):
            raise httpx.RemoteProtocolError("the response uses obsolete header line folding")
        name, sep, value = line.partition(b":")
        if not sep or not _TOKEN.fullmatch(name):
            raise httpx.RemoteProtocolError("the response has a malformed header line")
        value = value.strip(b" \t")
        if b"\x00" in value or b"\r" in value:
            raise httpx.RemoteProtocolError("the response has a malformed header value")
        headers.append((name, value))
    return int(match.group(1)), int(match.group(2)), match.group(3) or b"", headers


def _framing(method: str, status: int, headers: list[tuple[bytes, bytes]]) -> tuple[str, int, bool]:
    """(kind, Content-Length, reusable-as-far-as-framing-goes) of a final response.

    kind is ``none``, ``length``, ``chunked`` or ``close`` (the body runs to the close).
    """
    lengths: set[bytes] = set()
    codings: list[bytes] = []
    close = False
    for name, value in headers:
        key = name.lower()
        if key == b"content-length":
            lengths.update(v.strip() for v in value.split(b","))
        elif key == b"transfer-encoding":
            codings += [v.strip().lower() for v in value.split(b",") if v.strip()]
        elif key == b"connection":
            close = close or any(v.strip().lower() == b"close" for v in value.split(b","))
    if method == "HEAD" or status in _NO_BODY_STATUS:
        return "none", 0, not close
    if codings:
        if codings != [b"chunked"]:
            raise httpx.RemoteProtocolError(
                "the response's Transfer-Encoding is not chunked (the only one supported)"
            )
        # With both headers the length is ignored, and the connection is not trusted again.
        return "chunked", 0, not close and not lengths
    if lengths:
        if len(lengths) != 1:
            raise httpx.RemoteProtocolError("the response has conflicting Content-Length values")
        (raw,) = lengths
        if not raw.isdigit() or len(raw) > 18:
            raise httpx.RemoteProtocolError("the response's Content-Length is not a number")
        return "length", int(raw), not close
    return "close", 0, False


class _Body(httpx.AsyncByteStream):
    """A response body read from its connection piece by piece; the connection goes back
    to the pool only once the body was read to its end."""

    def __init__(
        self,
        transport: LeanTransport,
        key: tuple[str, str, int],
        connection: _Connection,
        kind: str,
        length: int,
        reusable: bool,
        timeout: float | None,
    ) -> None:
        self._transport = transport
        self._key = key
        self._connection: _Connection | None = connection
        self._kind = kind
        self._length = length
        self._reusable = reusable
        self._timeout = timeout

    async def __aiter__(self) -> AsyncIterator[bytes]:
        connection = self._connection
        if connection is None:
            raise httpx.StreamConsumed()
        try:
            async for piece in self._pieces(connection):
                yield piece
        except BaseException:
            self._connection = None
            connection.close()
            raise
        self._connection = None
        self._transport._release(self._key, connection, self._reusable)

    async def _pieces(self, connection: _Connection) -> AsyncIterator[bytes]:
        timeout = self._timeout
        if self._kind == "length":
            remaining = self._length
            while remaining:
                piece = await connection.read_exactly(min(remaining, _READ_PIECE), timeout)
                remaining -= len(piece)
                yield piece
        elif self._kind == "chunked":
            while True:
                line = await connection.read_line(timeout, MAX_HEADER_BYTES)
                size_text = line.split(b";", 1)[0].strip()
                if not size_text or len(size_text) > 16 or not _is_hex(size_text):
                    raise httpx.RemoteProtocolError("the response has a malformed chunk size")
                remaining = int(size_text, 16)
                if remaining == 0:
                    trailer = 0
                    while True:  # trailer fields, ignored, up to the blank line
                        line = await connection.read_line(timeout, MAX_HEADER_BYTES)
                        trailer += len(line) + 2
                        if not line:
                            break
                        if trailer > MAX_HEADER_BYTES:
                            raise httpx.RemoteProtocolError("the response's trailer is too long")
                    return
                while remaining:
                    piece = await connection.read_exactly(min(remaining, _READ_PIECE), timeout)
                    remaining -= len(piece)
                    yield piece
                if await connection.read_line(timeout, 2) != b"":
                    raise httpx.RemoteProtocolError("a chunk does not end where its size says")
        elif self._kind == "close":
            while piece := await connection.read_some(_READ_PIECE, timeout):
                yield piece

    async def aclose(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:  # not read to its end: the rest would corrupt reuse
            connection.close()


def _is_hex(text: bytes) -> bool:
    return all(c in b"0123456789abcdefABCDEF" for c in text)


class LeanTransport(httpx.AsyncBaseTransport):
    """HTTP/1.1 with keep-alive for an ``httpx.AsyncClient`` (the ACA client's, which
    creates it); ``fallback`` carries what it does not (streamed bodies, other schemes)."""

    def __init__(self, ssl_context: ssl.SSLContext, fallback: httpx.AsyncBaseTransport) -> None:
        self._ssl = ssl_context
        self._fallback = fallback
        self._idle: dict[tuple[str, str, int], list[_Connection]] = {}
        self._closed = False

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Send ``request`` and return its response (body streamed, or read if small)."""
        url = request.url
        scheme = url.scheme
        try:
            body = request.content
        except httpx.RequestNotRead:
            body = None  # multipart uploads and other streamed bodies
        if body is None or scheme not in ("http", "https"):
            return await self._fallback.handle_async_request(request)
        if self._closed:
            raise RuntimeError("the transport was closed")
        timeouts: dict[str, Any] = request.extensions.get("timeout", {})
        head = _request_head(request)
        key = (scheme, url.host, url.port or (443 if scheme == "https" else 80))
        connection = await self._connection(key, request, timeouts.get("connect"))
        try:
            if len(body) <= _EAGER_BODY:
                await connection.write(head + body, timeouts.get("write"))
            else:
                await connection.write(head, timeouts.get("write"))
                await connection.write(body, timeouts.get("write"))
            return await self._response(request, key, connection, timeouts.get("read"))
        except BaseException:
            connection.close()
            raise

    async def _response(
        self,
        request: httpx.Request,
        key: tuple[str, str, int],
        connection: _Connection,
        timeout: float | None,
    ) -> httpx.Response:
        for _ in range(_MAX_INTERIM + 1):
            head = await connection.read_head(timeout, MAX_HEADER_BYTES)
            minor, status, reason, headers = _parse_head(head)
            if status >= 200:
                break
            if status == 101:
                raise httpx.RemoteProtocolError("the server switched protocols unasked")
        else:
            raise httpx.RemoteProtocolError("the server sent too many interim (1xx) answers")
        kind, length, reusable = _framing(request.method, status, headers)
        reusable = reusable and minor == 1 and not _asked_close(request)
        extensions = {"http_version": b"HTTP/1.%d" % minor, "reason_phrase": reason}
        if kind == "none" or (kind == "length" and length <= _EAGER_BODY):
            content = await connection.read_exactly(length, timeout) if length else b""
            self._release(key, connection, reusable)
            return httpx.Response(
                status, headers=headers, stream=httpx.ByteStream(content), extensions=extensions
            )
        stream = _Body(self, key, connection, kind, length, reusable, timeout)
        return httpx.Response(status, headers=headers, stream=stream, extensions=extensions)

    async def _connection(
        self, key: tuple[str, str, int], request: httpx.Request, timeout: float | None
    ) -> _Connection:
        idle = self._idle.get(key)
        if idle:
            now = time.monotonic()
            while idle:
                connection = idle.pop()
                if connection.usable(now):
                    return connection
                connection.close()
        scheme, host, port = key
        loop = asyncio.get_running_loop()
        tls: dict[str, Any] = {}
        if scheme == "https":
            sni = request.extensions.get("sni_hostname")
            tls = {"ssl": self._ssl, "server_hostname": sni or host}
        try:
            async with asyncio.timeout(timeout):
                _, protocol = await loop.create_connection(
                    lambda: _Connection(loop), host, port, **tls
                )
        except TimeoutError:
            raise httpx.ConnectTimeout(f"timed out connecting to {host}:{port}") from None
        except (OSError, ssl.SSLError) as exc:  # refused, unreachable, certificate refused
            raise httpx.ConnectError(str(exc) or type(exc).__name__) from exc
        return protocol

    def _release(self, key: tuple[str, str, int], connection: _Connection, reusable: bool) -> None:
        """Keep a connection whose answer was read to its end, when it may carry another."""
        if not reusable or self._closed or connection.buffered:
            connection.close()
            return
        idle = self._idle.setdefault(key, [])
        if len(idle) >= _MAX_IDLE_PER_ORIGIN:
            connection.close()
            return
        connection.idle_since = time.monotonic()
        idle.append(connection)

    async def aclose(self) -> None:
        """Close the idle connections and the fallback transport (the client's aclose)."""
        self._closed = True
        for idle in self._idle.values():
            for connection in idle:
                connection.close()
        self._idle.clear()
        await self._fallback.aclose()


def _asked_close(request: httpx.Request) -> bool:
    value = request.headers.get("connection", "")
    return any(v.strip().lower() == "close" for v in value.split(","))
