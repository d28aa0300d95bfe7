"""The kernel's ZMQ ports, listened on from the first milliseconds of the process.

A frontend connects to the ports of the connection file as soon as it has launched the
kernel. Until the kernel listens there, each attempt is refused and ZMQ tries again only
after its reconnect interval (0.1 s, plus up to 0.1 s of random jitter). ipykernel binds
its sockets after its imports; a kernel that then starts serving quickly, as this one
does, would spend up to 0.2 s of its cold start idle, waiting for the frontend's next
attempt. So ``python -m kernel_bridge`` calls :func:`listen` first thing: plain TCP
listening sockets on the connection file's shell, control, stdin and IOPub ports, where
the frontend's connections wait in the backlog (its messages queue in them) while the
kernel imports. :class:`~kernel_bridge.kernelapp.BridgeKernelApp` hands each listening
socket to the ZMQ socket that binds that port (:func:`take`, ZMQ's ``ZMQ_USE_FD``, as
systemd socket activation does), which then accepts those connections and handshakes as
usual. Nothing is read from a connection before ZMQ owns it.

Standard library only: this runs before any other import. Anything unusual (no
connection file, IPC transport, a host name, a port already in use) leaves the port to
ZMQ's own bind, exactly as without this module.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
from collections.abc import Sequence

__all__ = ["listen", "release", "take"]

_PORT_KEYS = ("shell_port", "control_port", "stdin_port", "iopub_port")
"""The ports the application binds through ``_bind_socket`` (the heartbeat binds its own)."""

_BACKLOG = 100
"""ZMQ's own listen backlog (``ZMQ_BACKLOG``)."""

_LISTENING: dict[tuple[str, int], socket.socket] = {}


def _connection_file(argv: Sequence[str]) -> str | None:
    """The ``-f`` argument, as Jupyter's kernelspecs pass it."""
    for index, arg in enumerate(argv):
        if arg in ("-f", "--f") and index + 1 < len(argv):
            return argv[index + 1]
        for prefix in ("-f=", "--f="):
            if arg.startswith(prefix):
                return arg[len(prefix) :]
    return None


def listen(argv: Sequence[str]) -> None:
    """Listen on the connection file's TCP ports; called by ``kernel_bridge.__main__``.

    Only an IPv4 address literal (Jupyter writes 127.0.0.1) and ports above zero are
    listened on; any error leaves that port to ZMQ's own bind later.
    """
    if os.name != "posix":  # SO_REUSEADDR means what ZMQ's own bind does only there
        return
    path = _connection_file(argv)
    if path is None or not os.path.isfile(path):
        return
    try:
        with open(path, encoding="utf-8") as file:
            info = json.load(file)
        ip = info.get("ip", "127.0.0.1")
        if info.get("transport", "tcp") != "tcp" or not isinstance(ip, str):
            return
        socket.inet_pton(socket.AF_INET, ip)
        ports = [info.get(key) for key in _PORT_KEYS]
    except (OSError, ValueError, AttributeError):
        return
    for port in ports:
        if type(port) is not int or not 0 < port < 65536 or (ip, port) in _LISTENING:
            continue
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            # as ZMQ sets it: a restarted kernel rebinds its ports despite TIME_WAIT
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            listener.bind((ip, port))
            listener.listen(_BACKLOG)
        except OSError:
            listener.close()
            continue
        _LISTENING[(ip, port)] = listener


def take(transport: str, ip: str, port: int) -> int | None:
    """Hand over the listening socket of ``ip:port`` as a file descriptor, or None.

    Called by the application just before it binds a ZMQ socket to that port; the
    caller's ZMQ socket owns the descriptor from then on. A listener on the same port
    but another address (the command line overrode the file) is closed, so that ZMQ's
    own bind does not find the port taken.
    """
    if transport == "tcp":
        listener = _LISTENING.pop((ip, port), None)
        if listener is not None:
            return listener.detach()
    for key in [key for key in _LISTENING if key[1] == port]:
        with contextlib.suppress(OSError):
            _LISTENING.pop(key).close()
    return None


def release() -> None:
    """Close the listeners nobody took (called once the application bound its sockets)."""
    while _LISTENING:
        _, listener = _LISTENING.popitem()
        with contextlib.suppress(OSError):
            listener.close()
