"""Bearer tokens for the ACA dynamic sessions data plane.

A :class:`TokenCache` wraps any object with ``get_token(*scopes)`` (azure-identity
credentials, sync or async, or AutoGen's ``TokenProvider``) and hands out a token that
is valid for a while yet: it is fetched once, kept, and fetched again shortly *before*
it expires (:func:`refresh_margin`), never per request and never kept forever. A 401
from the service calls :meth:`TokenCache.refresh` (the client does that exactly once
per request).

With no credential configured, :func:`default_credential` uses the environment
variable ``KERNEL_BRIDGE_ACA_TOKEN`` (a static bearer token: emulators, CI) when set,
otherwise azure-identity's ``DefaultAzureCredential``.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import os
import time
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from ...errors import ConfigurationError, RemoteServiceError

__all__ = [
    "ACA_SCOPE",
    "TOKEN_ENV_VAR",
    "StaticToken",
    "StaticTokenCredential",
    "TokenCache",
    "TokenProvider",
    "default_credential",
    "refresh_margin",
]

ACA_SCOPE = "https://dynamicsessions.io/.default"
"""The OAuth scope of the dynamic sessions data plane (audience https://dynamicsessions.io)."""

TOKEN_ENV_VAR = "KERNEL_BRIDGE_ACA_TOKEN"
"""Environment variable holding a static bearer token (used instead of Azure sign-in)."""

_MAX_MARGIN = 300.0
"""Refresh at most this many seconds before expiry (5 minutes, like the LangChain client)."""
_MARGIN_FRACTION = 0.2
"""... normally this fraction of the token's lifetime (so short-lived tokens are used too) ..."""
_MIN_MARGIN = 2.0
"""... but at least this many seconds (half the lifetime for very short tokens)."""

_log = logging.getLogger(__name__)


@runtime_checkable
class TokenProvider(Protocol):
    """Anything that hands out access tokens: ``get_token(*scopes)`` (sync or async).

    The returned object has ``token`` (str) and ``expires_on`` (POSIX seconds), like
    ``azure.core.credentials.AccessToken``.
    """

    def get_token(self, *scopes: str, **kwargs: Any) -> Any:
        """Return an access token for ``scopes`` (or an awaitable of one)."""


@dataclass(frozen=True)
class StaticToken:
    """A token with its expiry, shaped like ``azure.core.credentials.AccessToken``."""

    token: str
    expires_on: int


class StaticTokenCredential:
    """A credential that always returns the same bearer token (emulator, CI).

    Its tokens are reported to expire in a year: a static token is never refreshed; if
    the service rejects it, the error says to replace it.
    """

    def __init__(self, token: str) -> None:
        if not token.strip():
            raise ConfigurationError(
                f"{TOKEN_ENV_VAR} is set but empty: set it to a bearer token or unset it "
                "to sign in with azure-identity."
            )
        self._token = token.strip()

    def get_token(self, *scopes: str, **kwargs: Any) -> StaticToken:
        """Return the static token (the scopes are ignored)."""
        return StaticToken(self._token, int(time.time()) + 365 * 24 * 3600)

    def __repr__(self) -> str:
        return "StaticTokenCredential(<token hidden>)"


def default_credential() -> TokenProvider:
    """Return the credential used when none is configured.

    Called by the ACA executor when ``credential`` is None: a
    :class:`StaticTokenCredential` from ``KERNEL_BRIDGE_ACA_TOKEN`` when that variable is
    set, else ``azure.identity.DefaultAzureCredential()``.
    """
    token = os.environ.get(TOKEN_ENV_VAR)
    if token is not None:
        return StaticTokenCredential(token)
    try:
        from azure.identity import DefaultAzureCredential
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise ConfigurationError(
            "No credential for Azure Container Apps: install azure-identity "
            "(pip install 'kernel_bridge[aca]') or set "
            f"{TOKEN_ENV_VAR} to a bearer token."
        ) from exc
    credential: TokenProvider = DefaultAzureCredential()
    return credential


def refresh_margin(lifetime: float) -> float:
    """Seconds before expiry at which a token with ``lifetime`` seconds is refreshed.

    20 % of the lifetime, at most 5 minutes, but at least 2 s (half the lifetime for
    tokens shorter than 4 s) so that a request in flight never carries an expired
    token: an hour-long Entra token is refreshed 5 min before it expires, a 3-second
    test token 1.5 s before.
    """
    if lifetime <= 0:
        return 0.0
    return min(_MAX_MARGIN, max(lifetime * _MARGIN_FRACTION, min(lifetime / 2, _MIN_MARGIN)))


class TokenCache:
    """Caches one token of ``credential`` for ``scope`` and refreshes it before expiry.

    Created by the ACA executor; :meth:`get` is called before every request and
    :meth:`refresh` after a 401. Concurrent callers share one fetch. Token values are
    never logged.
    """

    def __init__(self, credential: TokenProvider, scope: str = ACA_SCOPE) -> None:
        self._credential = credential
        self._scope = scope
        self._token: str | None = None
        self._expires_on = 0.0
        self._refresh_at = 0.0
        self._lock = asyncio.Lock()
        self.fetches = 0
        """How many times a token was fetched from the credential (tests read it)."""

    @property
    def expires_on(self) -> float:
        """POSIX time at which the cached token expires (0 when none is cached)."""
        return self._expires_on

    async def get(self) -> str:
        """Return a token valid for at least the refresh margin, fetching one if needed."""
        if self._token is not None and time.time() < self._refresh_at:
            return self._token
        async with self._lock:
            if self._token is not None and time.time() < self._refresh_at:
                return self._token
            return await self._fetch()

    async def refresh(self, rejected: str | None = None) -> str:
        """Fetch a new token (after the service rejected ``rejected`` with a 401).

        When another caller already replaced the rejected token, that newer token is
        returned instead of fetching again.
        """
        async with self._lock:
            if rejected is not None and self._token is not None and self._token != rejected:
                return self._token
            return await self._fetch()

    def clear(self) -> None:
        """Forget the cached token (the next :meth:`get` fetches one)."""
        self._token = None
        self._expires_on = self._refresh_at = 0.0

    async def _fetch(self) -> str:
        try:
            answer = (
                self._credential.get_token(self._scope)
                if _is_async(self._credential)
                else await asyncio.to_thread(self._credential.get_token, self._scope)
            )
            if inspect.isawaitable(answer):
                answer = await answer
        except Exception as exc:
            raise RemoteServiceError(
                "Could not get an access token for Azure Container Apps "
                f"({type(exc).__name__}: {_first_line(exc)}). Sign in (e.g. `az login`), "
                f"configure a managed identity, or set {TOKEN_ENV_VAR}.",
                status=0,
            ) from exc
        token = getattr(answer, "token", None)
        expires_on = getattr(answer, "expires_on", None)
        if not isinstance(token, str) or not token:
            raise RemoteServiceError(
                "The credential returned no access token (get_token() must return an "
                "object with a non-empty `token`).",
                status=0,
            )
        now = time.time()
        expiry = float(expires_on) if isinstance(expires_on, int | float) else now + 3600.0
        self._token = token
        self._expires_on = expiry
        self._refresh_at = expiry - refresh_margin(expiry - now)
        self.fetches += 1
        _log.debug("fetched an ACA access token valid for %.0f s", expiry - now)
        return token


def _is_async(credential: object) -> bool:
    return inspect.iscoroutinefunction(getattr(credential, "get_token", None))


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:200] if text else "no details"
