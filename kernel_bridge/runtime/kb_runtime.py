# ruff: noqa: SIM105, SIM115, B905, RUF007
# (stdlib only, Python 3.8+: no itertools.pairwise, no zip(strict=))
"""kernel_bridge runtime: runs notebook code where the code lives.

One standard-library-only file (Python 3.8+).  It speaks the NDJSON protocol described
in docs/runtime-protocol.md over private copies of the process's original stdin and
stdout, and turns everything written to fd 1/2 into ``stream`` messages while code runs.
Start it with ``python3 -u kb_runtime.py [--cwd DIR] [--linger] [--protocol-socket PATH]``
or through the bootstrap program (see kernel_bridge.runtime.BOOTSTRAP_CODE).
"""

import ast
import base64
import builtins
import codecs
import fcntl
import inspect
import io
import json
import linecache
import os
import queue
import select
import shutil
import signal
import struct
import subprocess
import sys
import termios
import threading
import time
import traceback
import types

import kb_library as _lib  # the bootstrap loaded it; run as a file, it is next to this one
from kb_library import (
    _COMPLETER_WARM_UP_WAIT,
    _COMPLETER_WARMING,
    _HELP_QUERY,
    _encode_buffers,
    _encode_data,
    _format_plain,
    _make_display_module,
    _open_comms,
    _plain_inspect_text,
    _resolve,
    _safe_repr,
    _value_json,
    _wire_message,
    clear_output,
    complete_request,
    display,
    inspect_request,
    page,
    update_display,
)

PROTOCOL_VERSION = 1
_READ_SIZE = 65536
_COALESCE = 0.002
_SMALL_READ = 16384
"""A read shorter than this comes from a chatty writer: the reader pauses to coalesce."""
_NEVER = float("inf")
_monotonic = time.monotonic  # looked up once: _FdWriter.write calls it on every write
_THIS_FILE = (lambda: None).__code__.co_filename
_SHELLS = ("bash", "sh", "shell")
_POWERSHELLS = ("pwsh", "powershell", "ps1")
_EOF_MESSAGE = (
    "stdin is not available from this frontend: input() cannot be answered here "
    "(the notebook client did not allow stdin)"
)


def _diag(text):
    """Write a diagnostic line to the runtime's own stderr (never the protocol)."""
    try:
        fd = _STATE.get("diag_fd", 2)
        os.write(fd, ("kb_runtime: " + text.rstrip("\n") + "\n").encode("utf-8", "replace"))
    except Exception:
        pass


_STATE = {}


def _write_all(fd, data):
    view = memoryview(data)
    while view:
        try:
            n = os.write(fd, view)
        except InterruptedError:
            continue
        view = view[n:]


def _json_line(msg):
    # ensure_ascii=True: CPython's ASCII encoder is about three times faster on large
    # strings (a 1 MB image is a 1.3 MB base64 string), and the result needs no UTF-8
    # encoding step; lone surrogates in user text survive as \udXXX escapes.
    msg, attached = _detach_base64(msg)
    try:
        text = json.dumps(msg, ensure_ascii=True, separators=(",", ":"), default=_json_default)
        line = (text + "\n").encode("ascii")
        return b"".join([line, *attached]) if attached else line
    except Exception as exc:  # last resort: say what failed, keep the protocol alive
        fallback = {"type": msg.get("type", "error"), "id": msg.get("id")}
        if msg.get("type") == "stream":
            fallback.update(name=msg.get("name", "stderr"), text="<unencodable output>")
        else:
            _diag("could not encode message %r: %r" % (msg.get("type"), exc))
            if msg.get("type") not in ("done", "reply", "ready"):
                return b""
            for key in ("status", "exit_code", "matches", "cursor_start", "cursor_end"):
                if key in msg:
                    fallback[key] = msg[key]
        return (json.dumps(fallback) + "\n").encode("ascii")


_ATTACH_MIN = 65536
"""Base64 MIME values at least this long travel after their message's line (see below)."""
_ATTACHING_TYPES = ("display", "result")


# the in-session library marks the base64 text it makes from binary MIME data
_Base64 = _lib._Base64


def _detach_base64(msg):
    """Move large base64 values of a display/result bundle out of the JSON line.

    They follow the line as raw lines of their own, named by ``attachments``
    (docs/runtime-protocol.md): neither side then JSON-encodes or parses a megabyte
    string, the host keeps the text as it is.
    """
    if msg.get("type") not in _ATTACHING_TYPES:
        return msg, None
    data = msg.get("data")
    if not isinstance(data, dict):
        return msg, None
    keys = [k for k, v in data.items() if type(v) is _Base64 and len(v) >= _ATTACH_MIN]
    if not keys:
        return msg, None
    rest = dict(data)
    attached = []
    for key in keys:
        value = rest.pop(key)
        attached.append(value.encode("ascii") + b"\n")
    msg = dict(msg, data=rest, attachments=[[k, len(data[k])] for k in keys])
    return msg, attached


def _json_default(obj):
    if isinstance(obj, (bytes, bytearray)):
        return base64.b64encode(bytes(obj)).decode("ascii")
    if isinstance(obj, (set, frozenset, tuple)):
        return list(obj)
    try:
        return str(obj)
    except Exception:
        return "<unprintable %s>" % type(obj).__name__


class _FdWriter(io.RawIOBase):
    """A raw writer that always writes everything to ``target`` (or, for sys.stdout and
    sys.stderr after a quiet moment, sends it as a stream message itself: _send_now).

    ``fileno()`` reports ``fd`` (1 or 2), the descriptor children inherit, while the
    bytes go to ``target``: the runtime's private copy of the same pipe, which user code
    cannot close or redirect (``os.close(1)`` then ``print`` still shows, as in ipykernel).
    """

    def __init__(self, fd, target=None, stream=None):
        super().__init__()
        self._fd = fd
        self._target = fd if target is None else target
        self._stream = stream  # "stdout"/"stderr": a write may go out as a message at once
        self._sent_ahead = None
        self._channel = _STATE.get("channel") if stream is not None else None

    def writable(self):
        return True

    def fileno(self):
        return self._fd

    def isatty(self):
        return False

    def write(self, data):
        channel = self._channel
        # the cheap test first: a chatty writer (the channel not quiet) pays only this
        if channel is not None and (
            self._sent_ahead is not None or _monotonic() >= channel.quiet_at
        ):
            return self._write_stream(data)
        _write_all(self._target, data)
        return len(data)

    def _write_stream(self, data):
        ahead = self._sent_ahead
        if ahead is not None:
            self._sent_ahead = None
            if data[: len(ahead)] == ahead:  # already sent: see _send_now
                _write_all(self._target, data[len(ahead) :])
                return len(data)
        if not self._send_now(data):
            _write_all(self._target, data)
        return len(data)

    def _send_now(self, data):
        """Send ``data`` as a stream message from this thread when the channel allows it.

        In the main thread an interrupt during the send is deferred (a message is never
        cut) and raised after it; for stdout the bytes are remembered, because the
        BufferedWriter keeps what a failed raw write was given and offers it again.
        """
        runtime = _STATE.get("runtime")
        if runtime is None:
            return False
        if threading.get_ident() != runtime.main_ident:
            return runtime.channel.send_now(self._stream, data)
        runtime.critical += 1
        try:
            sent = runtime.channel.send_now(self._stream, data)
        finally:
            runtime.critical -= 1
        if sent and runtime.pending_interrupt and runtime.critical == 0 and runtime.busy:
            runtime.pending_interrupt = False
            if self._stream == "stdout":
                self._sent_ahead = bytes(data)
            raise KeyboardInterrupt
        return sent


_STDOUT_FLUSH_INTERVAL = 0.01
"""Seconds buffered stdout may wait before the flusher thread sends it (while a cell runs)."""


class _StderrText(io.TextIOWrapper):
    """Line-buffered stderr that first flushes stdout, so the two keep their order."""

    def write(self, text):
        out = _STATE.get("stdout")
        if out is not None and out is not self:
            try:
                out.flush()
            except Exception:
                pass
            _stdout_before_stderr()
        return super().write(text)


def _stdout_before_stderr():
    """Wait until stdout already in its pipe is forwarded, so stderr cannot overtake it.

    The two pipes are read by one thread; without this, stderr written right after
    ``sys.stdout.flush()`` could be read first.
    """
    runtime = _STATE.get("runtime")
    if runtime is None:
        return
    if threading.get_ident() != runtime.main_ident:
        runtime.channel.drain()
        return
    runtime.critical += 1  # an interrupt now is deferred, not raised inside the drain
    try:
        runtime.channel.drain()
    finally:
        runtime.critical -= 1
    if runtime.pending_interrupt and runtime.critical == 0 and runtime.busy:
        runtime.pending_interrupt = False
        raise KeyboardInterrupt


def _text_stream(fd):
    """sys.stdout/sys.stderr for fd 1/2.

    stdout is block-buffered (64 KiB) and flushed by a background thread every 10 ms
    while code runs, and before every protocol message: a print costs no system call,
    and 10 MB of output moves in large chunks. stderr stays line-buffered.
    """
    target = _STATE.get("std_targets", {}).get(fd, fd)
    if fd == 1:
        stream = io.TextIOWrapper(
            io.BufferedWriter(_FdWriter(fd, target, "stdout"), 65536),
            encoding="utf-8",
            errors="replace",
            line_buffering=False,
            write_through=True,
        )
        _STATE["stdout"] = stream
        return stream
    return _StderrText(
        _FdWriter(fd, target, "stderr"),
        encoding="utf-8",
        errors="replace",
        line_buffering=True,
        write_through=False,
    )


