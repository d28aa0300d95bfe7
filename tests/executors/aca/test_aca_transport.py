"""The lean HTTP/1.1 transport against real local servers that answer as scripted.

Each test starts an asyncio server on 127.0.0.1 whose handler writes exactly the bytes
under test (framing, early closes, oversized answers), and checks what the client
returns or raises, and what the server saw (requests, connections).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest

from kernel_bridge.emulator import Emulator
from kernel_bridge.errors import CodeMayHaveRunError, RemoteServiceError
from kernel_bridge.executors.aca._client import ACAClient, RetryPolicy
from kernel_bridge.executors.aca._credentials import TokenCache
from kernel_bridge.executors.aca._transport import (
    MAX_HEADER_BYTES,
    LeanTransport,
    lean_transport_applies,
)

from .conftest import CountingCredential

FAST = RetryPolicy(max_retries=3, base_delay=0.01, max_delay=1)
POOL_PATH = "/subscriptions/s/resourceGroups/r/sessionPools/p"
SESSION = "transport-test-session-0001"

CHUNKED = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
Reader = asyncio.StreamReader
Writer = asyncio.StreamWriter


class Seen:
    """What a scripted server received: requests (head, body) and connections."""

    def __init__(self) -> None:
        self.requests: list[tuple[bytes, bytes]] = []
        self.connections = 0


async def read_request(reader: Reader, seen: Seen) -> tuple[bytes, bytes] | None:
    """One request from ``reader`` (None at EOF), recorded in ``seen``."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError:
        return None
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    body = await reader.readexactly(length)
    seen.requests.append((head, body))
    return head, body


Handler = Callable[[Reader, Writer, int, Seen], Awaitable[None]]


@asynccontextmanager
async def scripted_server(handler: Handler) -> AsyncIterator[tuple[str, Seen]]:
    """Serve ``handler(reader, writer, connection_number, seen)`` on a free port."""
    seen = Seen()

    async def on_connect(reader: Reader, writer: Writer) -> None:
        seen.connections += 1
        try:
            await handler(reader, writer, seen.connections, seen)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(on_connect, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}", seen
    finally:
        server.close()
        await server.wait_closed()


def lean_client() -> httpx.AsyncClient:
    context = httpx.create_ssl_context()
    return httpx.AsyncClient(
        transport=LeanTransport(context, httpx.AsyncHTTPTransport(verify=context)),
        timeout=httpx.Timeout(5.0),
    )


def answer(status: int, body: bytes, *headers: str) -> bytes:
    extra = "".join(f"{h}\r\n" for h in headers)
    return f"HTTP/1.1 {status} X\r\nContent-Length: {len(body)}\r\n{extra}\r\n".encode() + body


async def answer_each(reader: Reader, writer: Writer, seen: Seen, response: bytes) -> None:
    while await read_request(reader, seen) is not None:
        writer.write(response)
        await writer.drain()


def run(coro: Awaitable[None]) -> None:
    asyncio.run(coro)  # type: ignore[arg-type]


# -- framing ---------------------------------------------------------------------------------


def test_a_request_goes_out_whole_and_the_connection_is_reused() -> None:
    async def handler(reader: Reader, writer: Writer, n: int, seen: Seen) -> None:
        await answer_each(reader, writer, seen, answer(200, b'{"ok":1}', "X-A: b"))

    async def main() -> None:
        async with scripted_server(handler) as (base, seen), lean_client() as client:
            for i in range(3):
                response = await client.post(
                    base + "/a%20b?x=1&y=%2F", content=b'{"n":%d}' % i, headers={"X-K": "v"}
                )
                assert response.status_code == 200
                assert response.json() == {"ok": 1}
                assert response.headers["x-a"] == "b"
            assert seen.connections == 1
            head, body = seen.requests[2]
            assert head.startswith(b"POST /a%20b?x=1&y=%2F HTTP/1.1\r\n")
            assert b"\r\nHost: 127.0.0.1:" in head and b"\r\nX-K: v\r\n" in head
            assert b"\r\nContent-Length: 7\r\n" in head
            assert body == b'{"n":2}'

    run(main())


