"""Rich output for ACA sessions: the in-session library, framed into stdout.

The ACA data plane (2024-02-02-preview) answers an execution with ``stdout``,
``stderr`` and one ``result`` only, so ``display()`` of HTML, ``update_display``,
``clear_output`` and rich ``execute_result`` bundles would be lost. At every session
start the executor sends (:func:`shim_setup_code`, compressed, once per session start)
the same in-session library the runtime runs (``kernel_bridge/runtime/kb_library.py``:
rich formatting, display, the pager, completion, inspection, the comm manager) and the
small ACA adapter ``kb_aca_session.py``, which writes each output to stdout as **one
line**::

    "\\x1eKB-OUT " + <nonce> + " " + <JSON, ASCII only> + "\\n"

and the executor cuts those lines back out of stdout (:func:`split_stdout`), in order
with the user's own text. The nonce is random per session start, so text a user prints
cannot pass for a frame by accident.

Where the adapter hooks in (``kb_aca_session.install``):

- IPython present (``get_ipython()`` is not None: the service's kernel [INF], the
  emulator's runtime when IPython is importable): the shell's display publisher
  ``publish`` / ``clear_output`` and the display hook's ``write_format_data`` (plus
  ``fill_exec_result`` for the value's JSON) are replaced on the instances [INF: that
  replacing ``get_ipython().display_pub.publish`` in the service's kernel takes effect].
  Image displays are also passed on to the original publisher and the last expression
  to the original display hook, so the service's own ``result`` stays as a fallback (the
  executor drops it when the framed copy arrived).
- Plain Python (the emulator's runtime without IPython): the library's ``display``,
  ``update_display`` and ``clear_output`` become the builtins, and the cell's last
  expression is wrapped by the executor (:func:`wrap_last_expression`) in a call to the
  adapter, which frames the value's mime bundle and returns None.

A shim that cannot be installed leaves today's behaviour (no hello frame: the executor
logs it at debug).
"""

from __future__ import annotations

import ast
import base64
import functools
import hashlib
import json
import re
import secrets
import zlib
from pathlib import Path
from typing import Any

from ...events import ClearOutput, Display, Error, OutputEvent, Page, Result, Stream
from ...runtime import library_source
from .._comm import iopub_event
from ._guard import shift_caret_line

__all__ = [
    "LIBRARY_MODULE",
    "SESSION_PATH",
    "SHIM_MODULE",
    "clean_traceback",
    "new_nonce",
    "session_payload",
    "shim_setup_code",
    "split_stdout",
    "wrap_last_expression",
]

SHIM_MODULE = "_kernel_bridge_output_shim"
"""Name of the module the shim lives in, in the session's ``sys.modules``."""

LIBRARY_MODULE = "_kernel_bridge_library"
"""Name the in-session library (the runtime's ``kb_library.py``) has in the session."""
SESSION_PATH = Path(__file__).with_name("kb_aca_session.py")
"""The session's side of the framing (sent as source, never imported here)."""
_FRAME_TAG = "KB-OUT "
_RESULT_PREFIX = f"__import__({SHIM_MODULE!r}).result("

# Runs in a throw-away globals dict, so no name lands in the user namespace.
_BOOT = """\
import sys, types
m = sys.modules.get({module!r})
if m is None or getattr(m, 'VERSION', None) != {version!r}:
    import base64, json, zlib
    library, session = json.loads(zlib.decompress(base64.b64decode({blob!r})).decode('utf-8'))
    lib = types.ModuleType({library_module!r})
    exec(compile(library, '<kernel_bridge library>', 'exec'), lib.__dict__)
    sys.modules[{library_module!r}] = lib
    m = types.ModuleType({module!r})
    m.__dict__.update(_lib=lib, VERSION={version!r})
    exec(compile(session, '<kernel_bridge output shim>', 'exec'), m.__dict__)
    sys.modules[{module!r}] = m
m.install({nonce!r})
"""


@functools.cache
def session_payload() -> tuple[str, str]:
    """``(version, blob)``: what every session start sends, computed once.

    The blob is base64 of the zlib-compressed JSON pair (the in-session library's
    source, ``kb_aca_session.py``'s source); the version is a digest of it, so a setup
    re-sent to a session that has this very code keeps its modules (and hooks).
    """
    sources = [library_source().decode("utf-8"), SESSION_PATH.read_text("utf-8")]
    blob = zlib.compress(json.dumps(sources).encode("utf-8"), 9)
    return hashlib.sha256(blob).hexdigest()[:16], base64.b64encode(blob).decode("ascii")


def new_nonce() -> str:
    """A fresh random nonce (32 hex digits) for one session start."""
    return secrets.token_hex(16)


def shim_setup_code(nonce: str) -> str:
    """Session-setup code that installs the shim with ``nonce``; it never raises."""
    version, blob = session_payload()
    boot = _BOOT.format(
        module=SHIM_MODULE,
        library_module=LIBRARY_MODULE,
        version=version,
        blob=blob,
        nonce=nonce,
    )
    return f"try:\n    exec({boot!r}, {{}})\nexcept Exception:\n    pass\n"