def _start_stdout_flusher(active):
    """Flush sys.stdout every few ms while ``active`` (a threading.Event) is set."""

    def run():
        while True:
            active.wait()
            time.sleep(_STDOUT_FLUSH_INTERVAL)
            # The BufferedWriter has its own lock; with write_through the text layer
            # holds nothing between writes, so flushing it from here is safe.
            stream = _STATE.get("stdout")
            try:
                if stream is not None and not stream.closed:
                    stream.buffer.flush()
            except Exception:
                pass

    thread = threading.Thread(target=run, name="kb-stdout-flush", daemon=True)
    thread.start()


def _pipe_pending(r):
    """Bytes waiting in pipe ``r`` (0 when that cannot be told)."""
    buf = bytearray(4)
    try:
        fcntl.ioctl(r, termios.FIONREAD, buf, True)
        return struct.unpack("i", bytes(buf))[0]
    except OSError:
        return 0


class _Channel:
    """The protocol channel plus the fd 1/2 pipe forwarder."""

    def __init__(self, in_fd, out_fd, prefix):
        self.in_fd = in_fd
        self.out_fd = out_fd
        self.prefix = prefix
        self.write_lock = threading.Lock()
        self.dead = False
        self.owner_pid = os.getpid()
        # Pipes for fd 1 and fd 2.
        self.pipes = {}
        self.cond = threading.Condition(threading.Lock())
        self.read_counts = {}
        self.decoders = {}
        self.readers = {}  # "stdout"/"stderr" -> read end of its pipe
        self.last_send = 0.0  # time.monotonic() of the last stream message
        # No write is sent directly before this time (see send_now): never while the
        # kb-output thread reads or coalesces, else _COALESCE after the last stream
        # message or after a try that found output waiting in a pipe.
        self.quiet_at = _NEVER

    def send(self, msg):
        """Write one message line; the whole line under the write lock."""
        if self.dead or os.getpid() != self.owner_pid:
            return  # a process forked by user code never speaks the protocol
        data = _json_line(msg)
        if not data:
            return
        with self.write_lock:
            try:
                _write_all(self.out_fd, data)
            except OSError as exc:
                self.dead = True
                _diag("protocol output closed (%s)" % exc)

    # ---- fd 1/2 forwarding -------------------------------------------------------
    def setup_pipes(self):
        for fd, name in ((1, "stdout"), (2, "stderr")):
            r, w = os.pipe()
            os.dup2(w, fd)  # fd 1/2 are inheritable: children write into the pipes
            keep = w  # private, non-inheritable write end (for re-pointing fd 1/2)
            st = os.fstat(w)
            self.pipes[name] = (r, keep, fd, (st.st_dev, st.st_ino))
            _STATE.setdefault("std_targets", {})[fd] = keep
            self.read_counts[r] = 0
            self.decoders[r] = codecs.getincrementaldecoder("utf-8")(errors="replace")
            self.readers[name] = r
        t = threading.Thread(target=self._pump, name="kb-output", daemon=True)
        t.start()

    def send_now(self, name, data):
        """Send a write to sys.stdout/sys.stderr as a stream message from the writing thread.

        Called by _FdWriter when sys.stdout/sys.stderr's bytes reach it (a flush, a full
        buffer, a line to stderr). Only after a quiet moment: both
        pipes empty (nothing written earlier at fd level, by a child or C code, could be
        overtaken), no partial character held by a decoder, no stream message within
        _COALESCE (a chatty writer keeps going through the pipe, where the kb-output
        thread coalesces it), and neither lock busy (the kb-output thread is forwarding,
        or this very thread is inside a send, e.g. a signal handler printing). Returns
        False when the bytes must go through the pipe as before.
        """
        if self.dead or len(data) > _READ_SIZE or os.getpid() != self.owner_pid:
            return False
        if not self.cond.acquire(False):
            return False
        try:
            for r in self.readers.values():
                if _pipe_pending(r) or self.decoders[r].getstate()[0]:
                    # the kb-output thread has work: until it is done (or _COALESCE has
                    # passed), further writes go to the pipe without asking again
                    self.quiet_at = time.monotonic() + _COALESCE
                    return False
            if not self.write_lock.acquire(False):
                return False
            try:
                text = self.decoders[self.readers[name]].decode(bytes(data))
                if text:
                    line = _json_line({"type": "stream", "name": name, "text": text})
                    try:
                        _write_all(self.out_fd, line)
                    except OSError as exc:
                        self.dead = True
                        _diag("protocol output closed (%s)" % exc)
            finally:
                self.write_lock.release()
            self.last_send = time.monotonic()
            self.quiet_at = self.last_send + _COALESCE
            return True
        finally:
            self.cond.release()

    def repair_fds(self):
        """Point fd 1/2 back at the pipes if user code closed or redirected them."""
        for name in ("stdout", "stderr"):
            _r, keep, fd, ident = self.pipes[name]
            try:
                st = os.fstat(fd)
                if (st.st_dev, st.st_ino) == ident:
                    continue
            except OSError:
                pass
            try:
                os.dup2(keep, fd)
            except OSError as exc:
                _diag("cannot restore fd %d: %s" % (fd, exc))

    def _pump(self):
        names = {}
        poller = select.poll()
        for name, (r, _k, _fd, _i) in self.pipes.items():
            names[r] = name
            poller.register(r, select.POLLIN)
        small = False
        while True:
            # A chatty writer (many small writes) is read at most every _COALESCE seconds,
            # so its output goes out in fewer, larger messages and the writer keeps the
            # GIL; a quiet pipe's first output still goes out at once. Only small reads
            # pause: a busy pipe (large reads) is read again at once, never throttled.
            if small:
                pause = self.last_send + _COALESCE - time.monotonic()
                if pause > 0:
                    time.sleep(pause)
            small = True
            # Waiting for output: a write after a quiet moment may now go out directly
            # (send_now); while this thread reads or pauses to coalesce, none does.
            self.quiet_at = self.last_send + _COALESCE
            try:
                events = poller.poll()
            except InterruptedError:
                continue
            except Exception as exc:  # pragma: no cover - should never happen
                _diag("output poll failed: %r" % exc)
                time.sleep(0.1)
                continue
            finally:
                self.quiet_at = _NEVER
            for fd, _ev in events:
                with self.cond:
                    try:
                        data = os.read(fd, _READ_SIZE)
                    except (BlockingIOError, InterruptedError):
                        continue
                    except OSError as exc:
                        _diag("output read failed: %r" % exc)
                        continue
                    self.read_counts[fd] += len(data)
                    small = small and len(data) < _SMALL_READ
                    text = self.decoders[fd].decode(data)
                    if text:
                        self.send({"type": "stream", "name": names[fd], "text": text})
                    self.cond.notify_all()
                self.last_send = time.monotonic()

    def drain(self):
        """Return once everything written to fd 1/2 so far has been sent as streams."""
        with self.cond:
            targets = []
            for r, _k, _fd, _i in self.pipes.values():
                pending = _pipe_pending(r)
                if pending:
                    targets.append((r, self.read_counts[r] + pending))
            deadline = None
            while targets:
                targets = [(r, n) for r, n in targets if self.read_counts[r] < n]
                if not targets:
                    break
                if deadline is None:
                    deadline = time.monotonic() + 30.0
                elif time.monotonic() > deadline:
                    _diag("output drain timed out")
                    break
                self.cond.wait(1.0)

    # ---- input -------------------------------------------------------------------
    def lines(self):
        """Yield the protocol input lines (bytes), the salvaged prefix first."""
        buf = self.prefix
        self.prefix = b""
        while True:
            nl = buf.find(b"\n")
            while nl >= 0:
                yield buf[:nl]
                buf = buf[nl + 1 :]
                nl = buf.find(b"\n")
            try:
                chunk = os.read(self.in_fd, _READ_SIZE)
            except InterruptedError:
                continue
            except OSError as exc:
                _diag("protocol input failed: %s" % exc)
                chunk = b""
            if not chunk:
                if buf.strip():
                    yield buf
                return
            buf += chunk


def _take_over_stdio():
    """Move the original fd 0/1 to private fds and route fd 1/2 into pipes."""
    prefix = b""
    # The bootstrap read the source through sys.stdin.buffer, which may hold bytes of
    # the first requests already: take them (and only then the fd).
    stdin = getattr(sys, "stdin", None)
    buffer = getattr(stdin, "buffer", None) if stdin is not None else None
    if buffer is not None:
        try:
            fl = fcntl.fcntl(0, fcntl.F_GETFL)
            fcntl.fcntl(0, fcntl.F_SETFL, fl | os.O_NONBLOCK)
            try:
                while True:
                    try:
                        chunk = buffer.read1(_READ_SIZE)
                    except BlockingIOError:
                        break
                    if not chunk:
                        break
                    prefix += chunk
            finally:
                fcntl.fcntl(0, fcntl.F_SETFL, fl)
        except (OSError, ValueError, AttributeError):
            pass
    in_fd = os.dup(0)
    out_fd = os.dup(1)
    diag_fd = os.dup(2)
    _STATE["diag_fd"] = diag_fd
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    return in_fd, out_fd, prefix


def _install_std_streams():
    sys.stdout = _text_stream(1)
    sys.stderr = _text_stream(2)
    try:
        sys.stdin = open(os.devnull, "r")
    except OSError:
        pass


# ---------------------------------------------------------------------------------------
# rich output, the pager, cursor helpers, completion and inspection: kb_library.py, the
# in-session library the ACA session loads too. It publishes through _STATE["runtime"].

_lib._STATE = _STATE
_OWN_FILES = (_THIS_FILE, _lib._THIS_FILE)
"""Frames of these files are left out of a user's traceback."""


