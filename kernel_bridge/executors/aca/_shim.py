"""Rich output for ACA sessions: an in-session shim that frames outputs into stdout.

The ACA data plane (2024-02-02-preview) answers an execution with ``stdout``,
``stderr`` and one ``result`` only, so ``display()`` of HTML, ``update_display``,
``clear_output`` and rich ``execute_result`` bundles would be lost. At every session
start the executor installs a small stdlib-only shim in the session
(:func:`shim_setup_code`) that writes each of those outputs to stdout as **one line**::

    "\\x1eKB-OUT " + <nonce> + " " + <JSON, ASCII only> + "\\n"

and the executor cuts those lines back out of stdout (:func:`split_stdout`), in order
with the user's own text. The nonce is random per session start, so text a user prints
cannot pass for a frame by accident.

Where the shim hooks in:

- IPython present (``get_ipython()`` is not None: the service's kernel [INF], the
  emulator's runtime when IPython is importable): the shell's display publisher
  ``publish`` / ``clear_output`` and the display hook's ``write_format_data`` (plus
  ``fill_exec_result`` to learn whether the value is a JSON primitive) are replaced on
  the instances [INF: that replacing ``get_ipython().display_pub.publish`` in the
  service's kernel takes effect]. Image displays are also passed on to the original
  publisher and the last expression to the original display hook, so the service's own
  ``result`` stays as a fallback (the executor drops it when the framed copy arrived).
- Plain Python (the emulator's runtime without IPython): the ``display``,
  ``update_display`` and ``clear_output`` builtins are wrapped, and the cell's last
  expression is wrapped by the executor (:func:`wrap_last_expression`) in a call to the
  shim, which frames the value's mime bundle and returns None.

Whatever fails inside the shim falls back to the original function; a shim that cannot
be installed leaves today's behaviour (no hello frame: the executor logs it at debug).
"""

from __future__ import annotations

import ast
import json
import re
import secrets
from typing import Any

from ...events import ClearOutput, Display, Error, OutputEvent, Page, Result, Stream
from .._comm import iopub_event
from ._guard import shift_caret_line

__all__ = [
    "SHIM_MODULE",
    "clean_traceback",
    "new_nonce",
    "shim_setup_code",
    "split_stdout",
    "wrap_last_expression",
]

SHIM_MODULE = "_kernel_bridge_output_shim"
"""Name of the module the shim lives in, in the session's ``sys.modules``."""

SHIM_VERSION = 1
_FRAME_TAG = "KB-OUT "
_RESULT_PREFIX = f"__import__({SHIM_MODULE!r}).result("

