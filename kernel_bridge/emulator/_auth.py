"""Bearer-token checks of the ACA emulator, and the record of the tokens it saw.

Like the service: no ``Authorization: Bearer`` header, a token other than the configured
one, a JWT whose ``exp`` has passed or whose ``aud`` is not the data plane's all get
401 with an empty body. Tokens are recorded by fingerprint (never in clear) with their
expiry, so tests can prove that no request used an expired token.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
from dataclasses import dataclass, field
from typing import Any

__all__ = ["AUDIENCE", "TokenChecker", "TokenUse", "decode_jwt_claims", "fingerprint"]

AUDIENCE = "https://dynamicsessions.io"


def fingerprint(token: str) -> str:
    """A short, irreversible name for a token (sha256 prefix)."""
    return hashlib.sha256(token.encode()).hexdigest()[:12]


def decode_jwt_claims(token: str) -> dict[str, Any] | None:
    """Return the (unverified) claims of a JWT, or None when ``token`` is not one."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    payload = parts[1] + "=" * (-len(parts[1]) % 4)
    try:
        claims = json.loads(base64.urlsafe_b64decode(payload.encode()))
    except (ValueError, TypeError):
        return None
    return claims if isinstance(claims, dict) else None


@dataclass(frozen=True)
class TokenUse:
    """One request's token: fingerprint, expiry (JWT ``exp`` or None), time of use, verdict."""

    fingerprint: str
    expires_at: float | None
    used_at: float
    accepted: bool
    reason: str = ""

    @property
    def expired(self) -> bool:
        """True when the token had expired when it was used."""
        return self.expires_at is not None and self.used_at >= self.expires_at


@dataclass
class TokenChecker:
    """Decides whether a request's ``Authorization`` header is acceptable."""

    token: str | None = None
    uses: list[TokenUse] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def check(self, header: str | None) -> bool:
        """Return True when the header carries an acceptable bearer token; record it."""
        now = time.time()
        if not header or not header.startswith("Bearer ") or not header[7:].strip():
            return False
        value = header[7:].strip()
        claims = decode_jwt_claims(value)
        expires_at = None
        reason = ""
        if claims is not None and isinstance(claims.get("exp"), int | float):
            expires_at = float(claims["exp"])
        if self.token is not None and not hmac.compare_digest(value, self.token):
            reason = "not the configured token"
        elif expires_at is not None and now >= expires_at:
            reason = "expired"
        elif (
            claims is not None
            and "aud" in claims
            and claims["aud"]
            not in (
                AUDIENCE,
                AUDIENCE + "/",
            )
        ):
            reason = "wrong audience"
        use = TokenUse(fingerprint(value), expires_at, now, not reason, reason)
        with self._lock:
            self.uses.append(use)
        return not reason

    def snapshot(self) -> list[TokenUse]:
        """The token uses so far, oldest first."""
        with self._lock:
            return list(self.uses)
