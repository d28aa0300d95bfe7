# ruff: noqa: SIM105
# (stdlib only, Python 3.8+)
"""The ACA session's side of kernel_bridge: outputs and comm traffic as stdout frames.

This file runs in the ACA session, never in kernel_bridge's process. At session start the
executor sends its source together with the in-session library (the runtime's
``kb_library.py``: rich output, completion, inspection, the comm manager), and the boot
code (``_shim.shim_setup_code``) makes this the module ``_kernel_bridge_output_shim`` with
``_lib``, the library module, set before it runs.

The only thing this module adds to the library is the transport the service lacks: the
data plane answers an execution with stdout, stderr and one result, so everything the
runtime would send as a message is written to stdout as one frame line::

    "\\x1eKB-OUT " + <nonce> + " " + <JSON, ASCII only> + "\\n"

and the executor cuts the frames back out (``_shim.split_stdout``). :class:`_Frames` is
the library's publisher; :func:`install` hooks it into the session's shell.
"""

import builtins
import json
import logging
import sys
import threading

# Both set by the boot code before this runs: the in-session library module, and the
# version of this payload (a re-sent setup with the same version keeps this module).
_lib = globals().get("_lib")
VERSION = globals().get("VERSION")

_state = {"nonce": None, "mode": None, "value": None}


def emit(payload):
    """Write one frame line to stdout; False when it could not be written."""
    nonce = _state["nonce"]
    if not nonce:
        return False
    try:
        text = json.dumps(payload, ensure_ascii=True, separators=(",", ":"), default=str)
        out = sys.stdout
        out.write("\x1eKB-OUT " + nonce + " " + text + "\n")
        out.flush()
    except Exception:
        return False
    return True


class _Frames:
    """The library's publisher in an ACA session: each output becomes a frame."""

    def publish_display(self, data, metadata, display_id, update):
        return emit(
            {
                "t": "display",
                "data": data,
                "metadata": metadata or {},
                "display_id": display_id or None,
                "update": bool(update),
            }
        )

    def publish_clear(self, wait):
        return emit({"t": "clear", "wait": bool(wait)})

    def publish_result(self, data, metadata, value):
        frame = {"t": "result", "data": data, "metadata": metadata or {}}
        ok, value_json = _lib._value_json(value)
        if ok:
            frame["value"] = value_json
        return emit(frame)

    def publish_page(self, data, start):
        if not emit({"t": "page", "data": data, "start": int(start or 0)}):
            print(data.get("text/plain", ""))


_FRAMES = _Frames()


def _original(func):
    return getattr(func, "__kb_shim_original__", func)


def _has_image(data):
    try:
        return any(str(k).startswith("image/") for k in data)
    except Exception:
        return False


def _hook_ipython(ip):
    """Frame what the service's IPython shell publishes, keeping its own output for images.

    Image displays also go to the original publisher and the last expression to the
    original display hook, so the service's own ``result`` stays as a fallback (the
    executor drops it when the framed copy arrived).
    """
    pub = ip.display_pub
    orig_publish = _original(pub.publish)
    orig_clear = _original(pub.clear_output)

    def publish(data, metadata=None, *args, **kwargs):
        display_id = (kwargs.get("transient") or {}).get("display_id")
        try:
            bundle = _lib._encode_data(dict(data or {}))
            ok = _FRAMES.publish_display(
                bundle, dict(metadata or {}), display_id, kwargs.get("update")
            )
        except Exception:
            ok = False
        if not ok or _has_image(data):
            return orig_publish(data, metadata, *args, **kwargs)
        return None

    def clear_output(wait=False):
        if not _FRAMES.publish_clear(wait):
            return orig_clear(wait)
        return None

    publish.__kb_shim_original__ = orig_publish
    clear_output.__kb_shim_original__ = orig_clear
    pub.publish = publish
    pub.clear_output = clear_output

    hook = ip.displayhook
    orig_write = _original(hook.write_format_data)
    orig_fill = getattr(hook, "fill_exec_result", None)

    def write_format_data(format_dict, md_dict=None):
        value, _state["value"] = _state["value"], None
        try:
            if format_dict:
                bundle = _lib._encode_data(dict(format_dict))
                _FRAMES.publish_result(bundle, dict(md_dict or {}), value[0] if value else None)
        except Exception:
            pass
        return orig_write(format_dict, md_dict)

    write_format_data.__kb_shim_original__ = orig_write
    hook.write_format_data = write_format_data
    if orig_fill is not None:
        orig_fill = _original(orig_fill)

        def fill_exec_result(result):
            _state["value"] = (result,)
            return orig_fill(result)

        fill_exec_result.__kb_shim_original__ = orig_fill
        hook.fill_exec_result = fill_exec_result

    # `obj?` help goes to the frontend's pager, as in ipykernel [INF: the service's
    # kernel accepts a show_in_pager hook like any IPython shell].
    if not getattr(ip, "_kb_pager_hooked", False):
        try:
            from IPython.core import page as ipy_page

            ip.set_hook("show_in_pager", ipy_page.as_hook(_lib.page), 10)
            ip._kb_pager_hooked = True
        except Exception:
            pass