def test_chunked_answers_are_decoded_with_extensions_and_trailers() -> None:
    async def handler(reader: Reader, writer: Writer, n: int, seen: Seen) -> None:
        while await read_request(reader, seen) is not None:
            writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
            for piece in (b"5;ext=1\r\nhello\r\n", b"1", b"0\r\n", b"_" * 16, b"\r\n"):
                writer.write(piece)
                await writer.drain()
            writer.write(b"0\r\nX-Trailer: t\r\n\r\n")
            await writer.drain()

    async def main() -> None:
        async with scripted_server(handler) as (base, seen), lean_client() as client:
            for _ in range(2):
                response = await client.get(base + "/")
                assert response.content == b"hello" + b"_" * 16
            assert seen.connections == 1

    run(main())


def test_connection_close_and_bodies_without_length_end_the_connection() -> None:
    async def handler(reader: Reader, writer: Writer, n: int, seen: Seen) -> None:
        await read_request(reader, seen)
        if n == 1:
            writer.write(answer(200, b"first", "Connection: close"))
        else:  # no length: the body runs to the close
            writer.write(b"HTTP/1.1 200 OK\r\n\r\nsecond-" + b"x" * 200_000)
        await writer.drain()

    async def main() -> None:
        async with scripted_server(handler) as (base, seen), lean_client() as client:
            assert (await client.get(base + "/")).content == b"first"
            assert (await client.get(base + "/")).content == b"second-" + b"x" * 200_000
            assert seen.connections == 2

    run(main())


def test_head_204_304_and_interim_answers_have_no_body() -> None:
    async def handler(reader: Reader, writer: Writer, n: int, seen: Seen) -> None:
        answers = [
            b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n",  # HEAD: the length, no body
            b"HTTP/1.1 204 No Content\r\nContent-Length: 10\r\n\r\n",
            b"HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\n",
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: x\r\n\r\n"
            + answer(201, b"made"),
        ]
        for response in answers:
            await read_request(reader, seen)
            writer.write(response)
            await writer.drain()

    async def main() -> None:
        async with scripted_server(handler) as (base, seen), lean_client() as client:
            head = await client.head(base + "/")
            assert (head.status_code, head.content) == (200, b"")
            assert (await client.get(base + "/")).content == b""
            assert (await client.get(base + "/")).status_code == 304
            final = await client.post(base + "/", content=b"x")
            assert (final.status_code, final.content) == (201, b"made")
            assert seen.connections == 1  # every answer was framed right: one connection

    run(main())


def test_a_large_body_is_streamed_whole() -> None:
    payload = bytes(range(256)) * 16_384  # 4 MiB, far above the read-ahead limit

    async def handler(reader: Reader, writer: Writer, n: int, seen: Seen) -> None:
        await answer_each(reader, writer, seen, answer(200, payload))

    async def main() -> None:
        async with scripted_server(handler) as (base, seen), lean_client() as client:
            for _ in range(2):
                got = await client.get(base + "/")
                assert hashlib.sha256(got.content).digest() == hashlib.sha256(payload).digest()
            async with client.stream("GET", base + "/") as response:
                total = 0
                async for piece in response.aiter_raw():
                    assert len(piece) <= 64 * 1024
                    total += len(piece)
                    await asyncio.sleep(0)  # a slow consumer: the transport pauses reading
            assert total == len(payload)
            assert seen.connections == 1

    run(main())


@pytest.mark.parametrize(
    ("response", "message"),
    [
        (b"HTTP/1.1 200 OK\r\nX: " + b"a" * (MAX_HEADER_BYTES + 10), "header block"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 1000000000000000\r\n\r\nshort", "closed"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello", "conflict"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", "not a number"),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n", "not chunked"),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", "chunk size"),
        (CHUNKED + b"1" * (MAX_HEADER_BYTES + 1), "chunk line"),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcXYZ\r\n", "chunk does not"),
        (b"SSH-2.0-OpenSSH\r\n\r\n", "status line"),
        (b"HTTP/1.1 200 OK\r\n folded: x\r\n\r\n", "folding"),
        (b"HTTP/1.1 101 Switching\r\n\r\n", "switched"),
    ],
)
def test_hostile_or_broken_answers_are_protocol_errors(response: bytes, message: str) -> None:
    async def handler(reader: Reader, writer: Writer, n: int, seen: Seen) -> None:
        await read_request(reader, seen)
        writer.write(response)
        await writer.drain()

    async def main() -> None:
        async with scripted_server(handler) as (base, _), lean_client() as client:
            with pytest.raises(httpx.RemoteProtocolError, match=message):
                await client.get(base + "/")

    run(main())


