"""Where the emulator's sessions run: a local runtime subprocess or a Docker container.

Each session gets its own data directory, which its code sees at ``/mnt/data`` as on the
service:

- ``docker``: the directory is bind-mounted at ``/mnt/data`` in the session's container.
- ``local``: the runtime starts inside a private mount namespace (``unshare --mount``)
  where a tmpfs covers ``/mnt`` and the session's directory is bind-mounted at
  ``/mnt/data``; the host's ``/mnt`` is untouched. That needs Linux, root (or
  CAP_SYS_ADMIN) and util-linux ``unshare``; elsewhere the emulator warns once and the
  code runs *in* its data directory, where ``/mnt/data`` paths do not work (relative
  paths do).
"""

from __future__ import annotations

import functools
import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Protocol

from ..errors import ConfigurationError
from ..executors.base import RemoteExecutor

__all__ = ["Backend", "DockerBackend", "LocalBackend", "make_backend", "mount_namespace_available"]

_log = logging.getLogger(__name__)

_MOUNT_SCRIPT = (
    'mount -t tmpfs kb-emulator /mnt && mkdir -p /mnt/data && mount --bind "$0" /mnt/data '
    '&& exec "$@"'
)


class Backend(Protocol):
    """Creates the executor that runs one emulated session."""

    name: str

    def create(self, data_dir: Path, home_dir: Path) -> RemoteExecutor:
        """Return a (not yet started) executor whose code sees ``data_dir`` at /mnt/data."""


@functools.cache
def mount_namespace_available() -> bool:
    """True when a private mount namespace with a bind mount at /mnt/data can be made here."""
    if not sys.platform.startswith("linux") or shutil.which("unshare") is None:
        return False
    probe = Path(os.environ.get("TMPDIR", "/tmp"))
    try:
        done = subprocess.run(
            [
                "unshare",
                "--mount",
                "--propagation",
                "private",
                "--",
                "sh",
                "-c",
                _MOUNT_SCRIPT,
                str(probe),
                "test",
                "-d",
                "/mnt/data",
            ],
            capture_output=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return False
    return done.returncode == 0


class LocalBackend:
    """Sessions as local runtime subprocesses (``kernel_bridge.executors.local``)."""

    name = "local"

    def __init__(self, python: str | None = None) -> None:
        self.python = python or sys.executable
        self.isolated = mount_namespace_available()
        if not self.isolated:
            _log.warning(
                "The local backend cannot give each session its own /mnt/data here (it "
                "needs Linux, root and util-linux 'unshare'): session code runs in its own "
                "data directory instead, so relative paths work but '/mnt/data/...' paths "
                "do not. Use --backend docker for full fidelity."
            )

    def create(self, data_dir: Path, home_dir: Path) -> RemoteExecutor:
        """A LocalExecutor in a private mount namespace (or in ``data_dir`` without one)."""
        from ..executors.local import LocalExecutor

        if self.isolated:
            prefix = [
                "unshare",
                "--mount",
                "--propagation",
                "private",
                "--",
                "sh",
                "-c",
                _MOUNT_SCRIPT,
                str(data_dir),
            ]
            return LocalExecutor(python=self.python, cwd=str(home_dir), command_prefix=prefix)
        return LocalExecutor(python=self.python, cwd=str(data_dir))


class DockerBackend:
    """Sessions as containers (``kernel_bridge.executors.docker``), data dir at /mnt/data."""

    name = "docker"

    def __init__(self, image: str) -> None:
        self.image = image

    def create(self, data_dir: Path, home_dir: Path) -> RemoteExecutor:
        """A DockerCommandLineCodeExecutor with ``data_dir`` bind-mounted at /mnt/data.

        Its own work_dir (``home_dir``, at /workspace) is the code's starting directory,
        so files written to relative paths do not show up in /mnt/data, as on the service.
        """
        from ..executors.docker import DockerCommandLineCodeExecutor
        from ..executors.docker import _hardening as hardening

        # The container's code runs as an unprivileged user (the executor's hardened
        # default), which must own both directories the emulator made for it.
        user = hardening.default_user(None)
        for directory in (data_dir, home_dir):
            hardening.make_writable_for(directory, user)
        executor: RemoteExecutor = DockerCommandLineCodeExecutor(
            image=self.image,
            work_dir=str(home_dir),
            user=user,
            extra_volumes={str(data_dir): {"bind": "/mnt/data", "mode": "rw"}},
        )
        return executor


def make_backend(name: str, *, python: str | None = None, image: str = "python:3-slim") -> Backend:
    """Return the backend called ``name`` (``local`` or ``docker``)."""
    if name == "local":
        return LocalBackend(python)
    if name == "docker":
        return DockerBackend(image)
    raise ConfigurationError(f"unknown emulator backend {name!r}; use 'local' or 'docker'")
