"""A runtime running as a container's main process, reached through Docker's attach stream.

The container is created with ``stdin_open`` (so ``StdinOnce``) and no tty, and attached
*before* it starts, so nothing it writes is lost. Docker multiplexes the container's
stdout and stderr on the attach socket in frames of an 8-byte header (stream type, 3
zero bytes, big-endian length) plus payload; a reader thread splits them: stdout is the
protocol (handed to the event loop line by line), stderr is the runtime's own
diagnostics (its tail goes into error messages). On a plain socket (the local engine's
Unix socket, a TCP one) the event loop reads the frames itself instead: a line then
reaches the channel without a thread switch (about 0.15 ms less for a flushed print).
A second thread follows the engine's
events for the container (``oom``, ``kill``, ``die``) so :meth:`describe_exit` can say
how it ended even after ``auto_remove`` deleted it.

When the attach socket closes (the kernel died, or :meth:`close`), Docker closes the
container's stdin (``StdinOnce``): the runtime reads EOF and exits, the container stops
and ``auto_remove`` deletes it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import signal
import socket
import ssl
import struct
import sys
import threading
import time
from pathlib import Path
from typing import Any

from .._temp_dirs import make_owned_temp_dir
from ..runtime_backed.channel import RuntimeTransport
from . import _hardening as hardening

__all__ = ["ContainerTransport", "ProtocolSocket", "describe_exit_code"]

log = logging.getLogger(__name__)

_STDERR_TAIL = 4096
_EXIT_INFO_WAIT_S = 1.5
_REMOVE_WAIT_S = 1.5
_PENDING_LINES = 2
"""Lines read from the attach stream but not yet taken by the event loop, at most: when
the kernel publishes slower than the container writes, the reader waits and Docker holds
the rest, instead of the kernel's memory (10 MiB of output stays 10 MiB in flight)."""
_RECV_SIZE = 65536
"""Bytes the event loop reads from the attach socket at a time."""


def describe_exit_code(code: int) -> str:
    """Word a container exit code: ``exit code 137 (killed by SIGKILL)``."""
    if code > 128:
        try:
            return f"exit code {code} (killed by {signal.Signals(code - 128).name})"
        except ValueError:
            pass
    return f"exit code {code}"


class ProtocolSocket:
    """A Unix socket on the host that the runtime in the container sends its protocol to.

    Docker's attach stream relays every line through dockerd and the container's shim
    (about 0.3 ms each way); a socket bind-mounted into the container is a direct path.
    Offered by the Docker executor for a local engine only: its directory, made by the
    kernel and owned by it (mode 0711, mounted read-only), holds nothing but the socket,
    which only the code's user may connect to. The first connection of that user (by
    ``SO_PEERCRED``) is taken, then the socket and its directory are deleted: the
    runtime connects before any code runs, so the session's code finds nothing to
    connect to. What arrives is read exactly as the attach stream's stdout is.
    """

    CONTAINER_DIR = "/run/kernel-bridge"
    """Where the directory is mounted in the container."""
    NAME = "protocol.sock"

    def __init__(self, directory: Path, listener: socket.socket, uid: int) -> None:
        self.directory = directory
        self.listener = listener
        self.uid = uid
        self._closed = False

    @property
    def container_path(self) -> str:
        """The socket's path in the container (the runtime's ``--protocol-socket``)."""
        return f"{self.CONTAINER_DIR}/{self.NAME}"

    @classmethod
    def offer(cls, user: str) -> ProtocolSocket | None:
        """Make the directory and the listening socket; None where it cannot be used.

        Only on Linux (``SO_PEERCRED``) and for a user given as a number or root, whose
        uid the peer check can compare: names are resolved inside the image.
        """
        if not sys.platform.startswith("linux") or not hasattr(socket, "SO_PEERCRED"):
            return None
        owner = (0, 0) if hardening.is_root(user) else hardening.numeric_owner(user)
        if owner is None:
            return None
        if os.geteuid() != 0 and owner[0] != os.getuid():
            return None  # the socket could not be made the code user's alone
        directory = make_owned_temp_dir("kernel_bridge_docker_")
        path = directory / cls.NAME
        listener: socket.socket | None = None
        try:
            if len(os.fsencode(path)) >= 100:  # sun_path holds 108 bytes
                raise OSError(f"socket path too long: {path}")
            os.chmod(directory, 0o711)  # the code's user may reach the socket, not list
            listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            listener.bind(str(path))
            os.chmod(path, 0o600)
            if owner[0] != os.geteuid():
                os.chown(path, *owner)
            listener.listen(1)
            listener.setblocking(False)
        except OSError as exc:
            log.debug("no protocol socket (the attach stream carries the protocol): %s", exc)
            if listener is not None:
                listener.close()
            shutil.rmtree(directory, ignore_errors=True)
            return None
        return cls(directory, listener, owner[0])

    def peer_allowed(self, conn: socket.socket) -> bool:
        """True when the connected peer runs as the code's user."""
        size = struct.calcsize("3i")
        try:
            _pid, uid, _gid = struct.unpack(
                "3i", conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, size)
            )
        except OSError:
            return False
        return bool(uid == self.uid)

    def close(self) -> None:
        """Stop listening and delete the socket and its directory (idempotent)."""
        if self._closed:
            return
        self._closed = True
        with contextlib.suppress(OSError):
            self.listener.close()
        shutil.rmtree(self.directory, ignore_errors=True)