def test_a_server_silent_past_the_read_timeout_is_a_read_timeout() -> None:
    async def handler(reader: Reader, writer: Writer, n: int, seen: Seen) -> None:
        await read_request(reader, seen)
        await reader.read()  # never answers; ends when the client gives up

    async def main() -> None:
        async with scripted_server(handler) as (base, seen), lean_client() as client:
            with pytest.raises(httpx.ReadTimeout):
                await client.get(base + "/", timeout=httpx.Timeout(5.0, read=0.2))
            assert len(seen.requests) == 1

    run(main())


def test_header_values_with_line_breaks_are_refused_before_sending() -> None:
    async def handler(reader: Reader, writer: Writer, n: int, seen: Seen) -> None:
        await answer_each(reader, writer, seen, answer(200, b""))

    async def main() -> None:
        async with scripted_server(handler) as (base, seen), lean_client() as client:
            request = client.build_request("GET", base + "/")
            request.headers["X-Evil"] = "a\r\nInjected: 1"
            with pytest.raises(httpx.LocalProtocolError):
                await client.send(request)
            assert seen.requests == []

    run(main())


# -- the ACA client's run-once rules over the transport -------------------------------------


def execution_answer(n: int) -> bytes:
    body = json.dumps({"properties": {"status": "Success", "stdout": f"{n}\n"}}).encode()
    return answer(200, body, "Content-Type: application/json")


def with_aca_client(base: str, body: Callable[[ACAClient], Awaitable[object]]) -> object:
    async def main() -> object:
        client = ACAClient(base + POOL_PATH, TokenCache(CountingCredential()), retry=FAST)
        try:
            return await body(client)
        finally:
            await client.aclose()

    return asyncio.run(main())


def closing_after_second_request(answer_first: bytes) -> Handler:
    """A server that answers the first request on a kept-alive connection, then closes the
    connection after reading the next one (the request arrived; no answer)."""

    async def handler(reader: Reader, writer: Writer, n: int, seen: Seen) -> None:
        await read_request(reader, seen)
        writer.write(answer_first)
        await writer.drain()
        if n == 1:
            await read_request(reader, seen)  # then the connection closes unanswered
        else:
            await answer_each(reader, writer, seen, answer_first)

    return handler


def test_a_kept_alive_connection_closed_after_the_request_is_never_resent() -> None:
    async def scenario() -> None:
        async with scripted_server(closing_after_second_request(execution_answer(1))) as (
            base,
            seen,
        ):

            async def body(client: ACAClient) -> object:
                assert (await client.execute(SESSION, "1"))["stdout"] == "1\n"
                with pytest.raises(CodeMayHaveRunError, match="not sent again"):
                    await client.execute(SESSION, "2")
                return None

            await asyncio.to_thread(with_aca_client, base, body)
            assert len(seen.requests) == 2  # the second execution arrived once, never again
            assert json.loads(seen.requests[1][1])["properties"]["code"] == "2"

    run(scenario())


def test_a_replay_safe_execution_is_sent_again_on_a_new_connection() -> None:
    async def scenario() -> None:
        async with scripted_server(closing_after_second_request(execution_answer(1))) as (
            base,
            seen,
        ):

            async def body(client: ACAClient) -> object:
                await client.execute(SESSION, "1")
                faults: list[str] = []
                got = await client.execute(SESSION, "2", replay_safe=True, faults=faults)
                assert got["stdout"] == "1\n" and len(faults) == 1
                assert "RemoteProtocolError" in faults[0]
                return None

            await asyncio.to_thread(with_aca_client, base, body)
            assert len(seen.requests) == 3 and seen.connections == 2

    run(scenario())