def _without_own_frames(tb):
    """``tb`` without the runtime's and the library's frames (relinked in place).

    An interrupt is raised by the SIGINT handler, so without this every interrupted
    cell would end its traceback in ``Runtime._on_sigint``; a user's traceback shows
    the user's code only, as ipykernel's does.
    """
    frames = []
    while tb is not None:
        if tb.tb_frame.f_code.co_filename not in _OWN_FILES:
            frames.append(tb)
        tb = tb.tb_next
    for a, b in zip(frames, frames[1:]):
        a.tb_next = b
    if not frames:
        return None
    frames[-1].tb_next = None
    return frames[0]


# ---------------------------------------------------------------------------------------
# the runtime


class Runtime:
    """The runtime: channel, namespace, request loop."""

    def __init__(self, channel, linger):
        self.channel = channel
        self.linger = linger
        self.requests = queue.Queue()
        self.inputs = queue.Queue()
        self.input_waiting = False
        self.eof = False
        self.busy = False  # True while user Python code runs (KeyboardInterrupt allowed)
        self.cell_running = threading.Event()  # the stdout flusher works while set
        _start_stdout_flusher(self.cell_running)
        self.critical = 0  # > 0 while a protocol message is being written by the main thread
        self.pending_interrupt = False
        self.shell_procs = {}
        self.shell_lock = threading.Lock()
        self.shell_interrupted = None
        self.interrupt_seq = None  # exec_seq of a cell interrupted before its shell started
        self.main_ident = threading.get_ident()
        self.shell = None
        self.namespace = None
        self.cell_count = 0
        self.loop = None
        self.exec_seq = 0
        self.sigint_handler = self._on_sigint
        self.request_parent = None  # Jupyter header of the request served now (comms)
        self.last_parent = None

    # ---- messages ---------------------------------------------------------------
    def send(self, msg):
        """Send from the main thread; an interrupt arriving meanwhile is deferred."""
        self.critical += 1
        try:
            self.channel.send(msg)
        finally:
            self.critical -= 1
        if self.pending_interrupt and self.critical == 0:
            self.pending_interrupt = False
            if self.busy:
                raise KeyboardInterrupt

    def flush_std(self):
        for stream in (sys.stdout, sys.stderr):
            try:
                if stream is not None:
                    stream.flush()
            except Exception:
                pass

    def sync_output(self):
        """Flush and forward all pending fd 1/2 output (keeps messages in order)."""
        self.flush_std()
        self.critical += 1
        try:
            self.channel.drain()
        finally:
            self.critical -= 1
        if self.pending_interrupt and self.critical == 0:
            self.pending_interrupt = False
            if self.busy:
                raise KeyboardInterrupt

    def publish_display(self, data, metadata, display_id, update):
        """Send a display message (called by display() in user code)."""
        self.sync_output()
        self.send(
            {
                "type": "display",
                "data": _drop_dead_widget_views(data),
                "metadata": metadata or {},
                "display_id": display_id or None,
                "update": bool(update),
            }
        )

    def publish_page(self, data, start):
        """Send help text for the frontend's pager (``obj?``)."""
        self.sync_output()
        self.send({"type": "page", "data": data, "start": int(start or 0)})

    def publish_clear(self, wait):
        """Send a clear_output message."""
        self.sync_output()
        self.send({"type": "clear_output", "wait": bool(wait)})

    def publish_result(self, data, metadata, value):
        """Send the result message for the cell's last expression value."""
        self.sync_output()
        msg = {"type": "result", "data": _drop_dead_widget_views(data), "metadata": metadata or {}}
        ok, vj = _value_json(value)
        if ok:
            msg["value_json"] = vj
        self.send(msg)

    def publish_error(self, ename, evalue, tb, shown=True):
        """Send an error message (``shown`` False: for the reply only, not an output)."""
        self.sync_output()
        msg = {"type": "error", "ename": ename, "evalue": evalue, "traceback": tb}
        if not shown:
            msg["shown"] = False
        self.send(msg)

    # ---- signals / interrupts ---------------------------------------------------
    def _on_sigint(self, signum, frame):
        if self.shell_procs:  # a SIGINT from the host while a shell block runs
            self.interrupt_shells()
            return
        if not self.busy:
            return
        if self.critical:
            self.pending_interrupt = True
            return
        raise KeyboardInterrupt

    def interrupt_from_message(self):
        """Called by the input thread on an interrupt message."""
        if not (self.busy or self.input_waiting):
            # Only a shell block can be running. It is signalled from this thread: a
            # SIGINT the main thread took just before blocking in waitpid() would be
            # handled only once the wait ends. Under the lock, as the block registers
            # its process under it; its first output can arrive (and the user react to
            # it) before that, so a block still starting checks ``interrupt_seq`` then.
            with self.shell_lock:
                shells = bool(self.shell_procs)
                starting = not shells and self.cell_running.is_set()
                if shells:
                    self.interrupt_shells()
                elif starting:
                    self.interrupt_seq = self.exec_seq
            if shells or starting:
                self.channel.send({"type": "interrupt_ack"})
            return
        # The main thread first: while it runs CPU-bound code this thread waits ~5 ms
        # for the GIL after every system call, so anything done before (a /proc scan
        # is hundreds of them) would delay the interrupt by a second or more.
        try:
            signal.pthread_kill(self.main_ident, signal.SIGINT)
        except (OSError, AttributeError):
            os.kill(os.getpid(), signal.SIGINT)
        # Tell the host the interrupt was delivered, so it does not send its own SIGINT
        # on top (which could land in the middle of the first one's traceback).
        self.channel.send({"type": "interrupt_ack"})
        signalled = set()
        if self.busy:
            self._interrupt_children(signalled)
        if self.busy:
            # A child forked just after the scan (e.g. os.system, which ignores SIGINT
            # while it waits) would otherwise run on: look again a few times.
            self._schedule_followup(self.exec_seq, signalled, 4)

    def _interrupt_children(self, signalled):
        """SIGINT the processes user code started (not shell blocks: own groups)."""
        for pid in _foreground_descendants():
            if pid in signalled:
                continue
            try:
                os.kill(pid, signal.SIGINT)
            except OSError:
                continue
            # A child that ignored SIGINT at that moment (e.g. between fork and exec in
            # system(3)) lost it: try again at the next follow-up.
            if not _ignores_sigint(pid):
                signalled.add(pid)

    def _schedule_followup(self, seq, signalled, left):
        def followup():
            if self.exec_seq != seq or not self.busy:
                return
            self._interrupt_children(signalled)
            if left > 1:
                self._schedule_followup(seq, signalled, left - 1)

        timer = threading.Timer(0.25, followup)
        timer.daemon = True
        timer.start()

    def interrupt_shells(self):
        """SIGINT the running shell blocks' process groups, and SIGKILL those still
        running 2 s later (a shell may ignore SIGINT, or take it between fork and exec
        and run on). Called by the input thread on an interrupt message, and by the
        SIGINT handler when the host signals the runtime itself; once per block."""
        if self.shell_interrupted is not None:
            return
        self.shell_interrupted = time.monotonic()
        seq = self.exec_seq
        pids = list(self.shell_procs)
        for pid in pids:
            try:
                os.killpg(pid, signal.SIGINT)
            except OSError:
                pass

        def escalate():
            for pid in pids:
                # still registered: not reaped yet, so the group is still that block's
                if self.exec_seq == seq and pid in self.shell_procs:
                    try:
                        os.killpg(pid, signal.SIGKILL)
                    except OSError:
                        pass

        timer = threading.Timer(2.0, escalate)
        timer.name = "kb-shell-kill"
        timer.daemon = True
        timer.start()

    def kill_shells(self):
        """Kill the process groups of running shell commands."""
        locked = self.shell_lock.acquire(timeout=5)
        try:
            pids = list(self.shell_procs)
        finally:
            if locked:
                self.shell_lock.release()
        for pid in pids:
            try:
                os.killpg(pid, signal.SIGKILL)
            except OSError:
                pass

    def exit_now(self):
        """End the runtime and everything it started (shutdown or end of input)."""
        self.kill_shells()
        try:
            _end_descendants()
        except Exception as exc:  # exiting matters more than the clean-up
            _diag("could not end child processes: %r" % exc)
        os._exit(0)

    # ---- input ------------------------------------------------------------------
    def request_input(self, prompt="", password=False):
        """input()/getpass(): ask the host and wait for input_reply."""
        self.sync_output()
        while True:
            try:
                self.inputs.get_nowait()
            except queue.Empty:
                break
        if self.eof:
            raise EOFError(_EOF_MESSAGE)
        self.input_waiting = True
        try:
            self.send({"type": "input_request", "prompt": str(prompt), "password": bool(password)})
            reply = self.inputs.get()
        finally:
            self.input_waiting = False
        if reply.get("interrupted"):
            raise KeyboardInterrupt
        if reply.get("not_allowed"):
            raise _stdin_not_allowed(reply.get("message") or _EOF_MESSAGE)
        if reply.get("eof") or "value" not in reply:
            raise EOFError(reply.get("message") or _EOF_MESSAGE)
        value = reply.get("value")
        return value if isinstance(value, str) else str(value)

    # ---- input thread -----------------------------------------------------------
    def read_requests(self):
        """Body of the input thread: dispatch protocol lines."""
        for line in self.channel.lines():
            if not line.strip():
                continue
            try:
                msg = json.loads(line.decode("utf-8", "replace"))
                if not isinstance(msg, dict):
                    raise ValueError("not an object")
            except ValueError as exc:
                _diag("bad protocol line ignored: %s" % exc)
                continue
            kind = msg.get("type")
            if kind == "interrupt":
                self.interrupt_from_message()
            elif kind == "input_reply":
                if self.input_waiting:
                    self.inputs.put(msg)
            elif kind == "shutdown":
                self.exit_now()
            elif kind == "comm_info":
                _comm_info(self, msg)
            elif kind in _DEBUG_READER_TYPES:
                _debug_from_reader(self, msg)
            else:
                self.requests.put(msg)
        # EOF
        self.eof = True
        if not self.linger:
            self.exit_now()
        if self.input_waiting:
            self.inputs.put({"eof": True})

    # ---- main loop --------------------------------------------------------------
    def serve(self):
        """Handle requests one at a time, forever."""
        while True:
            try:
                msg = self.requests.get()
            except KeyboardInterrupt:
                continue
            try:
                self.handle(msg)
            except KeyboardInterrupt:
                pass
            except BaseException as exc:  # the runtime never dies because of a request
                _diag("request failed: %s" % traceback.format_exc())
                if msg.get("id") is not None and msg.get("type") != "execute":
                    try:
                        self.channel.send({"type": "reply", "id": msg.get("id"), "error": str(exc)})
                    except Exception:
                        pass

    def handle(self, msg):
        """Dispatch one request from the host."""
        kind = msg.get("type")
        if kind == "execute":
            self.execute(msg)
        elif kind == "complete":
            self.reply_guarded(msg, self.complete)
        elif kind == "inspect":
            self.reply_guarded(msg, self.inspect)
        elif kind == "comm":
            _comm_request(self, msg)
        elif kind == "debug_start":
            self.reply_guarded(msg, lambda m: _debug_start(self, m))
        elif msg.get("id") is not None:
            self.channel.send(
                {"type": "reply", "id": msg["id"], "error": "unknown request type %r" % (kind,)}
            )

    def reply_guarded(self, msg, func):
        try:
            content = func(msg)
        except Exception as exc:
            content = {"error": "%s: %s" % (type(exc).__name__, exc)}
        content["type"] = "reply"
        content["id"] = msg.get("id")
        self.channel.send(content)

    def execute(self, msg):
        """Run one execute request and always end it with done."""
        status, exit_code = "error", 1
        self.exec_seq += 1
        self.cell_running.set()
        _comm_begin(self, msg)
        try:
            self.prepare_cell()
            language = str(msg.get("language") or "python").lower()
            code = msg.get("code") or ""
            if not isinstance(code, str):
                code = str(code)
            if language in _SHELLS or language in _POWERSHELLS:
                status, exit_code = self.run_shell(code, language)
            elif language in ("python", "python3", "ipython", "py"):
                ok = self.run_python(
                    code, bool(msg.get("silent", False)), bool(msg.get("store_history", True))
                )
                status, exit_code = ("ok", 0) if ok else ("error", 1)
            else:
                self.publish_error(
                    "ValueError",
                    "unsupported language %r (use python, bash, sh or pwsh)" % language,
                    [],
                )
        except BaseException as exc:
            if not isinstance(exc, KeyboardInterrupt):
                _diag("execute failed: %s" % traceback.format_exc())
            try:
                self.busy = False
                self.publish_error(type(exc).__name__, str(exc), [])
            except BaseException:
                pass
            status, exit_code = "error", 1
        finally:
            self.busy = False
            self.pending_interrupt = False
            self.cell_running.clear()
            _comm_end(self)
        if os.getpid() != self.channel.owner_pid:
            # A child forked by the cell (os.fork) came back here: it must not serve.
            os._exit(0 if status == "ok" else 1)
        for _ in range(3):
            try:
                self.sync_output()
                break
            except BaseException:
                continue
        self.channel.send(
            {"type": "done", "id": msg.get("id"), "status": status, "exit_code": exit_code}
        )

    def prepare_cell(self):
        """Undo damage from earlier cells: fds, sys.stdout, the SIGINT handler."""
        self.channel.repair_fds()
        for name, fd in (("stdout", 1), ("stderr", 2)):
            stream = getattr(sys, name, None)
            try:
                broken = stream is None or stream.closed
            except Exception:
                broken = True
            if broken:
                setattr(sys, name, _text_stream(fd))
        try:
            if signal.getsignal(signal.SIGINT) is not self.sigint_handler:
                signal.signal(signal.SIGINT, self.sigint_handler)
        except (ValueError, OSError):
            pass
        _debug_repair_interrupted_stop()

    # ---- shell -----------------------------------------------------------------------
    def run_shell(self, code, language):
        if language in _POWERSHELLS:
            exe = shutil.which("pwsh") or shutil.which("powershell")
            if not exe:
                self.publish_error(
                    "FileNotFoundError",
                    "PowerShell (pwsh) is not installed where the code runs; install it or "
                    "use language bash/sh",
                    [],
                )
                return "error", 127
            argv = [exe, "-NoProfile", "-NonInteractive", "-Command", code]
        else:
            exe = None if language in ("sh", "shell") else shutil.which("bash")
            argv = [exe, "-c", code] if exe else ["/bin/sh", "-c", code]
        self.shell_interrupted = None
        # Under the lock, so an exit on EOF cannot miss a shell that is just starting.
        with self.shell_lock:
            try:
                proc = subprocess.Popen(
                    argv, stdin=subprocess.DEVNULL, cwd=os.getcwd(), start_new_session=True
                )
            except OSError as exc:
                proc = None
                error = exc
            else:
                self.shell_procs[proc.pid] = proc
                if self.interrupt_seq == self.exec_seq:  # interrupted while starting
                    self.interrupt_shells()
        if proc is None:
            self.publish_error(type(error).__name__, str(error), [])
            return "error", 127
        try:
            # an interrupt ends the wait by ending the shell (see interrupt_shells)
            rc = proc.wait()
        finally:
            self.shell_procs.pop(proc.pid, None)
            self.shell_interrupted = None
        if rc < 0:
            rc = 128 - rc
        return ("ok" if rc == 0 else "error"), rc

    # ---- python ----------------------------------------------------------------------
    def run_help_query(self, match):
        """``name?`` / ``?name`` / ``name??`` without IPython: help text for the pager."""
        name = match.group(1) or match.group(4)
        detail = 1 if (match.group(2) or match.group(3) or "").count("?") > 1 else 0
        try:
            obj = _resolve(name, self.namespace)
        except KeyError:
            sys.stdout.write("Object `%s` not found.\n" % name)
            return True
        self.publish_page({"text/plain": _plain_inspect_text(name, obj, detail)}, 0)
        return True

    def run_python(self, code, silent, store_history):
        if self.shell is not None:
            return self.run_ipython(code, silent, store_history)
        return self.run_plain(code, silent, store_history)

    def run_plain(self, code, silent, store_history):
        help_query = _HELP_QUERY.match(code)
        if help_query is not None:
            return self.run_help_query(help_query)
        self.cell_count += 1
        filename = _debug_cell_filename(code) or "<cell-%d>" % self.cell_count
        linecache.cache[filename] = (len(code), None, code.splitlines(True), filename)
        ns = self.namespace
        flags = getattr(ast, "PyCF_ALLOW_TOP_LEVEL_AWAIT", 0)
        error = None
        try:
            tree = compile(code, filename, "exec", ast.PyCF_ONLY_AST | flags, dont_inherit=True)
            last = None
            if tree.body and isinstance(tree.body[-1], ast.Expr) and not silent:
                last = ast.Expression(tree.body.pop().value)
            body = compile(tree, filename, "exec", flags, dont_inherit=True)
            last_code = compile(last, filename, "eval", flags, dont_inherit=True) if last else None
        except BaseException as exc:
            self.report_exception(exc, syntax=True)
            return False
        self.busy = True
        try:
            try:
                self.run_code(body, ns)
                if last_code is not None:
                    value = self.run_code(last_code, ns)
                    if value is not None:
                        builtins._ = value
                        ns["_"] = value
                        data, md = _format_plain(value)
                        self.publish_result(data, md, value)
            finally:
                self.busy = False
        except BaseException as exc:
            error = exc
        if error is not None:
            self.report_exception(error)
            return False
        return True

    def run_code(self, code_obj, ns):
        if code_obj.co_flags & inspect.CO_COROUTINE:
            if self.loop is None:
                import asyncio

                self.loop = asyncio.new_event_loop()
            return self.loop.run_until_complete(eval(code_obj, ns))
        return eval(code_obj, ns)

    def report_exception(self, exc, syntax=False):
        try:
            ename = type(exc).__name__
            try:
                evalue = str(exc)
            except Exception:
                evalue = "<unprintable %s>" % ename
            if syntax and isinstance(exc, SyntaxError):
                lines = traceback.format_exception_only(type(exc), exc)
            else:
                tb = _without_own_frames(exc.__traceback__)
                lines = traceback.format_exception(type(exc), exc, tb)
            tb_list = [line.rstrip("\n") for line in lines]
            self.publish_error(ename, evalue, tb_list)
        except BaseException as exc2:
            _diag("could not report an exception: %r" % exc2)
            try:
                self.channel.send(
                    {"type": "error", "ename": type(exc).__name__, "evalue": "", "traceback": []}
                )
            except Exception:
                pass

    def run_ipython(self, code, silent, store_history):
        shell = self.shell
        shell._kb_error = False
        self.busy = True
        try:
            try:
                result = shell.run_cell(code, store_history=store_history, silent=silent)
            finally:
                self.busy = False
        except BaseException as exc:
            self.report_exception(exc)
            return False
        failure = result.error_before_exec or result.error_in_exec
        if failure is not None:
            if _is_usage_error(failure):
                # IPython already printed "UsageError: ..." to stderr (no traceback);
                # the error only names the failure for the reply, as ipykernel's does.
                self.publish_error(type(failure).__name__, str(failure), [], shown=False)
            elif not shell._kb_error:
                # The traceback display itself was interrupted (a second Ctrl-C): still
                # report the error, so the cell never fails without saying why.
                lines = traceback.format_exception(type(failure), failure, None)
                self.publish_error(type(failure).__name__, str(failure), lines)
            return False
        # A traceback shown without the cell failing (an exception inside a widgets
        # Output, or one a magic handled) leaves the cell ok, as in ipykernel.
        return True

    # ---- complete / inspect ------------------------------------------------------
    def complete(self, msg):
        return complete_request(self.shell, self.namespace, msg)

    def inspect(self, msg):
        return inspect_request(self.shell, self.namespace, msg)

    # ---- setup ---------------------------------------------------------------------
    def setup_namespace(self, use_ipython):
        """Create the user namespace (IPython shell or a plain __main__ module)."""
        builtins.input = _input
        import getpass

        getpass.getpass = _getpass
        sys.modules["kb_display"] = _make_display_module()
        sys.modules["_kb_debug"] = _debug_module()
        if use_ipython:
            try:
                import importlib.util

                use_ipython = importlib.util.find_spec("IPython") is not None
            except (ImportError, ValueError):
                use_ipython = False
        if use_ipython:
            try:
                self.shell = _make_ipython_shell(self)
                self.namespace = self.shell.user_ns
                return
            except Exception:
                _diag("IPython unavailable, using plain Python: %s" % traceback.format_exc())
                self.shell = None
        main = types.ModuleType("__main__")
        main.__dict__["__builtins__"] = builtins
        sys.modules["__main__"] = main
        self.namespace = main.__dict__
        builtins.display = display
        builtins.update_display = update_display
        builtins.clear_output = clear_output


