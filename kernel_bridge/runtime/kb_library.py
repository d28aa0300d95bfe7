# ruff: noqa: SIM105
# (stdlib only, Python 3.8+: no itertools.pairwise, no zip(strict=))
"""kernel_bridge's in-session library: the code that runs where the cells run.

Both places that run cells load this one file, so a user sees the same rich output,
completion and inspection everywhere:

- the runtime (``kb_runtime.py``, for the local and Docker executors) imports it as
  ``kb_library`` (the bootstrap program puts it in ``sys.modules`` first; run as a file,
  the runtime finds it next to itself);
- the ACA executor sends its source into the session at session start (see
  ``kernel_bridge/executors/aca/_shim.py``), as the module ``_kernel_bridge_library``.

Nothing here knows how outputs travel. Whoever loads the library puts a *publisher* in
``_STATE["runtime"]``: an object with ``publish_display(data, metadata, display_id,
update)``, ``publish_clear(wait)``, ``publish_result(data, metadata, value)`` and
``publish_page(data, start)``. The runtime's publisher is its ``Runtime`` (messages on
its channel); the ACA session's writes stdout frames (``executors/aca/kb_aca_session.py``).
``_STATE["comm_manager"]`` is the comm manager once :func:`_comm_install` made one.

Sections: rich output (mime bundles from ``_repr_*_`` methods, ``display()`` and
friends, the pager), cursor helpers, completion and inspection, comms.
"""

import base64
import builtins
import inspect
import json
import os
import re
import sys
import threading
import traceback
import types

_STATE = {}
"""What the loader set: ``runtime`` (the publisher), ``comm_manager``, and its own keys."""
_THIS_FILE = (lambda: None).__code__.co_filename
_TEXT_MIME_RE = re.compile(r"^(text/|application/(.*\+)?(json|javascript|xml|x-latex))|svg")

# ---------------------------------------------------------------------------------------
# rich output (the plain-Python path; with IPython, its formatters make the bundles)


class _Base64(str):
    """Base64 text made here from binary MIME data (no newline, nothing to escape).

    The runtime sends large ones after their message's line instead of inside it; for
    everyone else it is an ordinary string.
    """

    __slots__ = ()


def _encode_data(data):
    """Make a mime bundle JSON-ready: bytes become base64 (binary) or text."""
    out = {}
    for key, value in data.items():
        if isinstance(value, (bytes, bytearray)):
            if _TEXT_MIME_RE.search(key):
                value = bytes(value).decode("utf-8", "replace")
            else:
                value = _Base64(base64.b64encode(bytes(value)).decode("ascii"))
        out[str(key)] = value
    return out


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


def _safe_repr(obj):
    try:
        return repr(obj)
    except Exception as exc:
        return "<%s object (repr failed: %s)>" % (type(obj).__name__, type(exc).__name__)


def _report_repr_error(name):
    try:
        sys.stderr.write("Exception in %s:\n%s" % (name, traceback.format_exc()))
    except Exception:
        pass


def _format_plain(obj, include=None, exclude=None):
    """Return (data, metadata) for obj from repr and its _repr_*_ methods."""
    data = {}
    metadata = {}
    if not inspect.isclass(obj):
        cls = type(obj)
        if getattr(cls, "_repr_mimebundle_", None) is not None:
            try:
                bundle = obj._repr_mimebundle_(include=include, exclude=exclude)
                md = {}
                if isinstance(bundle, tuple):
                    bundle, md = bundle[0], (bundle[1] if len(bundle) > 1 else {})
                if isinstance(bundle, dict):
                    data.update(bundle)
                if isinstance(md, dict):
                    metadata.update(md)
            except Exception:
                _report_repr_error("_repr_mimebundle_")
        for method, mime in _REPR_METHODS:
            if mime in data or getattr(cls, method, None) is None:
                continue
            try:
                value = getattr(obj, method)()
            except Exception:
                _report_repr_error(method)
                continue
            if value is None:
                continue
            if isinstance(value, tuple) and len(value) == 2:
                value, md = value
                if isinstance(md, dict):
                    metadata[mime] = md
            data[mime] = value
    if "text/plain" not in data:
        data["text/plain"] = _safe_repr(obj)
    if include:
        data = {k: v for k, v in data.items() if k in include or k == "text/plain"}
    if exclude:
        data = {k: v for k, v in data.items() if k not in exclude}
    return _encode_data(data), metadata


def _value_json(value):
    if value is None or type(value) in (bool, int, float):
        if type(value) is float and (value != value or value in (float("inf"), float("-inf"))):
            return False, None
        try:
            json.dumps(value)
        except (ValueError, OverflowError):
            return False, None
        return True, value
    return False, None