def test_an_idle_connection_the_server_closed_is_not_used() -> None:
    async def scenario() -> None:
        first_closed = asyncio.Event()

        async def handler(reader: Reader, writer: Writer, n: int, seen: Seen) -> None:
            if n == 1:  # answer keep-alive, then close while idle
                await read_request(reader, seen)
                writer.write(execution_answer(1))
                await writer.drain()
                writer.close()
                await writer.wait_closed()
                first_closed.set()
            else:
                await answer_each(reader, writer, seen, execution_answer(2))

        async with scripted_server(handler) as (base, seen), lean_client() as client:
            url = base + POOL_PATH + "/code/execute"
            assert (await client.post(url, content=b"{}")).status_code == 200
            await first_closed.wait()
            second = await client.post(url, content=b"{}")
            assert second.json()["properties"]["stdout"] == "2\n"
            assert seen.connections == 2 and len(seen.requests) == 2

    run(scenario())


def test_cookies_the_service_sets_are_still_sent_back() -> None:
    async def handler(reader: Reader, writer: Writer, n: int, seen: Seen) -> None:
        body = json.dumps({"properties": {"status": "Success", "stdout": ""}}).encode()
        await read_request(reader, seen)
        writer.write(answer(200, body, "Set-Cookie: ARRAffinity=abc; Path=/"))
        await answer_each(reader, writer, seen, answer(200, body))

    async def scenario() -> None:
        async with scripted_server(handler) as (base, seen):

            async def body(client: ACAClient) -> object:
                for _ in range(3):
                    await client.execute(SESSION, "1")
                return None

            await asyncio.to_thread(with_aca_client, base, body)
            heads = [head for head, _ in seen.requests]
            assert b"\r\nCookie:" not in heads[0]
            assert all(b"\r\nCookie: ARRAffinity=abc\r\n" in head for head in heads[1:])

    run(scenario())


# -- where the lean transport applies; TLS ---------------------------------------------------


def test_environment_proxies_keep_httpx_handling_them(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("http_proxy", "https_proxy", "all_proxy", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)
    assert lean_transport_applies()

    async def proxy(reader: Reader, writer: Writer, n: int, seen: Seen) -> None:
        await answer_each(reader, writer, seen, execution_answer(7))

    async def scenario() -> None:
        async with scripted_server(proxy) as (proxy_url, seen):
            monkeypatch.setenv("HTTP_PROXY", proxy_url)
            assert not lean_transport_applies()

            async def body(client: ACAClient) -> object:
                return await client.execute(SESSION, "1")

            got = await asyncio.to_thread(
                with_aca_client, "http://pool.invalid", body
            )  # only the proxy can answer for this host
            assert got == {"status": "Success", "stdout": "7\n"}
            assert seen.requests[0][0].startswith(b"POST http://pool.invalid" + POOL_PATH.encode())

    run(scenario())


def test_tls_is_verified_against_the_trusted_certificates(
    make_emulator: Callable[..., Emulator], monkeypatch: pytest.MonkeyPatch
) -> None:
    emulator = make_emulator(tls=True)
    assert emulator.endpoint.startswith("https://") and emulator.ca_file is not None
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)

    async def body(client: ACAClient) -> object:
        return await client.execute(SESSION, "print(6 * 7)")

    # The emulator's self-signed certificate is not trusted by default: refused.
    with pytest.raises(RemoteServiceError, match="Could not connect") as info:
        asyncio.run(_client_call(emulator.endpoint, body, RetryPolicy(max_retries=0)))
    assert isinstance(info.value.__cause__, httpx.ConnectError)
    assert isinstance(info.value.__cause__.__cause__, ssl.SSLCertVerificationError)
    assert emulator.stats()["requests"] == 0

    monkeypatch.setenv("SSL_CERT_FILE", str(Path(emulator.ca_file)))
    got = asyncio.run(_client_call(emulator.endpoint, body, FAST))
    assert isinstance(got, dict) and got["stdout"] == "42\n"


async def _client_call(
    endpoint: str, body: Callable[[ACAClient], Awaitable[object]], retry: RetryPolicy
) -> object:
    client = ACAClient(endpoint, TokenCache(CountingCredential()), retry=retry)
    try:
        http = client._client()
        assert isinstance(http._transport, LeanTransport)  # the path under test
        return await body(client)
    finally:
        await client.aclose()
