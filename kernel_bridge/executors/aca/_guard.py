"""Detect a silently replaced ACA session without an extra round trip.

The service hands a *fresh* session to an identifier that sat idle past the pool's
cooldown, without saying so. At every session start the executor sets a random marker
global (``_kb_alive_<hex> = None``); every cell is sent with a check of that marker put
in front of it (:func:`guard_code`). If the session was replaced, the check raises
``NameError`` before any user code has run (:func:`is_marker_error`), so the executor can
run the session setup again and re-send the cell once, safely.

The check goes on the cell's first line when that keeps line numbers (``marker; x = 1``,
``marker  # comment``); otherwise it gets a line of its own. Cells that must start with
something else (``%%cell_magic``, ``from __future__``) are left as they are here (the
executor rewrites a cell magic where IPython runs the session, ``_once``); otherwise
they are sent unguarded: a replaced session is then noticed at the next guarded cell.
"""

from __future__ import annotations

import ast
import re
import secrets

from ...events import Error

__all__ = ["guard_code", "is_marker_error", "new_marker", "unguard_traceback"]

_COMPOUND: tuple[type[ast.stmt], ...] = (
    ast.FunctionDef,
    ast.AsyncFunctionDef,
    ast.ClassDef,
    ast.If,
    ast.For,
    ast.AsyncFor,
    ast.While,
    ast.With,
    ast.AsyncWith,
    ast.Try,
    ast.Match,
)
if hasattr(ast, "TryStar"):  # Python 3.11+
    _COMPOUND = (*_COMPOUND, ast.TryStar)


def new_marker() -> str:
    """A fresh, unguessable marker name for one session start."""
    return f"_kb_alive_{secrets.token_hex(8)}"


def guard_code(code: str, marker: str) -> str:
    """Return ``code`` with the check ``marker`` in front (or unchanged when it cannot be).

    ``marker`` is the marker name or an expression naming it (``marker('id')``, see
    ``_once``); either raises NameError in a replaced session.
    """
    first_line, sep, rest = code.partition("\n")
    stripped = first_line.strip()
    if stripped.startswith(("%%", "from __future__")):
        return code
    if not code.strip():
        return marker
    if not stripped or (stripped.startswith("#") and first_line == first_line.lstrip()):
        suffix = f"  {first_line}" if stripped else ""
        return f"{marker}{suffix}{sep}{rest}"
    try:
        tree = ast.parse(code)
    except SyntaxError:  # IPython syntax (%magic, !cmd) or a real error: own line
        return f"{marker}\n{code}"
    first = tree.body[0] if tree.body else None
    if (
        first is not None
        and not isinstance(first, _COMPOUND)
        and first.lineno == 1
        and first.col_offset == 0
    ):
        return f"{marker}; {code}"
    return f"{marker}\n{code}"


def is_marker_error(error: Error | None, marker: str, stdout: str) -> bool:
    """True when ``error`` is the marker check failing (the session was replaced)."""
    return (
        error is not None and error.ename == "NameError" and marker in error.evalue and not stdout
    )


_CARETS = re.compile(r"^(\s*)([\^~]+\s*)$")


def shift_caret_line(line: str, shift: int) -> str:
    """Move a traceback caret line (``~~^~~``) ``shift`` columns left; other lines as-is.

    Used when text was taken out of the source line above it.
    """
    carets = _CARETS.match(line)
    if shift and carets and len(carets.group(1)) >= shift:
        return carets.group(1)[shift:] + carets.group(2)
    return line


def unguard_traceback(error: Error, marker: str) -> Error:
    """Remove the marker check (``marker`` or ``marker('id')``) from a user error's traceback.

    A caret line (``~~^~~``, Python 3.11+) under a shortened line moves left with it.
    """
    # The check is the bare marker or the marker called with a cell's execution id.
    check = re.escape(marker) + r"(?:\('[0-9a-f]+'\))?"
    inline = re.compile(check + "; ")
    comment = re.compile(check + "  #")
    lines: list[str] = []
    shift = 0
    for line in error.traceback:
        line = shift_caret_line(line, shift)
        new = comment.sub("#", inline.sub("", line))
        shift = len(line) - len(new) if inline.search(line) else 0
        lines.append(new)
    return Error(error.ename, error.evalue, lines)
