"""The Unix socket through which a runtime in a local engine's container sends its protocol.

Offered by :class:`~kernel_bridge.executors.docker._executor.DockerCommandLineCodeExecutor`
when it creates a container; read by
:class:`~kernel_bridge.executors.docker._transport.ContainerTransport`.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import socket
import struct
import sys
from pathlib import Path

from .._temp_dirs import make_owned_temp_dir
from . import _hardening as hardening

__all__ = ["ProtocolSocket"]

log = logging.getLogger(__name__)


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