class DisplayHandle:
    """A handle on a display with a display_id (returned by display(display_id=...))."""

    def __init__(self, display_id=None):
        if display_id is None or display_id is True:
            display_id = os.urandom(16).hex()
        self.display_id = display_id

    def __repr__(self):
        return "<%s display_id=%s>" % (self.__class__.__name__, self.display_id)

    def display(self, obj, **kwargs):
        """Show obj in a new output tied to this display_id."""
        display(obj, display_id=self.display_id, **kwargs)

    def update(self, obj, **kwargs):
        """Replace every output tied to this display_id with obj."""
        display(obj, display_id=self.display_id, update=True, **kwargs)


def display(
    *objs,
    include=None,
    exclude=None,
    metadata=None,
    transient=None,
    display_id=None,
    raw=False,
    clear=False,
    update=False,
    **kwargs,
):
    """Send rich display messages for objs (IPython.display.display-compatible)."""
    runtime = _STATE.get("runtime")
    if transient and not display_id:
        display_id = transient.get("display_id")
    if update and not display_id:
        raise TypeError("display_id required for update")
    handle = None
    if display_id:
        handle = display_id if isinstance(display_id, DisplayHandle) else DisplayHandle(display_id)
        display_id = handle.display_id
    if clear:
        clear_output(wait=True)
    if runtime is None:
        for obj in objs:
            print(_safe_repr(obj))
        return handle
    for obj in objs:
        if raw:
            data, md = _encode_data(dict(obj)), {}
        else:
            data, md = _format_plain(obj, include=include, exclude=exclude)
        if metadata:
            md = dict(md)
            md.update(metadata)
        runtime.publish_display(data, md, display_id, update)
    return handle


def update_display(obj, display_id=None, **kwargs):
    """Update the outputs tied to display_id with obj."""
    kwargs.pop("update", None)
    return display(obj, display_id=display_id, update=True, **kwargs)


def clear_output(wait=False):
    """Clear the cell's output (now, or at the next output when wait=True)."""
    runtime = _STATE.get("runtime")
    if runtime is not None:
        runtime.publish_clear(wait)


class _MimeObject:
    def __init__(self, data=None, url=None, filename=None, metadata=None):
        if data is None and filename is not None:
            with open(filename, "rb" if self.binary else "r") as f:
                data = f.read()
        self.data = data
        self.metadata = metadata

    binary = False


def _make_display_module():
    mod = types.ModuleType("kb_display")
    mod.__doc__ = "Minimal IPython.display-compatible helpers of the kernel_bridge runtime."

    def _simple(mime, method, binary=False):
        class _Obj(_MimeObject):
            pass

        _Obj.binary = binary

        def _repr(self):
            return self.data

        setattr(_Obj, method, _repr)
        return _Obj

    mod.display = display
    mod.update_display = update_display
    mod.clear_output = clear_output
    mod.DisplayHandle = DisplayHandle
    mod.HTML = _simple("text/html", "_repr_html_")
    mod.Markdown = _simple("text/markdown", "_repr_markdown_")
    mod.SVG = _simple("image/svg+xml", "_repr_svg_")
    mod.Latex = _simple("text/latex", "_repr_latex_")
    mod.JSON = _simple("application/json", "_repr_json_")
    mod.Javascript = _simple("application/javascript", "_repr_javascript_")
    png = _simple("image/png", "_repr_png_", binary=True)
    jpeg = _simple("image/jpeg", "_repr_jpeg_", binary=True)

    def Image(data=None, url=None, filename=None, format=None, metadata=None, **kw):
        fmt = (format or (filename or "").rsplit(".", 1)[-1] or "png").lower()
        cls = jpeg if fmt in ("jpg", "jpeg") else png
        return cls(data=data, url=url, filename=filename, metadata=metadata)

    mod.Image = Image
    return mod


def page(strng, start=0, screen_lines=0, pager_cmd=None):
    """IPython's ``show_in_pager`` hook (``obj?``): the help goes to the frontend's pager."""
    data = strng if isinstance(strng, dict) else {"text/plain": str(strng)}
    _STATE["runtime"].publish_page(_encode_data(data), start)


# ---------------------------------------------------------------------------------------
# cursor helpers


_NAME_RE = re.compile(r"[A-Za-z_][\w.]*$")


def _line_at_cursor(code, cursor_pos):
    start = code.rfind("\n", 0, cursor_pos) + 1
    end = code.find("\n", cursor_pos)
    if end < 0:
        end = len(code)
    return code[start:end], start


