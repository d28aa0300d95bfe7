"""The embedded default executor: the runtime as a subprocess of the kernel.

It needs neither Docker nor Azure, so a fresh ``pip install`` gives a working kernel.
User code runs on this host (that is what "local" means); every other executor keeps
it off the host.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

from traitlets import Dict, List, Unicode
from traitlets.config import LoggingConfigurable

from ..errors import ConfigurationError, ExecutorStartError
from ..runtime import bootstrap_argv, bootstrap_payload
from ._channel import RuntimeTransport
from ._runtime_executor import RuntimeBackedExecutor
from .base import ExecutorCapabilities, ExecutorMeta

__all__ = ["LocalExecutor", "SubprocessTransport", "describe_returncode"]

_STREAM_LIMIT = 1 << 30
"""Longest protocol line accepted (a large image display is one line)."""
_STDERR_TAIL = 4096


def describe_returncode(returncode: int | None) -> str:
    """Word a process exit status for people: ``killed by signal 9 (SIGKILL)``."""
    if returncode is None:
        return "still running"
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = "unknown signal"
        return f"killed by signal {-returncode} ({name})"
    return f"exit code {returncode}"


class SubprocessTransport(RuntimeTransport):
    """A runtime running as a local subprocess in its own process group."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self._process = process
        self._stderr_tail = b""
        self._stderr_task = asyncio.ensure_future(self._drain_stderr())

    @classmethod
    async def spawn(
        cls, argv: Sequence[str], *, cwd: str | None, env: dict[str, str] | None
    ) -> SubprocessTransport:
        """Start ``argv`` and feed it the runtime bootstrap payload."""
        process = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            cwd=cwd,
            env=env,
            start_new_session=True,
            limit=_STREAM_LIMIT,
        )
        transport = cls(process)
        with contextlib.suppress(OSError):
            await transport.write(bootstrap_payload())
        return transport

    @property
    def pid(self) -> int:
        """The runtime's process id on this host."""
        return self._process.pid

    async def _drain_stderr(self) -> None:
        stream = self._process.stderr
        assert stream is not None
        while True:
            chunk = await stream.read(65536)
            if not chunk:
                return
            self._stderr_tail = (self._stderr_tail + chunk)[-_STDERR_TAIL:]

    async def read_line(self) -> bytes:
        """Read one protocol line from the runtime's stdout."""
        stream = self._process.stdout
        assert stream is not None
        try:
            return await stream.readline()
        except (ValueError, asyncio.LimitOverrunError):  # a line beyond the limit
            return b""

    async def write(self, data: bytes) -> None:
        """Write to the runtime's stdin."""
        stream = self._process.stdin
        assert stream is not None
        try:
            stream.write(data)
            await stream.drain()
        except (ConnectionError, RuntimeError) as exc:
            raise OSError(str(exc)) from exc

    def _signal_group(self, signum: int) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self._process.pid, signum)

    async def send_interrupt_signal(self) -> None:
        """Send SIGINT to the runtime's process group."""
        if self._process.returncode is None:
            self._signal_group(signal.SIGINT)

    async def kill(self) -> None:
        """SIGKILL the runtime's process group and reap it."""
        if self._process.returncode is None:
            self._signal_group(signal.SIGKILL)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._process.wait(), 2.0)

    async def describe_exit(self) -> str:
        """Say how the runtime ended, with the tail of its own diagnostics."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._process.wait(), 2.0)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(self._stderr_task), 0.5)
        text = describe_returncode(self._process.returncode)
        tail = self._stderr_tail.decode("utf-8", "replace").strip()
        if tail:
            text += f"; it said: {tail.splitlines()[-1][:300]}"
        return text

    async def close(self) -> None:
        """Close the pipes."""
        if self._process.stdin is not None:
            self._process.stdin.close()
        self._stderr_task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await self._stderr_task


class LocalExecutor(RuntimeBackedExecutor, LoggingConfigurable, metaclass=ExecutorMeta):
    """Runs cells in a runtime subprocess on this host (the embedded default).

    Configurable from the kernelspec: ``--LocalExecutor.python=/path/to/python``,
    ``--LocalExecutor.cwd=DIR``. Files live in ``cwd`` (default: the kernel's own
    working directory, which Jupyter sets to the notebook's folder).
    """

    kind = "local"

    python = Unicode(
        sys.executable, config=True, help="The Python interpreter (3.8+) that runs the cells."
    )
    cwd = Unicode(
        None,
        allow_none=True,
        config=True,
        help="Working directory of the code (default: the kernel's).",
    )
    env = Dict(
        value_trait=Unicode(), config=True, help="Extra environment variables for the runtime."
    )
    command_prefix = List(
        Unicode(),
        config=True,
        help="Words put before the interpreter (e.g. a namespace or sandbox wrapper).",
    )

    def __init__(
        self,
        python: str = sys.executable,
        cwd: str | Path | None = None,
        *,
        functions: Sequence[object] = (),
        functions_module: str = "functions",
        env: dict[str, str] | None = None,
        command_prefix: Sequence[str] = (),
        **kwargs: object,
    ) -> None:
        LoggingConfigurable.__init__(self, **kwargs)
        RuntimeBackedExecutor.__init__(self)
        self.python = python
        self.cwd = None if cwd is None else str(cwd)
        self.env = dict(env or {})
        self.command_prefix = list(command_prefix)
        if not functions_module.isidentifier():
            raise ConfigurationError(
                f"functions_module {functions_module!r} is not a Python identifier; "
                "use a name like 'functions'"
            )
        self._functions = list(functions)
        self._functions_module_name = functions_module

    @property
    def capabilities(self) -> ExecutorCapabilities:
        """Streaming, real interrupts, stdin, and shell blocks."""
        return ExecutorCapabilities(
            streaming=True,
            remote_interrupt=True,
            stdin=True,
            languages=("python", "bash", "sh", "shell", "pwsh", "powershell", "ps1"),
        )

    def _functions_source(self) -> tuple[Sequence[object], str]:
        return self._functions, self._functions_module_name

    @property
    def work_dir(self) -> Path:
        """The directory the code runs in."""
        return Path(self.cwd) if self.cwd else Path.cwd()

    def _debugpy_hint(self) -> str:
        """Name the interpreter, which needs debugpy for the debugger."""
        return f", {self.python}; e.g. {self.python} -m pip install debugpy"

    async def _spawn(self) -> RuntimeTransport:
        python = shutil.which(self.python) or self.python
        if not os.path.exists(python):
            raise ExecutorStartError(
                f"local executor: the interpreter {self.python!r} was not found; set "
                "--LocalExecutor.python to a Python 3.8+ interpreter"
            )
        options: list[str] = []
        if self.cwd:
            options += ["--cwd", str(self.cwd)]
        argv = [*self.command_prefix, *bootstrap_argv(python, *options)]
        env = {**os.environ, **self.env} if self.env else None
        try:
            return await SubprocessTransport.spawn(argv, cwd=None, env=env)
        except OSError as exc:
            raise ExecutorStartError(
                f"local executor: could not start {argv[0]!r}: {exc.strerror or exc}"
            ) from exc

    def _resolve(self, name: Path | str) -> Path:
        base = self.work_dir.resolve()
        path = (base / name).resolve()
        if not path.is_relative_to(base):
            raise ConfigurationError(
                f"{str(name)!r} is outside the working directory {str(base)!r}; use names inside it"
            )
        return path

    async def upload_files(self, files: Sequence[Path | str]) -> None:
        """Check the files exist in the working directory (host and runtime share it)."""
        for name in files:
            path = self._resolve(name)
            if not path.exists():
                raise ConfigurationError(f"{str(name)!r} does not exist in {self.work_dir}")

    async def download_files(self, files: Sequence[Path | str]) -> list[str]:
        """Return the host paths of files in the working directory (they are already here)."""
        return [str(self._resolve(name)) for name in files if self._resolve(name).exists()]

    async def get_file_list(self) -> list[str]:
        """List the files in the working directory."""
        return sorted(p.name for p in self.work_dir.iterdir() if p.is_file())
