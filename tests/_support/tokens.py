"""Test bearer tokens: unsigned JWTs the ACA emulator can read (it checks exp and aud)."""

from __future__ import annotations

import base64
import json
from typing import Any


def make_jwt(claims: dict[str, Any]) -> str:
    """An unsigned JWT carrying ``claims``."""

    def part(obj: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(claims)}.sig"
