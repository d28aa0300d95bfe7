"""Fixtures for the ACA executor tests: a real emulator on 127.0.0.1 and test credentials."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from _support.tokens import make_jwt

from kernel_bridge.emulator import Emulator, EmulatorConfig
from kernel_bridge.executors.aca._credentials import StaticToken

TOKEN = "aca-executor-test-token-0123456789"


class ShortLivedCredential:
    """A synchronous credential whose JWTs expire ``lifetime`` seconds after issue."""

    def __init__(self, lifetime: int = 4) -> None:
        self.lifetime = lifetime
        self.issued: list[tuple[str, int]] = []
        self.threads: set[int] = set()

    def get_token(self, *scopes: str, **kwargs: Any) -> StaticToken:
        self.threads.add(threading.get_ident())
        assert scopes == ("https://dynamicsessions.io/.default",)
        expires = int(time.time()) + self.lifetime
        token = make_jwt(
            {"aud": "https://dynamicsessions.io", "exp": expires, "n": len(self.issued)}
        )
        self.issued.append((token, expires))
        return StaticToken(token, expires)


class CountingCredential:
    """A static-token credential that counts its calls."""

    def __init__(self, token: str = TOKEN) -> None:
        self.token = token
        self.calls = 0

    def get_token(self, *scopes: str, **kwargs: Any) -> StaticToken:
        self.calls += 1
        return StaticToken(self.token, int(time.time()) + 3600)


@pytest.fixture
def make_emulator() -> Iterator[Callable[..., Emulator]]:
    """Start emulators (EmulatorConfig fields as keywords); all stopped at the end."""
    started: list[Emulator] = []

    def factory(**config: Any) -> Emulator:
        config.setdefault("token", TOKEN)
        emulator = Emulator(EmulatorConfig(**config)).start()
        started.append(emulator)
        return emulator

    yield factory
    for emulator in started:
        emulator.stop()


@pytest.fixture
def emulator(make_emulator: Callable[..., Emulator]) -> Emulator:
    """One emulator with default settings accepting TOKEN."""
    return make_emulator()