def _hook_builtins():
    """Plain Python: the library's display functions become the builtins (and kb_display's)."""
    helper = sys.modules.get("kb_display")
    for name in ("display", "update_display", "clear_output"):
        current = getattr(builtins, name, None)
        ours = getattr(_lib, name)
        setattr(builtins, name, ours)
        if helper is not None and current is not None and getattr(helper, name, None) is current:
            setattr(helper, name, ours)


def result(value):
    """Frame the value of a cell's last expression (plain Python); returns None.

    The executor wraps the last expression in this call (``_shim.wrap_last_expression``).
    """
    if value is None:
        return None
    builtins._ = value
    try:
        sys._getframe(1).f_globals["_"] = value
    except Exception:
        pass
    try:
        shown = _FRAMES.publish_result(*_lib._format_plain(value), value)
    except Exception:
        shown = False
    return None if shown else value


def _get_ipython():
    try:
        from IPython import get_ipython
    except Exception:
        return None
    try:
        return get_ipython()
    except Exception:
        return None


def install(nonce):
    """Install the hooks (idempotent), take the new nonce and say hello in a frame."""
    _state["nonce"] = nonce
    _lib._STATE["runtime"] = _FRAMES
    if _state["mode"] is None:
        ip = _get_ipython()
        if ip is not None:
            _hook_ipython(ip)
            _state["mode"] = "ipython"
        else:
            _hook_builtins()
            _state["mode"] = "plain"
    emit({"t": "hello", "mode": _state["mode"], "version": VERSION})
    return _state["mode"]


def introspect(request, namespace):
    """Answer a ``complete`` or ``inspect`` request with one ``reply`` frame.

    ``namespace`` is the user's (the calling cell's globals); it is only read.
    """
    reply = {"t": "reply", "id": request.get("id")}
    try:
        answer = _lib.complete_request if request.get("op") == "complete" else _lib.inspect_request
        reply.update(answer(_get_ipython(), namespace, request))
    except Exception as exc:
        reply["error"] = "%s: %s" % (type(exc).__name__, exc)
    emit(reply)


# ---------------------------------------------------------------------------------------
# comms: the library's comm manager, its messages written as "iopub" frames

# "between": no execution runs (IPython's post_run_cell .. pre_run_cell); messages sent
# then (a background thread) are held and written at the start of the next execution.
_comms = {"between": False, "held": []}
_HELD_MAX = 1000
_lock = threading.Lock()
_WIDGET_TARGETS = ("jupyter.widget", "jupyter.widget.control")


def _send(msg_type, content, metadata=None, buffers=None):
    frame = {"t": "iopub", "msg_type": msg_type, "content": content}
    frame.update(metadata=dict(metadata or {}), buffers=_lib._encode_buffers(buffers))
    with _lock:
        if _comms["between"]:
            held = _comms["held"]
            held.append(frame)
            del held[:-_HELD_MAX]
            return
    emit(frame)


def _execution_starts(*args):
    with _lock:
        _comms["between"] = False
        held, _comms["held"] = _comms["held"], []
    for frame in held:
        emit(frame)


def _execution_ends(*args):
    with _lock:
        _comms["between"] = True


def install_comms():
    """Install the library's comm manager (idempotent); True when comms work here."""
    if _lib._STATE.get("comm_manager") is not None:
        return True
    manager = _lib._comm_install(
        lambda comm: None,
        lambda comm, msg_type, content, metadata, buffers: _send(
            msg_type, content, metadata, buffers
        ),
        logging.NullHandler,
    )
    if manager is None:
        return False
    try:
        events = _get_ipython().events
    except Exception:
        return True  # plain Python: no hooks, messages are written when sent
    events.register("pre_run_cell", _execution_starts)
    events.register("post_run_cell", _execution_ends)
    return True


def deliver(msg_type, content, metadata, buffers):
    """Hand one frontend comm message to the comm manager; its replies go out as frames."""
    manager = _lib._STATE.get("comm_manager")
    if manager is None:
        if msg_type == "comm_open":
            _send("comm_close", {"comm_id": content.get("comm_id"), "data": {}})
        return
    if msg_type == "comm_open" and not all(t in manager.targets for t in _WIDGET_TARGETS):
        # ipywidgets registers its targets at import only under IPython: do it for a
        # plain-Python session too.
        widgets = sys.modules.get("ipywidgets")
        try:
            if widgets is not None:
                widgets.register_comm_target()
        except Exception:
            pass
    msg = {"msg_type": msg_type, "content": content, "metadata": metadata, "buffers": buffers}
    getattr(manager, msg_type)(None, None, _lib._wire_message(msg))


def info(request_id, target):
    """Write the open comms (of one target) as a comm_info frame."""
    emit({"t": "comm_info", "id": request_id, "comms": _lib._open_comms(target)})