def _is_usage_error(exc):
    """True for IPython's UsageError (a bad magic), which IPython reports on stderr."""
    try:
        from IPython.core.error import UsageError
    except Exception:
        return False
    return isinstance(exc, UsageError)


def _stdin_not_allowed(message):
    """The exception for input() when the frontend allows no stdin: IPython's, as ipykernel."""
    if _STATE.get("runtime") is not None and _STATE["runtime"].shell is not None:
        try:
            from IPython.core.error import StdinNotImplementedError

            return StdinNotImplementedError(message)
        except Exception:
            pass
    return EOFError(message)


def _input(prompt=""):
    """input() replacement: asks the host through input_request."""
    runtime = _STATE["runtime"]
    return runtime.request_input(prompt, password=False)


def _getpass(prompt="Password: ", stream=None):
    """getpass.getpass() replacement: asks the host through input_request."""
    runtime = _STATE["runtime"]
    return runtime.request_input(prompt, password=True)


def _proc_table():
    """{pid: (ppid, pgrp)} of all living processes (Linux /proc; empty elsewhere).

    Zombies are left out: they are already dead, and signalling them does nothing.
    """
    table = {}
    try:
        entries = os.listdir("/proc")
    except OSError:
        return table
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % entry, "rb") as f:
                stat = f.read()
            fields = stat[stat.rindex(b")") + 2 :].split()
            if fields[0] in (b"Z", b"X"):
                continue
            table[int(entry)] = (int(fields[1]), int(fields[2]))
        except (OSError, ValueError, IndexError):
            continue
    return table