def _loop_can_read(sock: Any) -> bool:
    """True for a socket the event loop can poll itself (not TLS, not a wrapper)."""
    return (
        isinstance(sock, socket.socket)
        and not isinstance(sock, ssl.SSLSocket)
        and sock.family in (socket.AF_UNIX, socket.AF_INET, socket.AF_INET6)
    )


def _defined_in(cls: type, name: str) -> type | None:
    """The class in ``cls``'s MRO that defines attribute ``name``."""
    return next((base for base in cls.__mro__ if name in vars(base)), None)


class ContainerTransport(RuntimeTransport):
    """The attach stream of one container whose main process is the runtime.

    Created by :meth:`attach` after the container was created and before it starts.
    """

    def __init__(
        self,
        client: Any,
        container_id: str,
        attach_sock: Any,
        events: Any,
        *,
        remove_on_kill: bool,
        mem_limit: str | None,
        loop: asyncio.AbstractEventLoop,
        protocol: ProtocolSocket | None = None,
    ) -> None:
        self.client = client
        self.container_id = container_id
        self._attach = attach_sock
        self._sock: Any = getattr(attach_sock, "_sock", attach_sock)
        # Socket wrappers of some transports (docker-py's ssh:// socket) override recv()
        # only: their inherited recv_into would read the wrong stream.
        self._plain_socket = _defined_in(type(self._sock), "recv") is _defined_in(
            type(self._sock), "recv_into"
        )
        self._loop_reads = self._plain_socket and _loop_can_read(self._sock)
        # The runtime's protocol output: the attach stream's stdout, unless the runtime
        # connects to ``protocol`` first (then its stdout frames are ignored).
        self._protocol = protocol
        self._conn: socket.socket | None = None  # the runtime's connection to it
        self._conn_reading = False
        self._inbox = bytearray()  # loop reading: bytes received, not yet a whole frame
        self._parts: list[bytes | bytearray] = []  # loop reading: the current line's start
        self._loop_started = False  # loop reading: the socket was made non-blocking
        self._reading = False  # loop reading: the socket is registered with the loop
        self._paused = False  # loop reading: too many lines wait; Docker holds the rest
        self._send_lock: asyncio.Lock | None = None
        self._events = events
        self._remove_on_kill = remove_on_kill
        self._mem_limit = mem_limit
        self._loop = loop
        self._lines: asyncio.Queue[bytes] = asyncio.Queue()
        self._slots = threading.Semaphore(_PENDING_LINES)
        self._eof = False
        self._write_lock = threading.Lock()
        self._stderr_tail = b""
        self._oom = False
        self._kill_signal: str | None = None
        self._exit_code: int | None = None
        self._exited = threading.Event()
        self._closed = False
        self._reader = threading.Thread(
            target=self._read_frames, name=f"kb-docker-attach-{container_id[:12]}", daemon=True
        )
        self._watcher = threading.Thread(
            target=self._watch_events, name=f"kb-docker-events-{container_id[:12]}", daemon=True
        )

    @classmethod
    def attach(
        cls,
        client: Any,
        container_id: str,
        *,
        remove_on_kill: bool,
        mem_limit: str | None,
        loop: asyncio.AbstractEventLoop,
        protocol: ProtocolSocket | None = None,
    ) -> ContainerTransport:
        """Subscribe to the container's events and attach to its streams (blocking).

        Call before starting the container; then :meth:`start_threads` after it started.
        """
        events = client.api.events(filters={"container": container_id}, decode=True)
        try:
            sock = client.api.attach_socket(
                container_id, params={"stdin": 1, "stdout": 1, "stderr": 1, "stream": 1}
            )
        except Exception:
            with contextlib.suppress(Exception):
                events.close()
            raise
        return cls(
            client,
            container_id,
            sock,
            events,
            remove_on_kill=remove_on_kill,
            mem_limit=mem_limit,
            loop=loop,
            protocol=protocol,
        )

    def start_threads(self) -> None:
        """Start reading the attach stream (in the loop or a thread) and the event watcher."""
        if self._loop_reads:
            self._loop.call_soon_threadsafe(self._begin_loop_reading)
        else:
            # read by the event loop only: the runtime finds no socket and uses stdout
            protocol, self._protocol = self._protocol, None
            if protocol is not None:
                protocol.close()
            self._reader.start()
        self._watcher.start()

    @property
    def protocol_over_socket(self) -> bool:
        """True once the runtime's protocol output comes through the Unix socket."""
        return self._conn is not None

    # -- reading in the event loop (plain sockets) ------------------------------------

    def _begin_loop_reading(self) -> None:
        """Make the socket non-blocking and start polling it (once; loop thread only)."""
        if self._loop_started or self._closed:
            return
        self._loop_started = True
        try:
            self._sock.setblocking(False)
        except OSError as exc:
            log.debug("attach stream of %s unusable: %s", self.container_id[:12], exc)
            self._lines.put_nowait(b"")
            return
        self._resume_loop_reading()
        if self._protocol is not None:
            try:
                self._loop.add_reader(self._protocol.listener.fileno(), self._on_accept)
            except (OSError, ValueError) as exc:
                log.debug("protocol socket unusable: %s", exc)
                self._drop_protocol_socket()

    def _drop_protocol_socket(self) -> None:
        """Stop offering the socket (connected, or the runtime uses stdout instead)."""
        protocol, self._protocol = self._protocol, None
        if protocol is None:
            return
        with contextlib.suppress(OSError, ValueError, RuntimeError):
            self._loop.remove_reader(protocol.listener.fileno())
        protocol.close()

    def _on_accept(self) -> None:
        protocol = self._protocol
        if protocol is None:
            return
        try:
            conn, _addr = protocol.listener.accept()
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            log.debug("protocol socket failed: %s", exc)
            self._drop_protocol_socket()
            return
        if not protocol.peer_allowed(conn):
            conn.close()
            return
        self._drop_protocol_socket()
        try:
            conn.setblocking(False)
        except OSError:
            conn.close()
            return
        self._conn = conn
        self._resume_conn_reading()

    def _resume_conn_reading(self) -> None:
        if self._conn is None or self._conn_reading or self._closed:
            return
        try:
            self._loop.add_reader(self._conn.fileno(), self._on_conn_readable)
        except (OSError, ValueError) as exc:
            log.debug("protocol connection unreadable: %s", exc)
            self._lines.put_nowait(b"")
            return
        self._conn_reading = True
        self._paused = False

    def _stop_conn_reading(self) -> None:
        if self._conn is not None and self._conn_reading:
            self._conn_reading = False
            with contextlib.suppress(OSError, ValueError):
                self._loop.remove_reader(self._conn.fileno())

    def _on_conn_readable(self) -> None:
        assert self._conn is not None
        try:
            chunk = self._conn.recv(_RECV_SIZE)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            if not self._closed:
                log.debug("protocol connection of %s failed: %s", self.container_id[:12], exc)
            chunk = b""
        if not chunk:
            self._stop_conn_reading()
            if self._parts:
                self._lines.put_nowait(b"".join(self._parts))
                self._parts = []
            self._lines.put_nowait(b"")
            return
        self._take_stdout(chunk)
        if self._lines.qsize() >= _PENDING_LINES:
            self._stop_conn_reading()
            self._paused = True

    def _resume_loop_reading(self) -> None:
        if self._reading or self._closed:
            return
        try:
            self._loop.add_reader(self._sock.fileno(), self._on_readable)
        except (OSError, ValueError) as exc:
            log.debug("attach stream of %s unreadable: %s", self.container_id[:12], exc)
            self._lines.put_nowait(b"")
            return
        self._reading = True
        self._paused = False

    def _stop_loop_reading(self) -> None:
        if self._reading:
            self._reading = False
            with contextlib.suppress(OSError, ValueError):
                self._loop.remove_reader(self._sock.fileno())

    def _on_readable(self) -> None:
        try:
            chunk = self._sock.recv(_RECV_SIZE)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            if not self._closed:
                log.debug("attach stream of %s failed: %s", self.container_id[:12], exc)
            chunk = b""
        if not chunk:
            self._stop_loop_reading()
            if self._conn is not None:
                return  # the protocol ends with the runtime's connection
            self._drop_protocol_socket()
            if self._parts:
                self._lines.put_nowait(b"".join(self._parts))
                self._parts = []
            self._lines.put_nowait(b"")
            return
        self._inbox += chunk
        self._take_frames()
        if self._conn is None and self._lines.qsize() >= _PENDING_LINES:
            self._stop_loop_reading()
            self._paused = True

    def _take_frames(self) -> None:
        """Split the whole frames received so far; stdout lines go to the queue."""
        inbox = self._inbox
        start = 0
        with memoryview(inbox) as view:  # one copy per frame, none of the rest of the inbox
            while len(inbox) - start >= 8:
                kind, size = struct.unpack_from(">BxxxL", inbox, start)
                if len(inbox) - start - 8 < size:
                    break
                payload = bytes(view[start + 8 : start + 8 + size])
                start += 8 + size
                if kind == 1 and self._conn is None and self._protocol is not None:
                    # Output on stdout: unless the runtime's connection is waiting (then
                    # this was written before it, not protocol), it uses stdout instead.
                    self._on_accept()
                    if self._conn is None:
                        self._drop_protocol_socket()
                        self._take_stdout(payload)
                elif kind == 1 and self._conn is None:
                    self._take_stdout(payload)
                elif kind == 2:
                    self._stderr_tail = (self._stderr_tail + payload)[-_STDERR_TAIL:]
        if start == len(inbox):
            self._inbox = bytearray()  # let a large buffer go
        else:
            del inbox[:start]

    def _take_stdout(self, payload: bytes) -> None:
        start = 0
        while True:
            end = payload.find(b"\n", start)
            if end < 0:
                if start < len(payload):
                    self._parts.append(payload if start == 0 else payload[start:])
                return
            self._parts.append(payload[start : end + 1])
            self._lines.put_nowait(b"".join(self._parts))
            self._parts = []
            start = end + 1

    # -- threads -------------------------------------------------------------------

    def _recv_exact(self, n: int) -> bytearray | None:
        """Receive exactly ``n`` bytes into one buffer (no re-copying per chunk)."""
        data = bytearray(n)
        view = memoryview(data)
        got = 0
        while got < n:
            if self._plain_socket:
                count = self._sock.recv_into(view[got:])
            else:
                chunk = self._sock.recv(n - got)
                count = len(chunk)
                view[got : got + count] = chunk
            if not count:
                return None
            got += count
        return data

    def _deliver(self, line: bytes) -> None:
        if line:  # the end-of-stream marker never waits
            while not self._slots.acquire(timeout=0.5):
                if self._closed:  # nobody reads any more
                    return
        with contextlib.suppress(RuntimeError):  # the loop is closed
            self._loop.call_soon_threadsafe(self._lines.put_nowait, line)

    def _read_frames(self) -> None:
        # The start of the current line, one part per frame: a large message (an image
        # display is one line of a megabyte or more) spans many frames and is joined
        # once when its newline arrives, not re-copied at every frame.
        parts: list[bytes | bytearray] = []
        try:
            while True:
                header = self._recv_exact(8)
                if header is None:
                    break
                kind, size = struct.unpack(">BxxxL", header)
                payload = self._recv_exact(size) if size else bytearray()
                if payload is None:
                    break
                if kind == 1:
                    start = 0
                    while True:
                        end = payload.find(b"\n", start)
                        if end < 0:
                            if start < len(payload):
                                parts.append(payload if start == 0 else payload[start:])
                            break
                        parts.append(payload[start : end + 1])
                        self._deliver(b"".join(parts))
                        parts = []
                        start = end + 1
                elif kind == 2:
                    self._stderr_tail = (self._stderr_tail + payload)[-_STDERR_TAIL:]
        except OSError as exc:
            if not self._closed:
                log.debug("attach stream of %s failed: %s", self.container_id[:12], exc)
        finally:
            if parts:
                self._deliver(b"".join(parts))
            self._deliver(b"")

    def _watch_events(self) -> None:
        try:
            for event in self._events:
                action = str(event.get("Action") or event.get("status") or "")
                attrs = (event.get("Actor") or {}).get("Attributes") or {}
                if action == "oom":
                    self._oom = True
                elif action == "kill":
                    self._kill_signal = str(attrs.get("signal", "")) or None
                elif action == "die":
                    with contextlib.suppress(TypeError, ValueError):
                        self._exit_code = int(attrs.get("exitCode", ""))
                    self._exited.set()
                elif action == "destroy":
                    break
        except Exception as exc:
            if not self._closed:
                log.debug("event stream of %s ended: %s", self.container_id[:12], exc)
        finally:
            self._exited.set()

    # -- RuntimeTransport ------------------------------------------------------------

    async def read_line(self) -> bytes:
        """Return the next stdout line of the runtime; ``b""`` once the stream ended."""
        if self._eof:
            return b""
        line = await self._lines.get()
        if not line:
            self._eof = True
        elif not self._loop_reads:
            self._slots.release()
        elif self._paused and self._lines.qsize() < _PENDING_LINES:
            if self._conn is not None:
                self._resume_conn_reading()
            else:
                self._resume_loop_reading()
        return line

    def _send(self, data: bytes) -> None:
        with self._write_lock:
            self._sock.sendall(data)

    async def write(self, data: bytes) -> None:
        """Send bytes to the runtime's stdin through the attach socket."""
        if self._closed:
            raise OSError("the container's attach stream is closed")
        if not self._loop_reads:
            await asyncio.to_thread(self._send, data)
            return
        if self._send_lock is None:
            self._send_lock = asyncio.Lock()
        self._begin_loop_reading()  # the socket is non-blocking from here on
        async with self._send_lock:  # one message's bytes never interleave with another's
            await self._loop.sock_sendall(self._sock, data)

    async def send_interrupt_signal(self) -> None:
        """SIGINT to the container's init, which forwards it to the runtime."""
        from docker.errors import DockerException

        def send() -> None:
            with contextlib.suppress(DockerException):
                self.client.api.kill(self.container_id, signal="SIGINT")

        await asyncio.to_thread(send)

    async def kill(self) -> None:
        """Stop the container at once: force-remove it (or SIGKILL it when it is kept)."""
        from docker.errors import DockerException

        def kill() -> None:
            if not self._remove_on_kill:
                with contextlib.suppress(DockerException):
                    self.client.api.kill(self.container_id)
                return
            deadline = time.monotonic() + _REMOVE_WAIT_S
            with contextlib.suppress(DockerException):
                self.client.api.remove_container(self.container_id, force=True, v=True)
            while time.monotonic() < deadline:  # Docker's auto_remove may still be at work
                try:
                    self.client.api.inspect_container(self.container_id)
                except DockerException:
                    return
                time.sleep(0.05)

        await asyncio.to_thread(kill)

    def _inspect_state(self) -> None:
        from docker.errors import DockerException

        try:
            state = self.client.api.inspect_container(self.container_id).get("State") or {}
        except DockerException:
            return
        if state.get("Running"):
            return
        self._oom = self._oom or bool(state.get("OOMKilled"))
        with contextlib.suppress(TypeError, ValueError):
            self._exit_code = int(state.get("ExitCode", ""))
        self._exited.set()

    async def describe_exit(self) -> str:
        """Say how the container ended: exit code, signal, OOMKilled, the runtime's last words."""
        if not self._exited.is_set():
            await asyncio.to_thread(self._exited.wait, _EXIT_INFO_WAIT_S)
        if self._exit_code is None:
            await asyncio.to_thread(self._inspect_state)
        if self._oom:
            limit = f" (mem_limit={self._mem_limit})" if self._mem_limit else ""
            text = f"OOMKilled: the container ran out of memory{limit}"
            if self._exit_code is not None:
                text += f", {describe_exit_code(self._exit_code)}"
        elif self._exit_code is not None:
            text = f"the container ended with {describe_exit_code(self._exit_code)}"
            if self._exit_code == 137 and self._kill_signal in ("9", "SIGKILL"):
                text += "; it was killed (e.g. `docker kill` or `docker rm -f`)"
        else:
            text = "the container's output stream ended"
        tail = self._stderr_tail.decode("utf-8", "replace").strip()
        if tail:
            text += f"; it said: {tail.splitlines()[-1][:300]}"
        return text

    async def close(self) -> None:
        """Close the attach socket and the event stream (the threads then end)."""
        if self._closed:
            return
        self._closed = True
        self._stop_loop_reading()
        self._stop_conn_reading()
        self._drop_protocol_socket()
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()

        def close() -> None:
            with contextlib.suppress(OSError):
                self._sock.shutdown(socket.SHUT_RDWR)
            with contextlib.suppress(Exception):
                self._attach.close()
            with contextlib.suppress(Exception):
                self._sock.close()
            with contextlib.suppress(Exception):
                self._events.close()

        await asyncio.to_thread(close)
