"""Completion and inspection in an ACA session, by running a small snippet there.

The data plane has no completion call, so the executor sends one short execution
(:func:`introspection_code`) that computes the answer where the user's objects live
and prints it as one shim frame (see ``_shim``); :func:`reply_from_frames` picks
it out of the parsed stdout.

The snippet runs in a throw-away globals dict that only *reads* the user namespace
(``globals()`` of the cell): it defines no names there and its last statement is a
call returning None, so ``_``/``Out`` stay as they were. IPython, where the session has
it, still counts the execution in its input history (``In``, ``_i``) [INF: the service
runs each execution as an IPython cell]. With IPython the answer comes from its
completer / ``object_inspect_mime`` (as ipykernel does); otherwise from
``rlcompleter`` over the namespace and repr + signature + docstring as text/plain.
"""

from __future__ import annotations

import secrets
from typing import Any

from ..base import Completion, Inspection

__all__ = [
    "completion_from_reply",
    "inspection_from_reply",
    "introspection_code",
    "reply_from_frames",
]

# Runs in the session (stdlib only, Python 3.8+) with _kb_req and _kb_ns given.
_SNIPPET = r"""
import json, re, sys


def _ipython():
    try:
        from IPython import get_ipython
    except Exception:
        return None
    try:
        return get_ipython()
    except Exception:
        return None


def _line_at(code, pos):
    start = code.rfind("\n", 0, pos) + 1
    end = code.find("\n", pos)
    if end < 0:
        end = len(code)
    return code[start:end], start


def _complete(ip, ns, code, pos):
    line, offset = _line_at(code, pos)
    if ip is not None:
        try:
            from IPython.core.completer import provisionalcompleter, rectify_completions
            with provisionalcompleter():
                comps = list(rectify_completions(code, ip.Completer.completions(code, pos)))
        except Exception:
            text, matches = ip.complete("", line, pos - offset)
            return {"matches": list(matches), "cursor_start": pos - len(text),
                    "cursor_end": pos, "metadata": {}}
        if not comps:
            return {"matches": [], "cursor_start": pos, "cursor_end": pos, "metadata": {}}
        types = [{"start": c.start, "end": c.end, "text": c.text, "type": c.type,
                  "signature": c.signature} for c in comps]
        return {"matches": [c.text for c in comps], "cursor_start": comps[0].start,
                "cursor_end": comps[0].end,
                "metadata": {"_jupyter_types_experimental": types}}
    import rlcompleter
    found = re.search(r"[\w.]*$", line[: pos - offset])
    text = found.group(0) if found else ""
    matches = []
    if text:
        completer = rlcompleter.Completer(ns)
        for state in range(10000):
            match = completer.complete(text, state)
            if match is None:
                break
            if match.endswith("("):
                match = match[:-1]
            if match not in matches:
                matches.append(match)
    return {"matches": matches, "cursor_start": pos - len(text), "cursor_end": pos,
            "metadata": {}}


def _token(code, pos):
    line, offset = _line_at(code, pos)
    col = pos - offset
    left = re.search(r"[A-Za-z_][\w.]*$", line[:col])
    right = re.match(r"\w*", line[col:])
    name = (left.group(0) if left else "") + (right.group(0) if right else "")
    if not name:
        called = re.search(r"([A-Za-z_][\w.]*)\s*\([^()]*$", line[:col])
        name = called.group(1) if called else ""
    return name.strip(".")


def _inspect(ip, ns, code, pos, detail):
    if ip is not None:
        from IPython.utils.tokenutil import token_at_cursor
        name = token_at_cursor(code, pos)
        try:
            bundle = dict(ip.object_inspect_mime(name, detail_level=detail))
        except KeyError:
            return {"found": False, "data": {}, "metadata": {}}
        if not getattr(ip, "enable_html_pager", False):
            bundle.pop("text/html", None)
        return {"found": True, "data": bundle, "metadata": {}}
    import builtins, inspect
    name = _token(code, pos)
    parts = name.split(".") if name else []
    if not parts:
        return {"found": False, "data": {}, "metadata": {}}
    if parts[0] in ns:
        obj = ns[parts[0]]
    elif hasattr(builtins, parts[0]):
        obj = getattr(builtins, parts[0])
    else:
        return {"found": False, "data": {}, "metadata": {}}
    for part in parts[1:]:
        try:
            obj = getattr(obj, part)
        except Exception:
            return {"found": False, "data": {}, "metadata": {}}
    lines = []
    try:
        text = repr(obj)
    except Exception:
        text = "<unrepresentable>"
    lines.append("%s: %s" % (name, text if len(text) < 500 else text[:500] + "..."))
    lines.append("Type: %s" % type(obj).__name__)
    if callable(obj):
        try:
            lines.append("Signature: %s%s" % (parts[-1], inspect.signature(obj)))
        except (TypeError, ValueError):
            pass
    doc = inspect.getdoc(obj)
    if doc:
        lines.append("Docstring:\n" + doc)
    if detail:
        try:
            lines.append("Source:\n" + inspect.getsource(obj))
        except (OSError, TypeError):
            pass
    return {"found": True, "data": {"text/plain": "\n".join(lines)}, "metadata": {}}


def _run(req, ns):
    reply = {"t": "reply", "id": req["id"]}
    try:
        ip = _ipython()
        if req["op"] == "complete":
            reply.update(_complete(ip, ns, req["code"], req["cursor_pos"]))
        else:
            reply.update(_inspect(ip, ns, req["code"], req["cursor_pos"], req["detail"]))
    except Exception as exc:
        reply["error"] = "%s: %s" % (type(exc).__name__, exc)
    text = json.dumps(reply, ensure_ascii=True, separators=(",", ":"), default=str)
    sys.stdout.write("\x1eKB-OUT " + req["nonce"] + " " + text + "\n")
    sys.stdout.flush()


_run(_kb_req, _kb_ns)
"""


def introspection_code(
    op: str, code: str, cursor_pos: int, nonce: str, detail_level: int = 0
) -> tuple[str, str]:
    """Return ``(request_id, cell)`` for a ``complete`` or ``inspect`` request.

    The cell is a single ``exec(...)`` statement evaluating to None.
    """
    request_id = secrets.token_hex(8)
    request = {
        "op": op,
        "code": code,
        "cursor_pos": int(cursor_pos),
        "detail": int(detail_level),
        "nonce": nonce,
        "id": request_id,
    }
    cell = (
        f"exec(compile({_SNIPPET!r}, '<kernel_bridge introspection>', 'exec'), "
        f"{{'__builtins__': __builtins__, '_kb_req': {request!r}, '_kb_ns': globals()}})"
    )
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
