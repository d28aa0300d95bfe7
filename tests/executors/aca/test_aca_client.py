"""The data-plane client against the emulator's faults, over real HTTP."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Callable

import pytest

from kernel_bridge.emulator import Emulator, Fault
from kernel_bridge.errors import (
    CodeMayHaveRunError,
    ConfigurationValueError,
    RemoteServiceError,
    ServiceThrottledError,
)
from kernel_bridge.executors.aca._client import ACAClient, RetryPolicy
from kernel_bridge.executors.aca._credentials import TokenCache

from .conftest import TOKEN, CountingCredential

FAST = RetryPolicy(max_retries=3, base_delay=0.05, max_delay=5)
SESSION = "client-test-session-0001"


def run_with_client(
    endpoint: str, body: Callable[[ACAClient], object], credential: object | None = None
) -> object:
    async def main() -> object:
        client = ACAClient(endpoint, TokenCache(credential or CountingCredential()), retry=FAST)
        try:
            return await body(client)  # type: ignore[misc]
        finally:
            await client.aclose()

    return asyncio.run(main())


def test_401_refreshes_the_token_exactly_once_and_retries_once(emulator: Emulator) -> None:
    credential = CountingCredential()
    emulator.faults.add(Fault(status=401))
    props = run_with_client(
        emulator.endpoint, lambda c: c.execute(SESSION, "6 * 7", replay_safe=True), credential
    )
    assert props["result"] == 42  # type: ignore[index]
    assert credential.calls == 2
    assert emulator.stats()["executions"] == 1


def test_second_401_is_an_error_naming_the_token(emulator: Emulator) -> None:
    credential = CountingCredential()
    emulator.faults.add(Fault(status=401, times=5))
    with pytest.raises(CodeMayHaveRunError, match="HTTP 401") as info:
        run_with_client(
            emulator.endpoint, lambda c: c.execute(SESSION, "1", replay_safe=True), credential
        )
    assert "audience" in str(info.value)
    assert credential.calls == 2
    assert emulator.stats()["faults_pending"] == 1  # exactly two requests were sent
    assert TOKEN not in str(info.value)


def test_429_with_retry_after_is_retried_after_the_hint(emulator: Emulator) -> None:
    emulator.faults.add(Fault(status=429, retry_after=1, times=2))
    started = time.monotonic()
    props = run_with_client(
        emulator.endpoint, lambda c: c.execute(SESSION, "'ok'", replay_safe=True)
    )
    assert props["result"] == "'ok'"  # type: ignore[index]
    assert time.monotonic() - started >= 1.9
    assert emulator.stats()["executions"] == 1


def test_503_is_retried_and_gives_up_with_a_clear_error(emulator: Emulator) -> None:
    emulator.faults.add(Fault(status=503))
    props = run_with_client(emulator.endpoint, lambda c: c.execute(SESSION, "1", replay_safe=True))
    assert props["result"] == 1  # type: ignore[index]
    emulator.faults.add(Fault(status=503, times=10))
    with pytest.raises(CodeMayHaveRunError, match="HTTP 503"):
        run_with_client(emulator.endpoint, lambda c: c.execute(SESSION, "1", replay_safe=True))
    assert emulator.stats()["executions"] == 1


def test_a_read_throttled_past_the_retries_is_a_throttled_error(emulator: Emulator) -> None:
    emulator.faults.add(Fault(operation="list", status=429, retry_after=0.05, times=10))
    with pytest.raises(ServiceThrottledError, match="HTTP 429") as info:
        run_with_client(emulator.endpoint, lambda c: c.list_files(SESSION))
    assert not isinstance(info.value, CodeMayHaveRunError)  # no code was in it
    assert info.value.status == 429


@pytest.mark.parametrize("status", [401, 429, 503])
def test_an_execution_that_is_not_replay_safe_is_never_resent(
    emulator: Emulator, status: int
) -> None:
    # The status alone does not prove the code did not run (the fault comes after it ran).
    emulator.faults.add(Fault(status=status, retry_after=0.1, after=True))
    with pytest.raises(CodeMayHaveRunError, match="may or may not have run"):
        run_with_client(emulator.endpoint, lambda c: c.execute(SESSION, "1"))
    assert emulator.stats()["executions"] == 1
    assert emulator.stats()["requests"] == 1


def test_500_on_execution_is_not_resent(emulator: Emulator) -> None:
    emulator.faults.add(Fault(status=500, after=True))
    with pytest.raises(CodeMayHaveRunError, match="not sent again"):
        run_with_client(emulator.endpoint, lambda c: c.execute(SESSION, "1"))
    assert emulator.stats()["executions"] == 1


def test_dropped_connection_after_sending_is_not_resent(emulator: Emulator) -> None:
    emulator.faults.add(Fault(drop=True, after=True))
    with pytest.raises(CodeMayHaveRunError, match="may or may not have run"):
        run_with_client(emulator.endpoint, lambda c: c.execute(SESSION, "1"))
    assert emulator.stats()["executions"] == 1


def test_reads_are_retried_after_dropped_connections_and_500(emulator: Emulator) -> None:
    emulator.faults.add(Fault(operation="list", drop=True), Fault(operation="list", status=500))
    files = run_with_client(emulator.endpoint, lambda c: c.list_files(SESSION))
    assert files == []
    assert emulator.stats()["faults_pending"] == 0


def test_connection_refused_is_retried_then_reported() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    endpoint = f"http://127.0.0.1:{port}/subscriptions/s/resourceGroups/r/sessionPools/p"
    with pytest.raises(RemoteServiceError, match="Could not connect") as info:
        run_with_client(endpoint, lambda c: c.execute(SESSION, "1"))
    assert SESSION not in str(info.value)
    assert not isinstance(info.value, CodeMayHaveRunError)  # nothing was sent


def test_bad_endpoints_are_refused_early_as_configuration_value_errors() -> None:
    # Each is also a ValueError (what AutoGen's API raises), never a bare one: a bare
    # ValueError reached the user as "This is a bug in kernel_bridge".
    for endpoint in (
        "dynamicsessions.io/x",
        "https://h/p?api-version=1",
        "https://[bad/pool",
        "https://host:99999/pool",
        "https://host:port/pool",
        "https://ho st/pool",
    ):
        with pytest.raises(ConfigurationValueError, match="pool_management_endpoint") as info:
            ACAClient(endpoint, TokenCache(CountingCredential()))
        assert isinstance(info.value, ValueError)
