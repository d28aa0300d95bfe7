"""Completion and inspection in an ACA session, by running a one-line call there.

The data plane has no completion call, so the executor sends one short execution
(:func:`introspection_code`) that calls the session's adapter (``kb_aca_session.introspect``),
which answers with the in-session library's ``complete_request`` / ``inspect_request``
(the runtime's own functions: IPython's completer / ``object_inspect_mime`` where the
session has IPython, as ipykernel does; else ``rlcompleter`` over the namespace and the
runtime's text help) and prints the answer as one shim frame (see ``_shim``);
:func:`reply_from_frames` picks it out of the parsed stdout.

The call only *reads* the user namespace (``globals()`` of the cell): it defines no names
there and evaluates to None, so ``_``/``Out`` stay as they were. IPython, where the
session has it, still counts the execution in its input history (``In``, ``_i``) [INF:
the service runs each execution as an IPython cell].
"""

from __future__ import annotations

import secrets
from typing import Any

from ..base import Completion, Inspection
from ._shim import SHIM_MODULE

__all__ = [
    "completion_from_reply",
    "inspection_from_reply",
    "introspection_code",
    "reply_from_frames",
]


def introspection_code(
    op: str, code: str, cursor_pos: int, detail_level: int = 0
) -> tuple[str, str]:
    """Return ``(request_id, cell)`` for a ``complete`` or ``inspect`` request.

    The cell is a single call evaluating to None; the frontend's code travels as a
    string literal (``repr`` of a ``str``), so nothing in it is ever run.
    """
    request_id = secrets.token_hex(8)
    request = {
        "op": op,
        "code": code,
        "cursor_pos": int(cursor_pos),
        "detail_level": int(detail_level),
        "id": request_id,
    }
    cell = f"__import__('sys').modules[{SHIM_MODULE!r}].introspect({request!r}, globals())"
    return request_id, cell


def reply_from_frames(frames: list[dict[str, Any]], request_id: str) -> dict[str, Any] | None:
    """The reply frame answering ``request_id``, or None (no answer, or it failed)."""
    for frame in frames:
        if frame.get("t") == "reply" and frame.get("id") == request_id:
            return None if "error" in frame else frame
    return None


def completion_from_reply(reply: dict[str, Any] | None, cursor_pos: int) -> Completion:
    """A :class:`Completion` from a reply frame (no matches when None or malformed)."""
    if reply is None:
        return Completion([], cursor_pos, cursor_pos)
    try:
        matches = [str(m) for m in reply.get("matches") or []]
        start = int(reply.get("cursor_start", cursor_pos))
        end = int(reply.get("cursor_end", cursor_pos))
        metadata = reply.get("metadata")
    except (TypeError, ValueError):
        return Completion([], cursor_pos, cursor_pos)
    return Completion(matches, start, end, dict(metadata) if isinstance(metadata, dict) else {})


def inspection_from_reply(reply: dict[str, Any] | None) -> Inspection:
    """An :class:`Inspection` from a reply frame (not found when None or malformed)."""
    if reply is None or not reply.get("found"):
        return Inspection(False)
    data = reply.get("data")
    if not isinstance(data, dict) or not data:
        return Inspection(False)
    metadata = reply.get("metadata")
    return Inspection(True, dict(data), dict(metadata) if isinstance(metadata, dict) else {})