def _frame_pattern(nonce: str) -> re.Pattern[str]:
    # The leading \x1e is optional in case the service drops control characters [INF].
    return re.compile("\x1e?" + re.escape(_FRAME_TAG + nonce + " ") + r"([^\r\n]*)\r?(?:\n|\Z)")


def _event_from_frame(frame: dict[str, Any]) -> OutputEvent | None:
    kind = frame.get("t")
    if kind == "display":
        data = frame.get("data")
        metadata = frame.get("metadata")
        display_id = frame.get("display_id")
        return Display(
            data=dict(data) if isinstance(data, dict) else {},
            metadata=dict(metadata) if isinstance(metadata, dict) else {},
            display_id=str(display_id) if display_id else None,
            update=bool(frame.get("update")),
        )
    if kind == "clear":
        return ClearOutput(wait=bool(frame.get("wait")))
    if kind == "iopub":  # comm traffic (see _comms), checked as the runtime's is
        return iopub_event(frame)
    if kind == "page":
        data = frame.get("data")
        if not isinstance(data, dict):
            return None
        return Page(data=dict(data), start=int(frame.get("start") or 0))
    if kind == "result":
        data = frame.get("data")
        metadata = frame.get("metadata")
        bundle = dict(data) if isinstance(data, dict) else {}
        if not bundle:
            return None
        bundle.setdefault("text/plain", "")
        return Result(
            data=bundle,
            metadata=dict(metadata) if isinstance(metadata, dict) else {},
            value_json=frame.get("value"),
        )
    return None


def split_stdout(stdout: str, nonce: str | None) -> tuple[list[OutputEvent], list[dict[str, Any]]]:
    """Cut the shim's frames out of ``stdout``.

    Returns the output events in order (the user's text as ``Stream("stdout")`` pieces
    between ``Display``/``ClearOutput``/``Result``/``IOPubMessage`` events) and the
    other frames (hello, introspection replies) as dicts. A frame with another nonce,
    or one that does not decode, is left in the text.
    """
    events: list[OutputEvent] = []
    others: list[dict[str, Any]] = []
    if not stdout:
        return events, others
    if not nonce:
        return [Stream("stdout", stdout)], others
    text: list[str] = []
    pos = 0
    for match in _frame_pattern(nonce).finditer(stdout):
        try:
            frame = json.loads(match.group(1))
        except ValueError:
            continue
        if not isinstance(frame, dict):
            continue
        text.append(stdout[pos : match.start()])
        pos = match.end()
        event = _event_from_frame(frame)
        if event is None:
            if frame.get("t") not in ("display", "clear", "result", "page", "iopub"):
                others.append(frame)
            continue
        if "".join(text):
            events.append(Stream("stdout", "".join(text)))
        text = []
        events.append(event)
    text.append(stdout[pos:])
    if "".join(text):
        events.append(Stream("stdout", "".join(text)))
    return events, others


def wrap_last_expression(code: str) -> str:
    """Wrap the cell's last expression in the shim's ``result()`` (plain-Python sessions).

    Line numbers are kept (the call is inserted around the expression in place). The
    code is returned unchanged when it does not parse here, does not end with an
    expression, or ends with ``;`` (which, as in IPython, hides the value).
    """
    try:
        tree = ast.parse(code)
    except (SyntaxError, ValueError):
        return code
    if not tree.body or not isinstance(tree.body[-1], ast.Expr):
        return code
    node = tree.body[-1].value
    end_lineno, end_col = node.end_lineno, node.end_col_offset
    if end_lineno is None or end_col is None:
        return code
    lines = code.splitlines(keepends=True)
    start_line = lines[node.lineno - 1].encode()
    end_line = lines[end_lineno - 1].encode()
    if end_line[end_col:].split(b"#", 1)[0].strip().startswith(b";"):
        return code
    if node.lineno == end_lineno:
        new = (
            start_line[: node.col_offset]
            + _RESULT_PREFIX.encode()
            + start_line[node.col_offset : end_col]
            + b")"
            + start_line[end_col:]
        )
        lines[node.lineno - 1] = new.decode()
    else:
        lines[node.lineno - 1] = (
            start_line[: node.col_offset] + _RESULT_PREFIX.encode() + start_line[node.col_offset :]
        ).decode()
        lines[end_lineno - 1] = (end_line[:end_col] + b")" + end_line[end_col:]).decode()
    wrapped = "".join(lines)
    try:
        ast.parse(wrapped)
    except SyntaxError:
        return code
    return wrapped


def clean_traceback(error: Error) -> Error:
    """Take the :func:`wrap_last_expression` call back out of a traceback's lines."""
    if not any(_RESULT_PREFIX in line for line in error.traceback):
        return error
    lines: list[str] = []
    shift = 0
    for line in error.traceback:
        line = shift_caret_line(line, shift)
        shift = 0
        if _RESULT_PREFIX in line:
            line = line.replace(_RESULT_PREFIX, "", 1)
            stripped = line.rstrip()
            if stripped.endswith(")"):
                line = stripped[:-1] + line[len(stripped) :]
            shift = len(_RESULT_PREFIX)
        lines.append(line)
    return Error(error.ename, error.evalue, lines)