def _all_descendants():
    """Every living process the runtime started, directly or not.

    That is the process tree below the runtime, whatever group or session a process
    moved to, plus, when the runtime leads its own process group (the local executor
    starts it so), the members of that group whose parent already exited.
    """
    me = os.getpid()
    try:
        own_group = os.getpgrp() == me
    except OSError:
        own_group = False
    table = _proc_table()
    children = {}
    for pid, (ppid, _group) in table.items():
        children.setdefault(ppid, []).append(pid)
    found = set()
    todo = [me]
    while todo:
        for pid in children.get(todo.pop(), ()):
            if pid not in found:
                found.add(pid)
                todo.append(pid)
    if own_group:
        found.update(pid for pid, (_ppid, group) in table.items() if group == me)
    found.discard(me)
    return found


_END_GRACE = 1.0
"""Seconds descendants get after SIGTERM before SIGKILL, when the runtime exits."""


def _end_descendants(grace=_END_GRACE):
    """SIGTERM every descendant, then SIGKILL whatever still lives after ``grace`` s.

    Called as the runtime exits (shutdown, end of input), so a process started by a cell
    never outlives the session, even one that ignores SIGINT and SIGTERM (ipykernel
    terminates its children at shutdown the same way).
    """
    pids = _all_descendants()
    signalled = set()
    deadline = time.monotonic() + grace
    while pids:
        for pid in pids - signalled:
            try:
                os.kill(pid, signal.SIGTERM)
            except OSError:
                pass
        signalled |= pids
        if time.monotonic() >= deadline:
            break
        time.sleep(0.01)
        pids = _all_descendants()
    # Descendants can fork while being terminated: repeat until none is left.
    for _ in range(10):
        pids = _all_descendants()
        if not pids:
            return
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass


def _foreground_descendants():
    """Descendants of this process still in its process group (what Ctrl-C would hit)."""
    me = os.getpid()
    try:
        pgrp = os.getpgrp()
    except OSError:
        return []
    children = {}
    for pid, (ppid, group) in _proc_table().items():
        children.setdefault(ppid, []).append((pid, group))
    found = []
    todo = [me]
    while todo:
        for pid, group in children.get(todo.pop(), ()):
            if group == pgrp:
                found.append(pid)
            todo.append(pid)
    return found


def _ignores_sigint(pid):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("SigIgn:"):
                    return bool(int(line.split()[1], 16) & (1 << (signal.SIGINT - 1)))
    except (OSError, ValueError, IndexError):
        pass
    return False


# ---------------------------------------------------------------------------------------
# IPython integration