def _token_at_cursor(code, cursor_pos):
    """The dotted name at the cursor, or the called name when the cursor is in a call."""
    cursor_pos = max(0, min(cursor_pos, len(code)))
    m = re.match(r"\w*", code[cursor_pos:])
    end = cursor_pos + (m.end() if m else 0)
    m = _NAME_RE.search(code[:end])
    if m and m.group(0).strip("."):
        return m.group(0).strip(".")
    depth = 0
    for i in range(cursor_pos - 1, -1, -1):
        ch = code[i]
        if ch == ")":
            depth += 1
        elif ch == "(":
            if depth == 0:
                m = _NAME_RE.search(code[:i].rstrip())
                return m.group(0).strip(".") if m else ""
            depth -= 1
    return ""


_HELP_QUERY = re.compile(r"^\s*(?:([A-Za-z_][\w.]*)(\?\??)|(\?\??)([A-Za-z_][\w.]*))\s*$")
"""A cell that only asks for help (IPython's ``obj?`` syntax)."""


def _resolve(name, namespace):
    parts = name.split(".")
    if parts[0] in namespace:
        obj = namespace[parts[0]]
    elif hasattr(builtins, parts[0]):
        obj = getattr(builtins, parts[0])
    else:
        raise KeyError(name)
    for part in parts[1:]:
        try:
            obj = getattr(obj, part)
        except Exception:
            raise KeyError(name) from None
    return obj


def _plain_inspect_text(name, obj, detail_level):
    lines = []
    lines.append("Name:      %s" % name)
    lines.append("Type:      %s" % type(obj).__name__)
    text = _safe_repr(obj)
    if len(text) > 2000:
        text = text[:2000] + "..."
    lines.append("String form: %s" % text)
    if callable(obj):
        try:
            lines.append("Signature: %s%s" % (name.rsplit(".", 1)[-1], inspect.signature(obj)))
        except (TypeError, ValueError):
            pass
    try:
        doc = inspect.getdoc(obj)
    except Exception:
        doc = None
    if doc:
        lines.append("Docstring:\n" + doc)
    if detail_level and detail_level > 0:
        try:
            source = inspect.getsource(obj)
            lines.append("Source:\n" + source)
        except Exception:
            pass
        try:
            lines.append("File:      %s" % inspect.getfile(obj))
        except Exception:
            pass
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------
# completion and inspection

# jedi must not run in two threads at once, even where two copies of this library live in
# one process (an ACA session emulated by kernel_bridge's own runtime): one lock a process.
_COMPLETER_WARMING = sys.__dict__.setdefault("_kb_completer_lock", threading.Lock())
"""Held while jedi warms up in the background (the runtime's warm-up); completion waits."""
# the longest a completion waits for the warm-up; after that it completes anyway
_COMPLETER_WARM_UP_WAIT = 10.0


def complete_request(shell, namespace, msg):
    """Answer a completion request (``code``, ``cursor_pos``): IPython's completer where
    ``shell`` is an IPython shell, else rlcompleter over ``namespace``."""
    code = msg.get("code") or ""
    cursor_pos = msg.get("cursor_pos")
    if cursor_pos is None:
        cursor_pos = len(code)
    line, offset = _line_at_cursor(code, cursor_pos)
    line_cursor = cursor_pos - offset
    if shell is not None:
        return _complete_ipython(shell, code, cursor_pos, line, line_cursor)
    import rlcompleter

    m = re.search(r"[\w.]*$", line[:line_cursor])
    text = m.group(0) if m else ""
    matches = []
    if text:
        completer = rlcompleter.Completer(namespace)
        state = 0
        while state < 10000:
            match = completer.complete(text, state)
            if match is None:
                break
            match = match.rstrip("( ")
            if match not in matches:
                matches.append(match)
            state += 1
    return {
        "matches": matches,
        "cursor_start": cursor_pos - len(text),
        "cursor_end": cursor_pos,
        "metadata": {},
    }


def _complete_ipython(shell, code, cursor_pos, line, line_cursor):
    waited = _COMPLETER_WARMING.acquire(timeout=_COMPLETER_WARM_UP_WAIT)
    try:
        return _complete_with_shell(shell, code, cursor_pos, line, line_cursor)
    finally:
        if waited:
            _COMPLETER_WARMING.release()


def _complete_with_shell(shell, code, cursor_pos, line, line_cursor):
    try:
        from IPython.core.completer import provisionalcompleter, rectify_completions

        with provisionalcompleter():
            raw = shell.Completer.completions(code, cursor_pos)
            comps = list(rectify_completions(code, raw))
    except Exception:
        txt, matches = shell.complete("", line, line_cursor)
        return {
            "matches": list(matches),
            "cursor_start": cursor_pos - len(txt),
            "cursor_end": cursor_pos,
            "metadata": {},
        }
    if not comps:
        return {
            "matches": [],
            "cursor_start": cursor_pos,
            "cursor_end": cursor_pos,
            "metadata": {},
        }
    types_ = [
        {
            "start": c.start,
            "end": c.end,
            "text": c.text,
            "type": c.type,
            "signature": c.signature,
        }
        for c in comps
    ]
    return {
        "matches": [c.text for c in comps],
        "cursor_start": comps[0].start,
        "cursor_end": comps[0].end,
        "metadata": {"_jupyter_types_experimental": types_},
    }


