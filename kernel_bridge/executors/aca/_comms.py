"""Comms (widgets) for ACA sessions, carried in the output shim's stdout frames.

The ACA service has no channel back to the kernel, so comms ride on executions:

- At session start (after the output shim, ``_shim``) :func:`comms_setup_code`
  installs, where the ``comm`` package is importable in the session, a
  ``comm.base_comm.CommManager`` and a ``comm.create_comm`` whose comms write each
  message they send as an ``iopub`` frame of the shim (``{"t": "iopub", "msg_type",
  "content", "metadata", "buffers": [base64]}``). The same ``comm`` classes back the
  runtime's comms section (``kb_runtime.py``); only the transport differs, which is why
  this is a small adapter rather than a copy of that section (whose transport is the
  runtime's channel, absent here). It answers with a ``{"t": "comms", "ok": bool}`` frame.
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
    "COMMS_MODULE",
    "comm_delivery_code",
    "comm_info_code",
    "comm_info_from_frames",
    "comms_ready",
    "comms_setup_code",
]

COMMS_MODULE = "_kernel_bridge_comms"
"""Name of the module the session's comm adapter lives in, in ``sys.modules``."""

COMMS_VERSION = 1

# Runs in the session (needs the output shim; Python 3.8+), as the body of the module.
_COMMS_BODY = r'''
import base64, logging, sys, threading

VERSION = @VERSION@
SHIM = @SHIM@
# "between": no execution runs (IPython's post_run_cell .. pre_run_cell); messages sent
# then (a background thread) are held and written at the start of the next execution.
_state = {"manager": None, "between": False, "held": []}
_HELD_MAX = 1000
_lock = threading.Lock()
_WIDGET_TARGETS = ("jupyter.widget", "jupyter.widget.control")


def _emit(payload):
    shim = sys.modules.get(SHIM)
    return shim is not None and shim.emit(payload)


def _b64(buffers):
    out = []
    for buf in buffers or ():
        try:
            out.append(base64.b64encode(bytes(memoryview(buf))).decode("ascii"))
        except TypeError:
            out.append(base64.b64encode(str(buf).encode("utf-8")).decode("ascii"))
    return out


def _send(msg_type, content, metadata=None, buffers=None):
    payload = {"t": "iopub", "msg_type": msg_type, "content": content,
               "metadata": dict(metadata or {}), "buffers": _b64(buffers)}
    with _lock:
        if _state["between"]:
            held = _state["held"]
            held.append(payload)
            del held[:-_HELD_MAX]
            return
    _emit(payload)


def _execution_starts(*args):
    with _lock:
        _state["between"] = False
        held, _state["held"] = _state["held"], []
    for payload in held:
        _emit(payload)


def _execution_ends(*args):
    with _lock:
        _state["between"] = True


def _hook_executions():
    try:
        from IPython import get_ipython
        events = get_ipython().events
    except Exception:
        return  # plain Python: no hooks, messages are written when sent
    events.register("pre_run_cell", _execution_starts)
    events.register("post_run_cell", _execution_ends)


def install():
    """Install the comm manager and comm.create_comm (idempotent); True when comms work."""
    if _state["manager"] is not None:
        return True
    try:
        import comm
        from comm.base_comm import BaseComm, CommManager
    except Exception:
        return False
    manager = CommManager()

    class KBComm(BaseComm):
        """A comm whose messages are written as output-shim frames."""

        def publish_msg(self, msg_type, data=None, metadata=None, buffers=None, **keys):
            content = dict(keys, data={} if data is None else data, comm_id=self.comm_id)
            _send(msg_type, content, metadata, buffers)

    def create_comm(*args, **kwargs):
        return KBComm(*args, **kwargs)

    comm.create_comm = create_comm
    comm.get_comm_manager = lambda: manager
    # comm logs handler failures (ipykernel: to the kernel's log, not the cell)
    log = logging.getLogger("Comm")
    log.propagate = False
    log.addHandler(logging.NullHandler())
    _state["manager"] = manager
    _hook_executions()
    return True


def _register_widget_targets(manager):
    # ipywidgets registers its targets at import only under IPython: do it for a
    # plain-Python session too.
    widgets = sys.modules.get("ipywidgets")
    if widgets is None or all(t in manager.targets for t in _WIDGET_TARGETS):
        return
    try:
        widgets.register_comm_target()
    except Exception:
        pass


def deliver(msg_type, content, metadata, buffers):
    """Hand one frontend comm message to the comm manager; its replies go out as frames."""
    manager = _state["manager"]
    if manager is None:
        if msg_type == "comm_open":
            _send("comm_close", {"comm_id": content.get("comm_id"), "data": {}})
        return
    if msg_type == "comm_open":
        _register_widget_targets(manager)
    wire = {
        "header": {"msg_type": msg_type},
        "msg_id": None,
        "msg_type": msg_type,
        "parent_header": {},
        "content": content,
        "metadata": metadata,
        "buffers": [memoryview(base64.b64decode(b)) for b in buffers],
    }
    getattr(manager, msg_type)(None, None, wire)


def info(request_id, target):
    """Write the open comms (of one target) as a comm_info frame."""
    manager = _state["manager"]
    comms = {}
    if manager is not None:
        for comm_id, comm_obj in list(manager.comms.items()):
            name = getattr(comm_obj, "target_name", "")
            if not target or name == target:
                comms[comm_id] = {"target_name": name}
    _emit({"t": "comm_info", "id": request_id, "comms": comms})
'''.replace("@VERSION@", str(COMMS_VERSION)).replace("@SHIM@", repr(SHIM_MODULE))

# Runs in a throw-away globals dict, so no name lands in the user namespace.
_BOOT = """\
import sys, types
m = sys.modules.get({module!r})
if m is None or getattr(m, 'VERSION', None) != {version!r}:
    m = types.ModuleType({module!r})
    exec(compile({body!r}, '<kernel_bridge comms>', 'exec'), m.__dict__)
    sys.modules[{module!r}] = m
m._emit({{'t': 'comms', 'ok': bool(m.install())}})
"""

_CALL = "import sys\nm = sys.modules.get({module!r})\nif m is not None:\n    m.{call}\n"


def comms_setup_code() -> str:
    """Session-setup code that installs the comm adapter; it never raises.

    Goes after the output shim's setup (it writes through the shim's frames).
    """
    boot = _BOOT.format(module=COMMS_MODULE, version=COMMS_VERSION, body=_COMMS_BODY)
    return f"try:\n    exec({boot!r}, {{}})\nexcept Exception:\n    pass\n"


def comms_ready(frames: list[dict[str, Any]]) -> bool:
    """Whether the setup's frames say the session's comm manager is installed."""
    return any(f.get("t") == "comms" and f.get("ok") is True for f in frames)


def _call(call: str) -> str:
    # exec in a fresh dict: nothing lands in the user's namespace, no value is shown
    return f"exec({_CALL.format(module=COMMS_MODULE, call=call)!r}, {{}})\n"


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