# Runs in the session (stdlib only, Python 3.8+), as the body of the shim module.
_SHIM_BODY = r'''
import base64, builtins, json, math, os, sys

VERSION = @VERSION@
_state = {"nonce": None, "mode": None, "value": None}
_TEXT_MIMES = ("application/json", "application/javascript")


def _is_text(mime):
    return mime.startswith("text/") or mime in _TEXT_MIMES or mime.endswith(("+json", "+xml"))


def _bundle(data):
    out = {}
    for key, value in dict(data or {}).items():
        if isinstance(value, (bytes, bytearray)):
            if _is_text(str(key)):
                value = bytes(value).decode("utf-8", "replace")
            else:
                value = base64.b64encode(bytes(value)).decode("ascii")
        out[str(key)] = value
    return out


def _primitive(value):
    if type(value) in (bool, int):
        return True
    return type(value) is float and math.isfinite(value)


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


def _has_image(data):
    try:
        return any(str(k).startswith("image/") for k in data)
    except Exception:
        return False


def _original(func):
    return getattr(func, "__kb_shim_original__", func)


def _install_ipython(ip):
    pub = ip.display_pub
    orig_publish = _original(pub.publish)
    orig_clear = _original(pub.clear_output)

    def publish(data, metadata=None, *args, **kwargs):
        transient = kwargs.get("transient") or {}
        try:
            ok = emit({
                "t": "display",
                "data": _bundle(data),
                "metadata": dict(metadata or {}),
                "display_id": transient.get("display_id"),
                "update": bool(kwargs.get("update")),
            })
        except Exception:
            ok = False
        if not ok or _has_image(data):
            return orig_publish(data, metadata, *args, **kwargs)
        return None

    def clear_output(wait=False):
        if not emit({"t": "clear", "wait": bool(wait)}):
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
        payload = {"t": "result", "data": {}, "metadata": {}}
        try:
            payload["data"] = _bundle(format_dict)
            payload["metadata"] = dict(md_dict or {})
            if _state["value"] is not None:
                payload["value"] = _state["value"][0]
        except Exception:
            pass
        _state["value"] = None
        if payload["data"]:
            emit(payload)
        return orig_write(format_dict, md_dict)

    write_format_data.__kb_shim_original__ = orig_write
    hook.write_format_data = write_format_data
    if orig_fill is not None:
        orig_fill = _original(orig_fill)

        def fill_exec_result(result):
            _state["value"] = (result,) if _primitive(result) else None
            return orig_fill(result)

        fill_exec_result.__kb_shim_original__ = orig_fill
        hook.fill_exec_result = fill_exec_result

    # `obj?` help goes to the frontend's pager, as in ipykernel [INF: the service's
    # kernel accepts a show_in_pager hook like any IPython shell].
    if not getattr(ip, "_kb_pager_hooked", False):
        try:
            from IPython.core import page as ipy_page

            def _pager(strng, start=0, screen_lines=0, pager_cmd=None):
                data = strng if isinstance(strng, dict) else {"text/plain": str(strng)}
                frame = {"t": "page", "data": _bundle(data), "start": int(start or 0)}
                if not emit(frame):
                    print(data.get("text/plain", ""))

            ip.set_hook("show_in_pager", ipy_page.as_hook(_pager), 10)
            ip._kb_pager_hooked = True
        except Exception:
            pass


def _format(obj, include=None, exclude=None):
    data, metadata = {}, {}
    cls = type(obj)
    if not isinstance(obj, type):
        method = getattr(cls, "_repr_mimebundle_", None)
        if method is not None:
            try:
                bundle = obj._repr_mimebundle_(include=include, exclude=exclude)
                if isinstance(bundle, tuple):
                    bundle, md = bundle[0], (bundle[1] if len(bundle) > 1 else {})
                    if isinstance(md, dict):
                        metadata.update(md)
                if isinstance(bundle, dict):
                    data.update(bundle)
            except Exception:
                pass
        for name, mime in _REPR_METHODS:
            if mime in data or getattr(cls, name, None) is None:
                continue
            try:
                value = getattr(obj, name)()
            except Exception:
                continue
            if value is None:
                continue
            if isinstance(value, tuple) and len(value) == 2:
                value, md = value
                if isinstance(md, dict):
                    metadata[mime] = md
            data[mime] = value
    if "text/plain" not in data:
        try:
            data["text/plain"] = repr(obj)
        except Exception as exc:
            data["text/plain"] = "<%s object (repr failed: %s)>" % (
                cls.__name__, type(exc).__name__)
    if include:
        data = {k: v for k, v in data.items() if k in include or k == "text/plain"}
    if exclude:
        data = {k: v for k, v in data.items() if k not in exclude}
    return _bundle(data), metadata


_REPR_METHODS = (
    ("_repr_html_", "text/html"),
    ("_repr_markdown_", "text/markdown"),
    ("_repr_svg_", "image/svg+xml"),
    ("_repr_png_", "image/png"),
    ("_repr_jpeg_", "image/jpeg"),
    ("_repr_latex_", "text/latex"),
    ("_repr_json_", "application/json"),
    ("_repr_javascript_", "application/javascript"),
    ("_repr_pdf_", "application/pdf"),
)


class DisplayHandle(object):
    """A handle on a display with a display_id (what display(display_id=...) returns)."""

    def __init__(self, display_id=None):
        if display_id is None or display_id is True:
            display_id = os.urandom(16).hex()
        self.display_id = display_id

    def __repr__(self):
        return "<DisplayHandle display_id=%s>" % (self.display_id,)

    def display(self, obj, **kwargs):
        """Show obj in a new output tied to this display_id."""
        display(obj, display_id=self.display_id, **kwargs)

    def update(self, obj, **kwargs):
        """Replace every output tied to this display_id with obj."""
        display(obj, display_id=self.display_id, update=True, **kwargs)


def display(*objs, include=None, exclude=None, metadata=None, transient=None,
            display_id=None, raw=False, clear=False, update=False, **kwargs):
    """Show objs as rich outputs (IPython.display.display-compatible)."""
    if transient and not display_id:
        display_id = transient.get("display_id")
    if update and not display_id:
        raise TypeError("display_id required for update_display")
    handle = None
    if display_id:
        handle = display_id if isinstance(display_id, DisplayHandle) else DisplayHandle(display_id)
        display_id = handle.display_id
    if clear:
        clear_output(wait=True)
    for obj in objs:
        if raw:
            data, md = _bundle(obj), {}
        else:
            data, md = _format(obj, include=include, exclude=exclude)
        if metadata:
            md = dict(md)
            md.update(metadata)
        frame = {"t": "display", "data": data, "metadata": md,
                 "display_id": display_id, "update": bool(update)}
        if not emit(frame) and _plain_originals.get("display") is not None:
            _plain_originals["display"](obj, metadata=metadata, display_id=display_id,
                                        raw=raw, update=update)
    return handle


def update_display(obj, display_id=None, **kwargs):
    """Update the outputs tied to display_id with obj."""
    kwargs.pop("update", None)
    return display(obj, display_id=display_id, update=True, **kwargs)


def clear_output(wait=False):
    """Clear the cell's output (now, or when the next output arrives)."""
    if not emit({"t": "clear", "wait": bool(wait)}):
        original = _plain_originals.get("clear_output")
        if original is not None:
            original(wait)


_plain_originals = {}


def _install_plain():
    ours = {"display": display, "update_display": update_display,
            "clear_output": clear_output}
    helper = sys.modules.get("kb_display")
    for name, func in ours.items():
        current = getattr(builtins, name, None)
        if current is None or current is func:
            continue
        _plain_originals[name] = _original(current)
        setattr(builtins, name, func)
        if helper is not None and getattr(helper, name, None) is current:
            setattr(helper, name, func)


def result(value):
    """Frame the value of a cell's last expression (plain Python); returns None."""
    if value is None:
        return None
    builtins._ = value
    try:
        sys._getframe(1).f_globals["_"] = value
    except Exception:
        pass
    try:
        data, md = _format(value)
        payload = {"t": "result", "data": data, "metadata": md}
        if _primitive(value):
            payload["value"] = value
    except Exception:
        return value
    if not emit(payload):
        return value
    return None


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
    if _state["mode"] is None:
        ip = _get_ipython()
        if ip is not None:
            _install_ipython(ip)
            _state["mode"] = "ipython"
        else:
            _install_plain()
            _state["mode"] = "plain"
    emit({"t": "hello", "mode": _state["mode"], "version": VERSION})
    return _state["mode"]
'''.replace("@VERSION@", str(SHIM_VERSION))

# Runs in a throw-away globals dict, so no name lands in the user namespace.
_BOOT = """\
import sys, types
m = sys.modules.get({module!r})
if m is None or getattr(m, 'VERSION', None) != {version!r}:
    m = types.ModuleType({module!r})
    exec(compile({body!r}, '<kernel_bridge output shim>', 'exec'), m.__dict__)
    sys.modules[{module!r}] = m
m.install({nonce!r})
"""


def new_nonce() -> str:
    """A fresh random nonce (32 hex digits) for one session start."""
    return secrets.token_hex(16)


def shim_setup_code(nonce: str) -> str:
    """Session-setup code that installs the shim with ``nonce``; it never raises."""
    boot = _BOOT.format(module=SHIM_MODULE, version=SHIM_VERSION, body=_SHIM_BODY, nonce=nonce)
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
