"""Pip requirement strings of user-defined functions: validation and PEP 503 names."""

from __future__ import annotations

import re

from ..errors import FunctionsError

__all__ = ["normalize_package_name", "requirement_name"]

_NAME = re.compile(r"\s*([A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?)")


def requirement_name(spec: str) -> str:
    """Return the distribution name of a requirement (``"pandas>=1.0"`` -> ``"pandas"``).

    Raises :class:`FunctionsError` when ``spec`` does not start with a valid name.
    """
    match = _NAME.match(spec)
    if not match:
        raise FunctionsError(
            f"python package {spec!r} is not a pip requirement; give a name such as "
            "'pandas' or 'pandas>=1.0'"
        )
    return match.group(1)


def normalize_package_name(spec: str) -> str:
    """Return the PEP 503 normalised distribution name of a requirement string."""
    return re.sub(r"[-_.]+", "-", requirement_name(spec)).lower()
