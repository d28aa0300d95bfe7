"""Fixtures for the emulator tests: a real emulator on 127.0.0.1 (port 0) per test."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from kernel_bridge.emulator import Emulator, EmulatorConfig

TOKEN = "emulator-test-token"
V = "2024-02-02-preview"


class Pool:
    """A running emulator plus an httpx client speaking to it."""

    def __init__(self, emulator: Emulator, token: str | None) -> None:
        self.emulator = emulator
        self.endpoint = emulator.endpoint
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.http = httpx.Client(headers=headers, timeout=60)

    def url(self, path: str) -> str:
        return f"{self.endpoint}/{path}"

    def execute(self, code: str, identifier: str = "session-1", **extra: Any) -> httpx.Response:
        body = {
            "properties": {
                "codeInputType": "inline",
                "executionType": "synchronous",
                "code": code,
                **extra,
            }
        }
        return self.http.post(
            self.url("code/execute"),
            params={"api-version": V, "identifier": identifier},
            json=body,
        )

    def props(self, code: str, identifier: str = "session-1", **extra: Any) -> dict[str, Any]:
        response = self.execute(code, identifier, **extra)
        assert response.status_code == 200, response.text
        props: dict[str, Any] = response.json()["properties"]
        return props


@pytest.fixture
def make_pool() -> Iterator[Callable[..., Pool]]:
    """Start emulators with the given EmulatorConfig fields; all stopped at the end."""
    started: list[Pool] = []

    def factory(token: str | None = TOKEN, **config: Any) -> Pool:
        emulator = Emulator(EmulatorConfig(token=token, **config)).start()
        pool = Pool(emulator, token)
        started.append(pool)
        return pool

    yield factory
    for pool in started:
        pool.http.close()
        pool.emulator.stop()


@pytest.fixture
def pool(make_pool: Callable[..., Pool]) -> Pool:
    """One emulator with default settings and the test token."""
    return make_pool()
