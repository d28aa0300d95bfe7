"""The token cache: cached, refreshed before expiry, fetched off the event loop."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import pytest

from kernel_bridge.errors import ConfigurationError, RemoteServiceError
from kernel_bridge.executors.aca._credentials import (
    TOKEN_ENV_VAR,
    StaticToken,
    StaticTokenCredential,
    TokenCache,
    default_credential,
)

from .conftest import CountingCredential, ShortLivedCredential


def test_token_is_cached_not_fetched_per_request() -> None:
    credential = CountingCredential()

    async def main() -> None:
        cache = TokenCache(credential)
        tokens = [await cache.get() for _ in range(5)]
        assert tokens == [credential.token] * 5

    asyncio.run(main())
    assert credential.calls == 1


@pytest.mark.slow
def test_short_lived_token_is_refreshed_before_it_expires() -> None:
    credential = ShortLivedCredential(lifetime=3)

    async def main() -> None:
        cache = TokenCache(credential)
        deadline = time.time() + 8
        while time.time() < deadline:
            token = await cache.get()
            issued = dict(credential.issued)
            assert time.time() < issued[token]  # never hands out an expired token
            await asyncio.sleep(0.05)

    asyncio.run(main())
    assert 2 <= len(credential.issued) <= 8  # refreshed, but not per request


def test_sync_get_token_runs_in_a_worker_thread() -> None:
    credential = ShortLivedCredential()

    async def main() -> None:
        await TokenCache(credential).get()

    asyncio.run(main())
    assert threading.get_ident() not in credential.threads


def test_async_credentials_are_awaited() -> None:
    class AsyncCredential:
        async def get_token(self, *scopes: str, **kwargs: Any) -> StaticToken:
            return StaticToken("async-token", int(time.time()) + 3600)

    async def main() -> str:
        return await TokenCache(AsyncCredential()).get()

    assert asyncio.run(main()) == "async-token"


def test_refresh_after_401_fetches_once_even_when_concurrent() -> None:
    credential = ShortLivedCredential(lifetime=3600)  # a new token string per fetch

    async def main() -> None:
        cache = TokenCache(credential)
        rejected = await cache.get()
        await asyncio.gather(*(cache.refresh(rejected) for _ in range(3)))

    asyncio.run(main())
    assert len(credential.issued) == 2


def test_credential_failure_is_a_clear_error() -> None:
    class Broken:
        def get_token(self, *scopes: str, **kwargs: Any) -> StaticToken:
            raise RuntimeError("no login\nsecond line")

    with pytest.raises(RemoteServiceError, match="az login") as info:
        asyncio.run(TokenCache(Broken()).get())
    assert "no login" in str(info.value) and "second line" not in str(info.value)


def test_default_credential_prefers_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(TOKEN_ENV_VAR, "env-token")
    credential = default_credential()
    assert isinstance(credential, StaticTokenCredential)
    assert credential.get_token("scope").token == "env-token"
    assert "env-token" not in repr(credential)
    monkeypatch.setenv(TOKEN_ENV_VAR, " ")
    with pytest.raises(ConfigurationError, match=TOKEN_ENV_VAR):
        default_credential()
    monkeypatch.delenv(TOKEN_ENV_VAR)
    assert type(default_credential()).__name__ == "DefaultAzureCredential"