def inspect_request(shell, namespace, msg):
    """Answer an inspection request (``code``, ``cursor_pos``, ``detail_level``): IPython's
    ``object_inspect_mime`` where ``shell`` is an IPython shell, else repr, signature and
    docstring of the name in ``namespace`` as text."""
    code = msg.get("code") or ""
    cursor_pos = msg.get("cursor_pos")
    if cursor_pos is None:
        cursor_pos = len(code)
    detail = int(msg.get("detail_level") or 0)
    if shell is not None:
        from IPython.utils.tokenutil import token_at_cursor

        name = token_at_cursor(code, cursor_pos)
        try:
            bundle = shell.object_inspect_mime(name, detail_level=detail)
        except KeyError:
            return {"found": False, "data": {}, "metadata": {}}
        bundle = dict(bundle)
        if not getattr(shell, "enable_html_pager", False):
            bundle.pop("text/html", None)
        return {"found": True, "data": _encode_data(bundle), "metadata": {}}
    name = _token_at_cursor(code, cursor_pos)
    if not name:
        return {"found": False, "data": {}, "metadata": {}}
    try:
        obj = _resolve(name, namespace)
    except KeyError:
        return {"found": False, "data": {}, "metadata": {}}
    return {
        "found": True,
        "data": {"text/plain": _plain_inspect_text(name, obj, detail)},
        "metadata": {},
    }


# ---------------------------------------------------------------------------------------
# comms (widgets): a comm manager whose comms send through the loader's function


def _encode_buffers(buffers):
    out = []
    for buf in buffers or ():
        try:
            out.append(base64.b64encode(bytes(memoryview(buf))).decode("ascii"))
        except TypeError:
            out.append(base64.b64encode(str(buf).encode("utf-8")).decode("ascii"))
    return out


def _comm_install(on_create, publish, make_log_handler):
    """Install a comm manager and ``comm.create_comm`` where the ``comm`` package exists.

    ``on_create(comm)`` runs as a comm is made (before it opens); ``publish(comm,
    msg_type, content, metadata, buffers)`` sends one of its messages. Handler failures
    are logged to ``make_log_handler()`` (never the user's stderr, as in ipykernel).
    Returns the manager (also ``_STATE["comm_manager"]``), or None without ``comm``.
    """
    import logging

    try:
        import comm
        from comm.base_comm import BaseComm, CommManager
    except Exception:
        return None
    manager = CommManager()

    class KBComm(BaseComm):
        """A comm whose messages go where the loader's ``publish`` sends them."""

        def __init__(self, *args, **kwargs):
            on_create(self)
            super().__init__(*args, **kwargs)

        def publish_msg(self, msg_type, data=None, metadata=None, buffers=None, **keys):
            content = dict(keys, data={} if data is None else data, comm_id=self.comm_id)
            publish(self, msg_type, content, metadata or {}, buffers)

    def create_comm(*args, **kwargs):
        return KBComm(*args, **kwargs)

    comm.create_comm = create_comm
    comm.get_comm_manager = lambda: manager
    _STATE["comm_manager"] = manager
    log = logging.getLogger("Comm")
    log.propagate = False
    log.addHandler(make_log_handler())
    return manager


def _wire_message(msg):
    """A frontend comm message (``msg_type``, ``content``, ``metadata``, base64 ``buffers``,
    ``parent``) as the Jupyter message comm handlers expect."""
    parent = msg.get("parent") if isinstance(msg.get("parent"), dict) else {}
    buffers = []
    for item in msg.get("buffers") or ():
        try:
            buffers.append(memoryview(base64.b64decode(str(item))))
        except (ValueError, TypeError):
            buffers.append(memoryview(b""))
    msg_type = str(msg.get("msg_type") or "")
    return {
        "header": dict(parent, msg_type=msg_type),
        "msg_id": parent.get("msg_id"),
        "msg_type": msg_type,
        "parent_header": {},
        "content": msg.get("content") if isinstance(msg.get("content"), dict) else {},
        "metadata": msg.get("metadata") if isinstance(msg.get("metadata"), dict) else {},
        "buffers": buffers,
    }


def _open_comms(target):
    """The open comms (of one target, or all): ``{comm_id: {"target_name": ...}}``."""
    manager = _STATE.get("comm_manager")
    comms = {}
    if manager is not None:
        for comm_id, comm_obj in list(manager.comms.items()):
            name = getattr(comm_obj, "target_name", "")
            if not target or name == target:
                comms[comm_id] = {"target_name": name}
    return comms
