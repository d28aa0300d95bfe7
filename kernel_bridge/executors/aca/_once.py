"""At-most-once executions in an ACA session: a re-sent cell that already ran is not run again.

An answer can be lost after the session ran the code (a 503 or 429 from a gateway behind
the session, a 500, a dropped connection) [INF: the service does not say whether such an
answer means "not run"]. To retry such faults safely, every cell carries a fresh
execution id in the session's alive-marker check (``_guard``): the marker global is a
small callable (:func:`once_setup_code`) that records each id it sees before any user
code of the cell runs. When the same id arrives again, it raises
``KernelBridgeAlreadyRan`` (with what it recorded about the first run) instead of letting
the cell run, and the executor tells the user that the cell ran once and its output was
lost (:func:`already_ran`).

The recorded outcome is ``ok`` or ``error:<ExceptionName>`` where IPython runs the session
(its ``post_run_cell`` event; the service's kernel is IPython [INF]), else ``ran``. The
same event writes an ``end`` frame (``_shim``) as the cell's last stdout line, so the
executor can tell that an answer's stdout was cut by the service (:func:`has_end_frame`).

Because this is only code in the session, it works the same on the real service and the
emulator. A ``%%cell_magic`` cell carries it too where IPython runs the session: it is
sent as the call IPython itself turns it into (:func:`tag_cell_magic`). Cells that
cannot carry the check (``from __future__`` first, cell magics without IPython) are not
tagged, and the client never re-sends them once they may have arrived.
"""

from __future__ import annotations

import json
import re
import secrets
from typing import Any

from ...events import Error
from ._shim import SHIM_MODULE

__all__ = [
    "ONCE_ERROR",
    "already_ran",
    "has_end_frame",
    "new_execution_id",
    "once_setup_code",
    "tag_cell_magic",
    "tag_expression",
]

ONCE_ERROR = "KernelBridgeAlreadyRan"
"""Exception name the session raises for an execution id it has seen before."""
_REMEMBERED = 2000
"""Ids a session remembers (a re-send follows its original within seconds)."""

# Runs in the session at every session start (stdlib only, Python 3.8+); only the marker
# name lands in the user namespace.
_ONCE_CODE = """\
def _kb_make_once():
    import json as _json
    class {error}(Exception):
        pass
    seen = {{}}
    current = [None]
    def once(execution_id):
        if execution_id in seen:
            raise {error}(_json.dumps({{"id": execution_id, "outcome": seen[execution_id]}}))
        if len(seen) >= {remembered}:
            seen.pop(next(iter(seen)))
        seen[execution_id] = "ran"
        current[0] = execution_id
    def post_run(result=None):
        execution_id, current[0] = current[0], None
        if execution_id is None or result is None:
            return
        error = getattr(result, "error_in_exec", None) or getattr(result, "error_before_exec", None)
        seen[execution_id] = "ok" if error is None else "error:" + type(error).__name__
        try:  # the last line of stdout: a cell whose answer lacks it was cut
            import sys as _sys
            _sys.modules["{shim}"].emit({{"t": "end", "id": execution_id}})
        except Exception:
            pass
    try:
        get_ipython().events.register("post_run_cell", post_run)
    except Exception:
        pass
    return once
{marker} = _kb_make_once()
del _kb_make_once
"""


def once_setup_code(marker: str) -> str:
    """Session-setup code that makes ``marker`` the execution-id recorder."""
    return _ONCE_CODE.format(
        error=ONCE_ERROR, marker=marker, remembered=_REMEMBERED, shim=SHIM_MODULE
    )


def new_execution_id() -> str:
    """A fresh execution id (16 hex digits) for one cell."""
    return secrets.token_hex(8)


def tag_expression(marker: str, execution_id: str) -> str:
    """The check put in front of a cell: ``marker('id')`` (NameError on a fresh session)."""
    return f"{marker}({execution_id!r})"


_CELL_MAGIC = re.compile(r"^%%([A-Za-z_][\w.]*)")


def tag_cell_magic(code: str, tag: str) -> str:
    """``%%name line\nbody`` as ``tag; get_ipython().run_cell_magic('name', line, body)``.

    That call is what IPython's input transformer makes of a cell magic (the same
    arguments, the body ending with a newline), so the cell behaves as before; the
    check in front then runs first. Anything else is returned unchanged.
    """
    first, _, body = code.partition("\n")
    if _CELL_MAGIC.match(first) is None:
        return code
    name, _, line = first[2:].rstrip().partition(" ")
    if body and not body.endswith("\n"):
        body += "\n"
    return f"{tag}; get_ipython().run_cell_magic({name!r}, {line!r}, {body!r})"


_OUTCOME = re.compile(r"\{.*\}")


def already_ran(error: Error | None, execution_id: str) -> str | None:
    """The recorded outcome when ``error`` says execution ``execution_id`` ran before; else None.

    Outcomes: ``ok``, ``error:<ExceptionName>``, or ``ran`` (finished or not: unknown).
    """
    if error is None or error.ename.rsplit(".", 1)[-1] != ONCE_ERROR:
        return None
    match = _OUTCOME.search(error.evalue)
    try:
        record = json.loads(match.group(0)) if match else None
    except ValueError:
        record = None
    if not isinstance(record, dict) or record.get("id") != execution_id:
        return None
    return str(record.get("outcome") or "ran")


def has_end_frame(frames: list[dict[str, Any]], execution_id: str) -> bool:
    """True when the shim frames of an answer hold execution ``execution_id``'s end frame."""
    return any(f.get("t") == "end" and f.get("id") == execution_id for f in frames)
