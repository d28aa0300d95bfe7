"""A runtime running as a container's main process, reached through Docker's attach stream.

The container is created with ``stdin_open`` (so ``StdinOnce``) and no tty, and attached
*before* it starts, so nothing it writes is lost. Docker multiplexes the container's
stdout and stderr on the attach socket in frames of an 8-byte header (stream type, 3
zero bytes, big-endian length) plus payload: stdout is the protocol (handed to the
channel line by line), stderr is the runtime's own diagnostics (its tail goes into error
messages). On a plain socket (the local engine's Unix socket, a TCP one) the event loop
reads the frames itself: a line then reaches the channel without a thread switch (about
0.15 ms less for a flushed print); a TLS or wrapped socket is read by a thread. For a
local engine the protocol comes over a :class:`ProtocolSocket` instead, and the attach
stream carries only diagnostics. (How bytes become frames and lines: :mod:`._reading`.)
A second thread follows the engine's events for the container (``oom``, ``kill``,
``die``) so :meth:`describe_exit` can say how it ended even after ``auto_remove``
deleted it.

When the attach socket closes (the kernel died, or :meth:`close`), Docker closes the
container's stdin (``StdinOnce``): the runtime reads EOF and exits, the container stops
and ``auto_remove`` deletes it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import socket
import ssl
import threading
import time
from typing import Any

from ..runtime_backed.channel import MAX_LINE_BYTES, RuntimeTransport
from ._protocol_socket import ProtocolSocket
from ._reading import (
    HEADER,
    STDERR,
    STDOUT,
    FrameSplitter,
    LineSplitter,
    LineTooLongError,
    LoopReader,
)

__all__ = ["ContainerTransport", "describe_exit_code"]

log = logging.getLogger(__name__)

_STDERR_TAIL = 4096
_EXIT_INFO_WAIT_S = 1.5
_REMOVE_WAIT_S = 1.5
_PENDING_LINES = 2
"""Protocol lines read from the container but not yet taken by the channel, at most: when
the kernel publishes slower than the container writes, reading pauses and the socket
holds the rest, not the kernel's memory."""
_RECV_SIZE = 65536
"""Bytes the event loop reads from a socket at a time."""


def describe_exit_code(code: int) -> str:
    """Word a container exit code: ``exit code 137 (killed by SIGKILL)``."""
    if code > 128:
        try:
            return f"exit code {code} (killed by {signal.Signals(code - 128).name})"
        except ValueError:
            pass
    return f"exit code {code}"


def _log_too_long(container_id: str, exc: LineTooLongError) -> None:
    log.warning("the runtime in %s sent %s: its output is no longer read", container_id[:12], exc)


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
        # loop reading: the attach socket's and the connection's readers, the frames
        # and the stdout line being assembled
        self._attach_reader: LoopReader | None = None
        self._conn_reader: LoopReader | None = None
        self._frames = FrameSplitter()
        self._stdout = LineSplitter(MAX_LINE_BYTES)
        self._gave_up = False  # the protocol broke its line limit: nothing more is read
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
        if self._attach_reader is not None or self._closed:
            return
        self._attach_reader = LoopReader(
            self._loop,
            self._sock,
            recv_size=_RECV_SIZE,
            on_chunk=self._on_attach_chunk,
            on_end=self._on_attach_end,
            what=f"attach stream of {self.container_id[:12]}",
        )
        try:
            self._sock.setblocking(False)
        except OSError as exc:
            log.debug("attach stream of %s unusable: %s", self.container_id[:12], exc)
            self._attach_reader.close()
            self._lines.put_nowait(b"")
            return
        self._attach_reader.resume()
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
        self._conn_reader = LoopReader(
            self._loop,
            conn,
            recv_size=_RECV_SIZE,
            on_chunk=self._on_conn_chunk,
            on_end=self._end_of_protocol,
            what=f"protocol connection of {self.container_id[:12]}",
        )
        self._conn_reader.resume()

    def _protocol_reader(self) -> LoopReader | None:
        """The reader the protocol's lines come from (loop reading)."""
        return self._conn_reader if self._conn is not None else self._attach_reader

    def _pause_if_behind(self) -> None:
        # too many lines wait for the channel: the rest stays in the socket
        reader = self._protocol_reader()
        if reader is not None and self._lines.qsize() >= _PENDING_LINES:
            reader.pause()
            self._paused = True

    def _on_conn_chunk(self, chunk: bytes) -> None:
        self._take_stdout(chunk)
        self._pause_if_behind()

    def _on_attach_chunk(self, chunk: bytes) -> None:
        for kind, payload in self._frames.feed(chunk):
            if kind == STDOUT and self._conn is None and self._protocol is not None:
                # Output on stdout: unless the runtime's connection is waiting (then this
                # was written before it, not protocol), it uses stdout instead.
                self._on_accept()
                if self._conn is None:
                    self._drop_protocol_socket()
                    self._take_stdout(payload)
            elif kind == STDOUT and self._conn is None:
                self._take_stdout(payload)
            elif kind == STDERR:
                self._stderr_tail = (self._stderr_tail + payload)[-_STDERR_TAIL:]
        if self._conn is None:
            self._pause_if_behind()

    def _on_attach_end(self) -> None:
        if self._conn is not None:
            return  # the protocol ends with the runtime's connection
        self._drop_protocol_socket()
        self._end_of_protocol()

    def _end_of_protocol(self) -> None:
        if self._gave_up:
            return
        rest = self._stdout.rest()
        if rest:
            self._lines.put_nowait(rest)
        self._lines.put_nowait(b"")

    def _take_stdout(self, payload: bytes) -> None:
        if self._gave_up:
            return
        try:
            for line in self._stdout.feed(payload):
                self._lines.put_nowait(line)
        except LineTooLongError as exc:
            _log_too_long(self.container_id, exc)
            self._gave_up = True  # the channel sees the end of the runtime's output
            if self._conn_reader is not None:
                self._conn_reader.close()
            self._lines.put_nowait(b"")

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
        lines = LineSplitter(MAX_LINE_BYTES)
        try:
            while True:
                header = self._recv_exact(HEADER.size)
                if header is None:
                    break
                kind, size = HEADER.unpack(header)
                payload = self._recv_exact(size) if size else bytearray()
                if payload is None:
                    break
                if kind == STDOUT:
                    for line in lines.feed(payload):
                        self._deliver(line)
                elif kind == STDERR:
                    self._stderr_tail = (self._stderr_tail + payload)[-_STDERR_TAIL:]
        except LineTooLongError as exc:
            _log_too_long(self.container_id, exc)
        except OSError as exc:
            if not self._closed:
                log.debug("attach stream of %s failed: %s", self.container_id[:12], exc)
        finally:
            rest = lines.rest()
            if rest:
                self._deliver(rest)
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
            self._paused = False
            reader = self._protocol_reader()
            if reader is not None and not self._closed:
                reader.resume()
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
        for reader in (self._attach_reader, self._conn_reader):
            if reader is not None:
                reader.close()
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
