"""Comms (widgets) for ACA sessions, carried in the output shim's stdout frames.

The ACA service has no channel back to the kernel, so comms ride on executions:

- At session start (after the output shim, ``_shim``) :func:`comms_setup_code` installs,
  where the ``comm`` package is importable in the session, the in-session library's comm
  manager (the runtime's own ``_comm_install``) with ``kb_aca_session``'s transport: each
  message a comm sends is written as an ``iopub`` frame (``{"t": "iopub", "msg_type",
  "content", "metadata", "buffers": [base64]}``). It answers with a ``{"t": "comms",
  "ok": bool}`` frame.
- Comm traffic caused by a cell (``comm_open`` with a widget's state, updates) comes
  back in that execution's stdout, in order with its displays.
- Each frontend ``comm_open``/``comm_msg``/``comm_close`` is delivered by a short
  execution (:func:`comm_delivery_code`) that hands it to the session's comm manager;
  what the handlers send (``echo_update``, ``update_states``) comes back in its output.
- ``comm_info_request`` is answered by a short execution (:func:`comm_info_code`).

Messages sent between executions (a background thread) have no execution to ride on:
where the session is IPython, they are held and written at the start of the next
execution (a cell, or a comm message's); in a plain-Python session they are written to
a stdout nobody reads. docs/aca.md says so.

Called by :class:`~kernel_bridge.executors.aca.ACADynamicSessionsCodeExecutor`.
"""

from __future__ import annotations

import json
import secrets
from typing import Any

from .._comm import CommRequest, encode_buffers
from ._shim import SHIM_MODULE

__all__ = [
    "comm_delivery_code",
    "comm_info_code",
    "comm_info_from_frames",
    "comms_ready",
    "comms_setup_code",
]

# Runs in a throw-away globals dict, so no name lands in the user namespace.
_SETUP = """\
import sys
m = sys.modules[{module!r}]
m.emit({{'t': 'comms', 'ok': bool(m.install_comms())}})
"""

_CALL = "import sys\nm = sys.modules.get({module!r})\nif m is not None:\n    m.{call}\n"


def comms_setup_code() -> str:
    """Session-setup code that installs the comm manager; it never raises.

    Goes after the output shim's setup (the manager and its frames live there).
    """
    setup = _SETUP.format(module=SHIM_MODULE)
    return f"try:\n    exec({setup!r}, {{}})\nexcept Exception:\n    pass\n"


def comms_ready(frames: list[dict[str, Any]]) -> bool:
    """Whether the setup's frames say the session's comm manager is installed."""
    return any(f.get("t") == "comms" and f.get("ok") is True for f in frames)


def _call(call: str) -> str:
    # exec in a fresh dict: nothing lands in the user's namespace, no value is shown
    return f"exec({_CALL.format(module=SHIM_MODULE, call=call)!r}, {{}})\n"


def comm_delivery_code(comm: CommRequest) -> str:
    """A short cell that hands ``comm`` to the session's comm manager.

    The frontend's message travels as a JSON string literal (``repr`` of a ``str``), so
    nothing in it is ever code.
    """
    payload = json.dumps(
        [comm.msg_type, comm.content, comm.metadata, encode_buffers(comm.buffers)],
        ensure_ascii=True,
        default=str,
    )
    return _call(f"deliver(*__import__('json').loads({payload!r}))")


def comm_info_code(target_name: str | None) -> tuple[str, str]:
    """(request id, a short cell that writes the open comms as a ``comm_info`` frame)."""
    request_id = secrets.token_hex(8)
    return request_id, _call(f"info({request_id!r}, {target_name!r})")


def comm_info_from_frames(
    frames: list[dict[str, Any]], request_id: str
) -> dict[str, dict[str, str]] | None:
    """The comms listed by the ``comm_info`` frame answering ``request_id`` (None: none)."""
    for frame in frames:
        if frame.get("t") != "comm_info" or frame.get("id") != request_id:
            continue
        comms = frame.get("comms")
        if not isinstance(comms, dict):
            return None
        return {
            str(comm_id): {"target_name": str(entry.get("target_name", ""))}
            for comm_id, entry in comms.items()
            if isinstance(entry, dict)
        }
    return None