def _make_ipython_shell(runtime):
    from IPython.core.displayhook import DisplayHook
    from IPython.core.displaypub import DisplayPublisher
    from IPython.core.interactiveshell import InteractiveShell
    from traitlets.config import Config

    class KBDisplayPublisher(DisplayPublisher):
        """Sends display_data / update_display_data / clear_output to the host."""

        def publish(self, data, metadata=None, source=None, *, transient=None, update=False, **kw):
            display_id = (transient or {}).get("display_id")
            runtime.publish_display(_encode_data(data), metadata or {}, display_id, update)

        def clear_output(self, wait=False):
            runtime.publish_clear(wait)

    class KBDisplayHook(DisplayHook):
        """Sends the last expression's value as a result message."""

        _kb_value = None

        def __call__(self, result=None):
            self._kb_value = result
            try:
                return super().__call__(result)
            finally:
                self._kb_value = None

        def start_displayhook(self):
            pass

        def write_output_prompt(self):
            pass

        def write_format_data(self, format_dict, md_dict=None):
            if format_dict:
                runtime.publish_result(_encode_data(format_dict), md_dict or {}, self._kb_value)

        def finish_displayhook(self):
            pass

    class KBShell(InteractiveShell):
        """IPython shell whose output goes to the kernel_bridge host."""

        _kb_error = False

        def _get_exc_info(self, exc_tuple=None):
            etype, value, tb = super()._get_exc_info(exc_tuple)
            return etype, value, _without_own_frames(tb)

        def _showtraceback(self, etype, evalue, stb):
            self._kb_error = True
            try:
                value = str(evalue)
            except Exception:
                value = "<unprintable %s>" % getattr(etype, "__name__", "exception")
            runtime.publish_error(str(getattr(etype, "__name__", etype)), value, list(stb))

        # !cmd runs with its output on fd 1/2 (streams, separate stderr, no pty \r\n).
        system = InteractiveShell.system_raw

        def enable_gui(self, gui=None):
            pass

        def ask_exit(self):
            sys.stderr.write(
                "exit() has no effect here: restart or shut down the kernel to end the session\n"
            )

        def init_io(self):
            pass

    KBShell.displayhook_class = KBDisplayHook
    KBShell.display_pub_class = KBDisplayPublisher

    try:
        import importlib.util

        if importlib.util.find_spec("matplotlib_inline") is not None:
            os.environ.setdefault("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    except Exception:
        pass
    config = Config()
    config.HistoryManager.enabled = False
    config.HistoryManager.hist_file = ":memory:"
    saved = sys.stdout, sys.stderr
    capture = io.StringIO()
    sys.stdout = sys.stderr = capture
    try:
        shell = KBShell.instance(config=config)
    finally:
        sys.stdout, sys.stderr = saved
        if capture.getvalue():
            _diag(capture.getvalue())
    try:
        from IPython.core import page as ipy_page

        shell.set_hook("show_in_pager", ipy_page.as_hook(page), 99)
    except Exception as exc:  # pragma: no cover - an IPython without pager hooks
        _diag("pager hook not installed: %r" % exc)
    from IPython import display as ipd

    mod = sys.modules["kb_display"]
    for name in ("display", "update_display", "clear_output", "HTML", "Markdown", "Image", "SVG"):
        setattr(mod, name, getattr(ipd, name))
    import builtins as _b

    _b.display = ipd.display
    _b.update_display = ipd.update_display
    _b.clear_output = ipd.clear_output
    return shell


# ---------------------------------------------------------------------------------------
# comms (widgets) and the ipykernel-like kernel object
#
# Everything about comms lives in this section; the Runtime only calls _comm_setup() at
# start, _comm_begin()/_comm_end() around each request, _comm_request() for a host
# "comm" request (main thread) and _comm_info() (input thread).  Messages the code
# addresses to IOPub (comm traffic, kernel.session.send) go to the host as "iopub"
# messages naming the Jupyter request they answer (parent_id).

_WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
_IOPUB_TYPES = frozenset(
    (
        "comm_open",
        "comm_msg",
        "comm_close",
        "stream",
        "display_data",
        "update_display_data",
        "execute_result",
        "error",
        "clear_output",
    )
)


def _comm_begin(runtime, msg):
    """A request starts: code run now answers the Jupyter request named in ``msg``."""
    parent = msg.get("parent")
    runtime.request_parent = parent if isinstance(parent, dict) else None
    if runtime.request_parent is not None:
        runtime.last_parent = runtime.request_parent


def _comm_end(runtime):
    """The request ended: later messages (background threads) fall back to their comm's."""
    runtime.request_parent = None


def _parent_id(parent):
    if isinstance(parent, dict):
        header = parent.get("header") if isinstance(parent.get("header"), dict) else parent
        value = header.get("msg_id")
        if isinstance(value, str):
            return value
    return None


def _send_iopub(msg_type, content, metadata=None, buffers=None, parent_id=None):
    """Send one IOPub message for the host to relay; any thread may call it.

    Output printed before it is forwarded first (a widget Output's msg_id change must
    not overtake the prints it captures).
    """
    runtime = _STATE.get("runtime")
    if runtime is None or msg_type not in _IOPUB_TYPES:
        return
    if parent_id is None:
        parent_id = _parent_id(runtime.request_parent) or _parent_id(runtime.last_parent)
    msg = {
        "type": "iopub",
        "msg_type": msg_type,
        "content": content if isinstance(content, dict) else {},
        "metadata": metadata if isinstance(metadata, dict) else {},
        "buffers": _encode_buffers(buffers),
        "parent_id": parent_id,
    }
    if threading.get_ident() == runtime.main_ident:
        runtime.sync_output()
        runtime.send(msg)
    else:
        runtime.flush_std()
        runtime.channel.drain()
        runtime.channel.send(msg)


class _KernelSession:
    """``get_ipython().kernel.session``: ``send`` to the IOPub socket reaches the frontend."""

    def __init__(self, kernel):
        self._kernel = kernel
        self.session = "kb-runtime"
        self.username = "kernel"

    def msg(self, msg_type, content=None, parent=None, header=None, metadata=None):
        """Build a message dict the way jupyter_client's Session.msg does."""
        import uuid

        return {
            "header": dict(header or {}, msg_id=uuid.uuid4().hex, msg_type=msg_type),
            "msg_id": None,
            "msg_type": msg_type,
            "parent_header": dict((parent or {}).get("header") or {}),
            "content": content if content is not None else {},
            "metadata": metadata or {},
        }

    def send(
        self,
        stream,
        msg_or_type,
        content=None,
        parent=None,
        ident=None,
        buffers=None,
        track=False,
        header=None,
        metadata=None,
    ):
        """Relay a message for the IOPub socket to the frontend; other sockets are ignored."""
        if isinstance(msg_or_type, dict):
            msg = msg_or_type
            msg_type = (msg.get("header") or {}).get("msg_type") or msg.get("msg_type")
            content = msg.get("content")
            metadata = msg.get("metadata")
            buffers = buffers or msg.get("buffers")
        else:
            msg = self.msg(msg_or_type, content, parent, header, metadata)
            msg_type = msg_or_type
        if stream is not self._kernel.iopub_socket:
            return None
        if msg_type not in _IOPUB_TYPES:
            _diag("kernel.session.send: %r is not relayed" % (msg_type,))
            return None
        _send_iopub(msg_type, content, metadata, buffers, _parent_id(parent))
        return msg


class _IOPubSocket:
    """Stands for ipykernel's IOPub socket: only identity matters (session.send target)."""

    def __repr__(self):
        return "<kernel_bridge iopub>"


class _Kernel:
    """``get_ipython().kernel``: what libraries use of ipykernel's kernel object."""

    implementation = "kernel_bridge"

    def __init__(self, runtime, shell, comm_manager):
        self._runtime = runtime
        self.shell = shell
        self.comm_manager = comm_manager
        self.iopub_socket = _IOPubSocket()
        self.session = _KernelSession(self)

    def get_parent(self, channel="shell"):
        """The request being served (or the last one): ``{"header": {...}}``."""
        parent = self._runtime.request_parent or self._runtime.last_parent
        return {"header": dict(parent)} if parent else {}

    @property
    def _parent_header(self):
        return self.get_parent()

    @property
    def execution_count(self):
        return getattr(self.shell, "execution_count", 0)

    def send_response(
        self,
        stream,
        msg_or_type,
        content=None,
        ident=None,
        buffers=None,
        track=False,
        header=None,
        metadata=None,
    ):
        """Send a message parented to the current request (ipykernel's Kernel.send_response)."""
        return self.session.send(
            stream,
            msg_or_type,
            content,
            self.get_parent(),
            ident,
            buffers,
            track,
            header,
            metadata,
        )


def _comm_setup(runtime):
    """Install a comm manager and ``comm.create_comm`` where the ``comm`` package exists.

    ipywidgets 8, tqdm.notebook and ``comm.create_comm`` then reach the frontend; without
    ``comm`` nothing is installed and widget views degrade to their text (see
    :func:`_drop_dead_widget_views`).
    """
    import logging

    def note_parent(comm_obj):
        comm_obj.kernel = _STATE.get("kernel")
        comm_obj._kb_parent = _parent_id(runtime.request_parent or runtime.last_parent)

    def publish(comm_obj, msg_type, content, metadata, buffers):
        # the request being served, else the one the comm was made in (background threads)
        parent = _parent_id(runtime.request_parent) or comm_obj._kb_parent
        _send_iopub(msg_type, content, metadata, buffers, parent)

    def log_handler():
        # comm logs failures of handlers (ipykernel: the kernel's log): here the
        # runtime's diagnostics, never the user's stderr.
        handler = logging.StreamHandler(io.TextIOWrapper(_FdWriter(_STATE.get("diag_fd", 2))))
        handler.setFormatter(logging.Formatter("kb_runtime: %(message)s"))
        return handler

    _lib._comm_install(note_parent, publish, log_handler)
    kernel = _Kernel(runtime, runtime.shell, _STATE.get("comm_manager"))
    _STATE["kernel"] = kernel
    if runtime.shell is not None:
        runtime.shell.kernel = kernel
        # ipykernel's shell offers these too (nbclient's update-display-id notebook
        # sends with parent=ip.parent_header)
        shell_class = type(runtime.shell)
        shell_class.get_parent = lambda self: kernel.get_parent()
        shell_class.parent_header = property(lambda self: kernel.get_parent().get("header", {}))


def _comm_request(runtime, msg):
    """Handle a frontend comm_open/comm_msg/comm_close (main thread), ending with done.

    Like an execution: the handlers' output and comm traffic are sent first, an
    interrupt raises KeyboardInterrupt in them, an exception becomes an ``error``.
    """
    status = "ok"
    runtime.exec_seq += 1
    runtime.cell_running.set()
    _comm_begin(runtime, msg)
    try:
        runtime.prepare_cell()
        wire = _wire_message(msg)
        manager = _STATE.get("comm_manager")
        kind = wire["msg_type"]
        if manager is None:
            if kind == "comm_open":
                # Nothing can serve it: close the frontend's side, as ipykernel does
                # for an unknown target.
                comm_id = wire["content"].get("comm_id")
                _send_iopub("comm_close", {"comm_id": comm_id, "data": {}})
        elif kind in ("comm_open", "comm_msg", "comm_close"):
            runtime.busy = True
            try:
                getattr(manager, kind)(None, None, wire)
            finally:
                runtime.busy = False
    except BaseException as exc:
        runtime.busy = False
        status = "error"
        runtime.report_exception(exc)
    finally:
        runtime.busy = False
        runtime.pending_interrupt = False
        runtime.cell_running.clear()
        _comm_end(runtime)
    if os.getpid() != runtime.channel.owner_pid:
        os._exit(0)
    for _ in range(3):
        try:
            runtime.sync_output()
            break
        except BaseException:
            continue
    runtime.channel.send({"type": "done", "id": msg.get("id"), "status": status, "exit_code": 0})


def _comm_info(runtime, msg):
    """Answer ``comm_info`` from the input thread: the open comms (of one target)."""
    comms = _open_comms(msg.get("target_name"))
    runtime.channel.send({"type": "reply", "id": msg.get("id"), "comms": comms})


def _drop_dead_widget_views(data):
    """Remove a widget view whose model no comm serves, so the frontend shows its text.

    Without a comm (no ``comm`` package, or a comm-less environment) the frontend would
    otherwise say "Error displaying widget: model not found".
    """
    view = data.get(_WIDGET_VIEW) if isinstance(data, dict) else None
    if view is None:
        return data
    manager = _STATE.get("comm_manager")
    model_id = view.get("model_id") if isinstance(view, dict) else None
    if manager is not None and model_id in manager.comms:
        return data
    data = dict(data)
    del data[_WIDGET_VIEW]
    if "text/plain" not in data:
        data["text/plain"] = "<widget: not interactive here>"
    return data


# ---------------------------------------------------------------------------------------
# entry point


def _warm_up_in_background(shell):
    """Build the caches the first traceback and the first completion need, in the background.

    IPython's traceback formatter needs inspect's module-by-file cache: building it for
    the first error costs 0.1-0.2 s, long enough to make the first interrupt feel slow.
    IPython completes through jedi, whose first call parses the builtins' stubs: 1-3 s
    in an environment jedi has not seen. JupyterLab drops a completion that takes more
    than a second (its completer's ``providerTimeout``), so without this the first Tab
    of a session in a new environment shows nothing. The work starts after a short delay:
    at start-up the CPU is better spent on the kernel process and the first cell.
    ``complete`` waits on ``_COMPLETER_WARMING`` so that it never drives jedi while the
    warm-up does.
    """

    def run():
        try:
            import inspect

            inspect.getmodule(run.__code__)
        except Exception:
            pass
        if not getattr(shell.Completer, "use_jedi", False):
            return
        with _COMPLETER_WARMING:
            try:
                import jedi

                jedi.Interpreter("pri", [{}]).complete()
            except Exception:
                pass

    timer = threading.Timer(_WARM_UP_DELAY, run)
    timer.name = "kb-warm-up"
    timer.daemon = True
    timer.start()


_WARM_UP_DELAY = 0.5


# =====================================================================================
# Debugger: debugpy hosted in this process, its DAP relayed over the channel.
# (Self-contained section; the request dispatch calls in through the _debug_* hooks.)
# Mirrors ipykernel's debugger: cells are compiled under the file name
# tmp_prefix + murmur2(code, seed) + ".py" once the debugger has started, so breakpoints
# set on a dumpCell path land in the cell. debugpy listens on 127.0.0.1 of this process's
# own network namespace only; nothing is published. The relay thread and the reader
# thread carry DAP while the main thread is suspended at a breakpoint.
# =====================================================================================

_DEBUG_HASH_SEED = 0xC70F6907
_DEBUG_SUFFIX = ".py"
# requests the reader thread serves itself (the main thread may be stopped at a breakpoint)
_DEBUG_READER_TYPES = (
    "debug_dap",
    "debug_dump_cell",
    "debug_source",
    "debug_variables",
    "debug_rich",
    "debug_modules",
    "debug_stop",
)
_DEBUG = {"started": False, "sock": None, "endpoint": None, "prefix": None, "modules": []}
_DEBUG_LOCK = threading.Lock()


def _murmur2_x86(text, seed):
    """MurmurHash2 (x86, 32 bit) of the UTF-8 bytes of text: ipykernel's cell hash."""
    data = text.encode("utf-8")
    m = 0x5BD1E995
    length = len(data)
    h = (seed ^ length) & 0xFFFFFFFF
    end = length & ~3
    for i in range(0, end, 4):
        k = data[i] | (data[i + 1] << 8) | (data[i + 2] << 16) | (data[i + 3] << 24)
        k = (k * m) & 0xFFFFFFFF
        k ^= k >> 24
        k = (k * m) & 0xFFFFFFFF
        h = (h * m) & 0xFFFFFFFF
        h ^= k
    rest = length & 3
    if rest:
        k = 0
        if rest == 3:
            k = data[end + 2] << 16
        if rest >= 2:
            k |= data[end + 1] << 8
        k |= data[end]
        h ^= k
        h = (h * m) & 0xFFFFFFFF
    h ^= h >> 13
    h = (h * m) & 0xFFFFFFFF
    h ^= h >> 15
    return h


def _debugpy_importable():
    """True when debugpy can be imported here (checked without importing it)."""
    try:
        import importlib.util

        return importlib.util.find_spec("debugpy") is not None
    except (ImportError, ValueError):
        return False


def _debug_note_runtime_modules():
    """Remember the files of the modules loaded before any user code (called once from
    main): the debugger steps over their frames, as ipykernel does with its own modules."""
    files = {getattr(m, "__file__", None) for m in list(sys.modules.values())}
    # and the frames below main(): the bootstrap program ("<string>" of python -c)
    frame = sys._getframe()
    while frame is not None:
        files.add(frame.f_code.co_filename)
        frame = frame.f_back
    _DEBUG["modules"] = sorted(f for f in files if isinstance(f, str))


def _debug_tmp_prefix(msg):
    """The cell files' prefix: the kernel's choice (it tells JupyterLab before debugpy
    starts), else <tempdir>/ipykernel_kernel_bridge_<pid>/. JupyterLab shows a path as
    "Cell [n]" only when it contains "ipykernel_", hence the name."""
    import tempfile

    prefix = msg.get("prefix")
    if prefix is None:
        name = "ipykernel_kernel_bridge_%d" % os.getpid()
        return os.path.join(tempfile.gettempdir(), name) + os.sep
    prefix = str(prefix)
    if not os.path.isabs(prefix) or not prefix.endswith(os.sep) or "\0" in prefix:
        raise ValueError("the cell file prefix %r is not an absolute directory path" % prefix)
    return prefix


def _debug_private_dir(path):
    """Create path (mode 0700) or accept it only if it is this user's own private
    directory: never a link, never a directory others could write cell files into."""
    import stat

    try:
        os.makedirs(path, mode=0o700)
    except FileExistsError:
        pass
    info = os.lstat(path)
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.geteuid():
        raise PermissionError("%s is not a directory owned by this user" % path)
    if info.st_mode & 0o077:
        raise PermissionError(
            "%s is open to other users (mode %o); remove it" % (path, stat.S_IMODE(info.st_mode))
        )


def _debug_cell_filename(code):
    """The file name a cell is compiled under: the dumpCell path once debugging, else None."""
    if not _DEBUG["started"]:
        return None
    return _DEBUG["prefix"] + str(_murmur2_x86(code, _DEBUG_HASH_SEED)) + _DEBUG_SUFFIX


def _debug_start(runtime, msg):
    """debug_start (main thread): listen with debugpy once, connect the relay socket."""
    # debugpy imports pydevd with its own directory put in sys.path for a moment; jedi
    # (the completion warm-up, a Tab) replaces sys.path for a moment as it imports: the
    # two at once lose one of the entries ("list.remove(x): x not in list")
    locked = _COMPLETER_WARMING.acquire(timeout=_COMPLETER_WARM_UP_WAIT)
    try:
        return _debug_start_unlogged(runtime, msg)
    except Exception:
        # the reply carries one line; the kernel's log gets where it failed in debugpy
        _diag("debug_start failed:\n" + traceback.format_exc())
        raise
    finally:
        if locked:
            _COMPLETER_WARMING.release()


def _debug_start_unlogged(runtime, msg):
    try:
        import debugpy
    except Exception as exc:
        return {
            "error": "debugpy is not importable by the runtime's Python (%s, %s): %s. "
            "Install the PyPI package debugpy where the code runs (e.g. pip install debugpy "
            "in the image) to use the debugger." % (sys.version.split()[0], sys.executable, exc)
        }
    try:
        prefix = _debug_tmp_prefix(msg)
        _debug_private_dir(prefix.rstrip(os.sep))
    except (OSError, ValueError) as exc:
        return {"error": "cannot keep the debugger's cell files: %s" % exc}
    for thread in threading.enumerate():
        if thread.name.startswith("kb-"):
            _debug_untraced(thread)
    with _DEBUG_LOCK:
        if _DEBUG["endpoint"] is None:
            # the adapter is spawned with sys.executable; daemonised, it leaves our
            # process group (so an interrupt of the cell's children never reaches it)
            host, port = _debug_listen(debugpy)
            _DEBUG["endpoint"] = (host, int(port))
        if _DEBUG["sock"] is None:
            import socket

            sock = socket.create_connection(_DEBUG["endpoint"], timeout=30)
            sock.settimeout(None)
            _DEBUG["sock"] = sock
            relay = threading.Thread(
                target=_debug_relay, args=(runtime, sock), name="kb-debug", daemon=True
            )
            _debug_untraced(relay)
            relay.start()
        _DEBUG["prefix"] = prefix
        _DEBUG["started"] = True
    _debug_keep_leading_lines(runtime, True)
    _debug_patch_compiler(runtime.shell)
    host, port = _DEBUG["endpoint"]
    return {
        "tmp_prefix": prefix,
        "tmp_suffix": _DEBUG_SUFFIX,
        "hash_seed": _DEBUG_HASH_SEED,
        "host": host,
        "port": port,
        "runtime_files": [_murmur2_x86.__code__.co_filename] + _DEBUG["modules"],
    }


def _debug_repair_interrupted_stop():
    """Called as a cell starts. An interrupt that ended a cell stopped at a breakpoint
    came out of pydevd's trace function as KeyboardInterrupt: Python then switched the
    main thread's tracing off, and pydevd's mark on the thread still says "suspended", so
    no breakpoint would ever hit again. Undo both, as pydevd's own continue and attach do."""
    lifecycle = sys.modules.get("_pydevd_bundle.pydevd_thread_lifecycle")
    constants = sys.modules.get("_pydevd_bundle.pydevd_constants")
    thread = threading.current_thread()
    info = getattr(thread, "additional_info", None)
    if lifecycle is None or constants is None or info is None:
        return  # pydevd never ran here, or never saw this thread
    try:
        if info.pydev_state == constants.STATE_SUSPEND and not info.is_in_wait_loop:
            lifecycle.internal_run_thread(thread, lambda _thread: info)
        py_db = constants.get_global_debugger()
        monitoring = getattr(constants, "PYDEVD_USE_SYS_MONITORING", False)
        alive = py_db is not None and not py_db.pydb_disposed
        if alive and not monitoring and sys.gettrace() is None:
            py_db.enable_tracing()
    except Exception:
        _diag("could not repair pydevd's state of the main thread: %s" % traceback.format_exc())


def _debug_listen(debugpy):
    """debugpy.listen on this process's loopback, without pydevd's frozen-modules warning.

    CPython 3.11+ freezes the stdlib modules pydevd checks; pydevd then prints a warning
    to stderr, which would land in the next cell's output. ipykernel's kernelspec passes
    -Xfrozen_modules=off, or sets PYDEVD_DISABLE_FILE_VALIDATION=1 when frozen modules are
    wanted; the runtime already runs, so it does the latter, only while pydevd loads (it
    reads the variable at import) so the cells' environment stays the user's.
    """
    name = "PYDEVD_DISABLE_FILE_VALIDATION"
    added = name not in os.environ
    if added:
        os.environ[name] = "1"
    try:
        return debugpy.listen(("127.0.0.1", 0))
    finally:
        if added:
            os.environ.pop(name, None)


def _debug_untraced(thread):
    """Keep pydevd out of a runtime thread: never traced, never suspended, never listed.

    The reader and relay threads must keep serving while the cell is stopped (pydevd
    suspends every traced thread when a breakpoint hits); these are pydevd's own marks.
    """
    thread.pydev_do_not_trace = True
    thread.is_pydev_daemon_thread = True


def _debug_patch_compiler(shell):
    """Make IPython name cells as ipykernel's XCachingCompiler does while debugging."""
    compiler = getattr(shell, "compile", None)
    if compiler is None or getattr(compiler, "_kb_debug_names", False):
        return
    original = compiler.get_code_name

    def get_code_name(raw_code, transformed_code, number):
        return _debug_cell_filename(raw_code) or original(raw_code, transformed_code, number)

    compiler.get_code_name = get_code_name
    compiler._kb_debug_names = True


def _debug_keep_leading_lines(runtime, keep):
    """While debugging IPython must not strip a cell's leading empty lines (line numbers)."""
    shell = runtime.shell
    if shell is None:
        return
    try:
        from IPython.core.inputtransformer2 import leading_empty_lines
    except ImportError:
        return
    transforms = shell.input_transformer_manager.cleanup_transforms
    if keep and leading_empty_lines in transforms:
        transforms.remove(leading_empty_lines)
        shell._kb_removed_leading = True
    elif not keep and getattr(shell, "_kb_removed_leading", False):
        transforms.insert(0, leading_empty_lines)
        shell._kb_removed_leading = False


def _debug_relay(runtime, sock):
    """Thread body: DAP messages from debugpy's adapter → debug_dap messages to the host."""
    buf = b""
    try:
        while True:
            while b"\r\n\r\n" not in buf:
                chunk = sock.recv(65536)
                if not chunk:
                    return
                buf += chunk
            head, _, buf = buf.partition(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value.strip())
            while len(buf) < length:
                chunk = sock.recv(65536)
                if not chunk:
                    return
                buf += chunk
            body, buf = buf[:length], buf[length:]
            try:
                message = json.loads(body.decode("utf-8"))
            except ValueError:
                _diag("debug adapter sent a body that is not JSON")
                continue
            runtime.channel.send({"type": "debug_dap", "message": message})
    except OSError as exc:
        _diag("debug relay ended: %s" % exc)
    finally:
        with _DEBUG_LOCK:
            if _DEBUG["sock"] is sock:
                _DEBUG["sock"] = None
        try:
            sock.close()
        except OSError:
            pass


def _debug_variables(namespace):
    """The namespace's variables as DAP variables (name, value, type), for inspectVariables."""
    out = []
    for _ in range(3):  # user threads may change the dict while it is read
        try:
            items = list(namespace.items())
            break
        except RuntimeError:
            items = []
    for name, value in items:
        if not isinstance(name, str) or isinstance(value, types.ModuleType):
            continue
        out.append(
            {
                "name": name,
                "value": _safe_repr(value)[:1000],
                "type": type(value).__name__,
                "evaluateName": name,
                "variablesReference": 0,
            }
        )
    return out


def _debug_modules(start, count):
    """The loaded modules that have a .py source, as ipykernel's modules request lists them:
    a window [start, start + count) of sys.modules, each with its index as id."""
    modules = list(sys.modules.values())
    start = start if isinstance(start, int) and start >= 0 else 0
    end = len(modules) if not isinstance(count, int) or count <= 0 else start + count
    listed = []
    for index in range(start, min(end, len(modules))):
        module = modules[index]
        origin = getattr(getattr(module, "__spec__", None), "origin", None)
        if isinstance(origin, str) and origin.endswith(".py"):
            listed.append({"id": index, "name": str(module.__name__), "path": origin})
    return {"modules": listed, "total": len(modules)}


def _debug_rich(runtime, name):
    """display data of one variable (richInspectVariables while not stopped)."""
    if not name.isidentifier() or name not in runtime.namespace:
        return {"data": {}, "metadata": {}}
    data, metadata = _debug_format(runtime.namespace[name])
    return {"data": data, "metadata": metadata}


def _debug_format(obj):
    """(data, metadata) of obj with the shell's formatters, or text/plain: also used by
    richInspectVariables while stopped, via a DAP evaluate of _kb_debug.format(name)."""
    runtime = _STATE.get("runtime")
    shell = getattr(runtime, "shell", None)
    if shell is not None:
        data, metadata = shell.display_formatter.format(obj)
        return _encode_data(data), metadata or {}
    return {"text/plain": _safe_repr(obj)}, {}


def _debug_from_reader(runtime, msg):
    """Serve a debug request on the reader thread (works while the main thread is stopped)."""
    kind = msg.get("type")
    reply = {"type": "reply", "id": msg.get("id")}
    try:
        if kind == "debug_dap":
            sock = _DEBUG["sock"]
            if sock is None:
                _diag("DAP message dropped: the debugger is not connected")
                return
            body = json.dumps(msg.get("message"), ensure_ascii=False).encode("utf-8")
            sock.sendall(b"Content-Length: %d\r\n\r\n" % len(body) + body)
            return
        if kind == "debug_dump_cell":
            code = str(msg.get("code", ""))
            path = _debug_cell_filename(code)
            if path is None:
                raise RuntimeError("the debugger has not started")
            with open(path, "w", encoding="utf-8") as f:
                f.write(code)
            reply["path"] = path
        elif kind == "debug_source":
            with open(str(msg.get("path", "")), encoding="utf-8", errors="replace") as f:
                reply["content"] = f.read(1 << 20)
        elif kind == "debug_variables":
            reply["variables"] = _debug_variables(runtime.namespace or {})
        elif kind == "debug_rich":
            reply.update(_debug_rich(runtime, str(msg.get("name", ""))))
        elif kind == "debug_modules":
            reply.update(_debug_modules(msg.get("start"), msg.get("count")))
        elif kind == "debug_stop":
            with _DEBUG_LOCK:
                sock, _DEBUG["sock"] = _DEBUG["sock"], None
                _DEBUG["started"] = False
            if sock is not None:
                try:
                    sock.close()
                except OSError:
                    pass
            _debug_keep_leading_lines(runtime, False)
    except Exception as exc:
        reply["error"] = "%s: %s" % (type(exc).__name__, exc)
    if msg.get("id") is not None:
        runtime.channel.send(reply)


def _debug_module():
    """The module `_kb_debug`, which DAP evaluate requests call while code is stopped."""
    module = types.ModuleType("_kb_debug")
    module.format = _debug_format
    return module


# ==================================================================== end of debugger


def _parse_args(argv):
    cwd = None
    linger = False
    protocol_socket = None
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg in ("--cwd", "--protocol-socket") and i + 1 < len(argv):
            if arg == "--cwd":
                cwd = argv[i + 1]
            else:
                protocol_socket = argv[i + 1]
            i += 2
            continue
        if arg.startswith("--cwd="):
            cwd = arg[len("--cwd=") :]
        elif arg == "--linger":
            linger = True
        else:
            _diag("ignoring unknown option %r" % arg)
        i += 1
    return cwd, linger, protocol_socket


def _connect_protocol_socket(path):
    """The fd of a connection to the host's Unix socket at ``path``, or None.

    The Docker executor offers one (bind-mounted from the host) so the protocol output
    skips the engine's attach relay; when it cannot be reached (an engine in a VM, a
    user namespace) the protocol stays on stdout, which the host reads as well.
    """
    import socket

    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.connect(path)
    except OSError as exc:
        sock.close()
        _diag("protocol socket unusable, using stdout (%s)" % exc)
        return None
    return sock.detach()


def main(argv=None):
    """Start the runtime: take over stdio, send ready, serve requests."""
    cwd, linger, protocol_socket = _parse_args(sys.argv[1:] if argv is None else argv)
    if cwd:
        os.makedirs(cwd, exist_ok=True)
        os.chdir(cwd)
    sys.argv = [sys.argv[0] if sys.argv else ""]
    os.environ["PYTHONUNBUFFERED"] = "1"
    in_fd, out_fd, prefix = _take_over_stdio()
    if protocol_socket:
        sock_fd = _connect_protocol_socket(protocol_socket)
        if sock_fd is not None:
            os.close(out_fd)  # nothing is written to stdout any more
            out_fd = sock_fd
    channel = _Channel(in_fd, out_fd, prefix)
    channel.setup_pipes()
    _STATE["channel"] = channel
    _install_std_streams()
    runtime = Runtime(channel, linger)
    _STATE["runtime"] = runtime
    signal.signal(signal.SIGINT, runtime.sigint_handler)
    reader = threading.Thread(target=runtime.read_requests, name="kb-input", daemon=True)
    reader.start()
    use_ipython = not os.environ.get("KB_RUNTIME_NO_IPYTHON")
    runtime.setup_namespace(use_ipython)
    try:
        _comm_setup(runtime)
    except Exception:
        _diag("comms unavailable: %s" % traceback.format_exc())
    _debug_note_runtime_modules()
    channel.send(
        {
            "type": "ready",
            "pid": os.getpid(),
            "python": sys.version.split()[0],
            "ipython": runtime.shell is not None,
            "cwd": os.getcwd(),
            "protocol": PROTOCOL_VERSION,
            "debugpy": _debugpy_importable(),
        }
    )
    if runtime.shell is not None:
        _warm_up_in_background(runtime.shell)
    runtime.serve()


if __name__ == "__main__":
    main()
