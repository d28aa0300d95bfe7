"""The embedded default executor: the runtime as a subprocess of the kernel.

It needs neither Docker nor Azure, so a fresh ``pip install`` gives a working kernel.
User code runs on this host (that is what "local" means); every other executor keeps
it off the host.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

from traitlets import Dict, List, Unicode
from traitlets.config import LoggingConfigurable

from ...errors import ConfigurationError, ExecutorStartError
from ...runtime import bootstrap_argv, bootstrap_payload
from .._trait_signature import TraitSignature
from ..autogen_compat import WorkspaceFiles
from ..base import ExecutorMeta
from ..runtime_backed.channel import MAX_LINE_BYTES, RuntimeTransport
from ..runtime_backed.executor import RuntimeBackedExecutor
from ._early_runtime import adopt as adopt_early_runtime

__all__ = ["LocalExecutor", "SubprocessTransport", "describe_returncode"]

_STREAM_LIMIT = MAX_LINE_BYTES
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


def _proc_stats() -> dict[int, tuple[int, int]]:
    """{pid: (ppid, pgrp)} of the living processes on this host (empty without /proc)."""
    table: dict[int, tuple[int, int]] = {}
    try:
        entries = os.listdir("/proc")
    except OSError:
        return table
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                stat = f.read()
            fields = stat[stat.rindex(b")") + 2 :].split()
            if fields[0] not in (b"Z", b"X"):
                table[int(entry)] = (int(fields[1]), int(fields[2]))
        except (OSError, ValueError, IndexError):
            continue
    return table


def _process_tree(root: int) -> list[int]:
    """The living descendants of ``root``, in any process group or session."""
    children: dict[int, list[int]] = {}
    for pid, (ppid, _group) in _proc_stats().items():
        children.setdefault(ppid, []).append(pid)
    found: list[int] = []
    todo = [root]
    while todo:
        for pid in children.get(todo.pop(), ()):
            found.append(pid)
            todo.append(pid)
    return found


def _group_members(pgid: int) -> list[int]:
    """The living processes whose process group is ``pgid``."""
    return [pid for pid, (_ppid, group) in _proc_stats().items() if group == pgid]


class _Process(Protocol):
    """What the transport uses of a process: asyncio's ``Process`` or an adopted one."""

    @property
    def pid(self) -> int: ...

    @property
    def returncode(self) -> int | None: ...

    stdin: asyncio.StreamWriter | None
    stdout: asyncio.StreamReader | None
    stderr: asyncio.StreamReader | None

    async def wait(self) -> int: ...


class _AdoptedProcess:
    """A ``subprocess.Popen`` started before the event loop, with asyncio streams."""

    def __init__(
        self,
        popen: subprocess.Popen[bytes],
        stdin: asyncio.StreamWriter,
        stdout: asyncio.StreamReader,
        stderr: asyncio.StreamReader,
    ) -> None:
        self._popen = popen
        self.stdin: asyncio.StreamWriter | None = stdin
        self.stdout: asyncio.StreamReader | None = stdout
        self.stderr: asyncio.StreamReader | None = stderr

    @classmethod
    async def connect(cls, popen: subprocess.Popen[bytes]) -> _AdoptedProcess:
        """Wrap the process's pipes in asyncio streams on the running loop."""
        loop = asyncio.get_running_loop()
        assert popen.stdin is not None and popen.stdout is not None and popen.stderr is not None
        readers = []
        for pipe in (popen.stdout, popen.stderr):
            reader = asyncio.StreamReader(limit=_STREAM_LIMIT, loop=loop)
            await loop.connect_read_pipe(
                functools.partial(asyncio.StreamReaderProtocol, reader), pipe
            )
            readers.append(reader)
        write_transport, write_protocol = await loop.connect_write_pipe(
            lambda: asyncio.StreamReaderProtocol(asyncio.StreamReader(loop=loop)), popen.stdin
        )
        writer = asyncio.StreamWriter(write_transport, write_protocol, None, loop)
        return cls(popen, writer, readers[0], readers[1])

    @property
    def pid(self) -> int:
        """The process id."""
        return self._popen.pid

    @property
    def returncode(self) -> int | None:
        """The exit status once it ended (reaped on asking), else None."""
        return self._popen.poll()

    async def wait(self) -> int:
        """Wait for the process to end without blocking the loop."""
        while self._popen.poll() is None:
            await asyncio.sleep(0.01)
        return int(self._popen.returncode)


class SubprocessTransport(RuntimeTransport):
    """A runtime running as a local subprocess in its own process group."""

    def __init__(self, process: _Process) -> None:
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

    @classmethod
    async def adopt(cls, popen: subprocess.Popen[bytes]) -> SubprocessTransport:
        """Take over a runtime started (and fed its bootstrap) before the loop ran."""
        return cls(await _AdoptedProcess.connect(popen))

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
        """SIGKILL the runtime, its process group and all its descendants, and reap it.

        A runtime that exits on its own ends its descendants itself; this covers the
        runtime that is killed (timeout, replacement) or died with children still running.
        """
        pid = self._process.pid
        if self._process.returncode is None:
            # Collected first: once the runtime is gone its orphans no longer show as its
            # descendants (those that left its process group would be lost).
            strays = _process_tree(pid)
            self._signal_group(signal.SIGKILL)
        else:
            # The runtime was the group leader (its pid is the group id): processes still
            # in that group are its orphans.
            strays = _group_members(pid)
        for stray in strays:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(stray, signal.SIGKILL)
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


class LocalExecutor(
    RuntimeBackedExecutor, WorkspaceFiles, LoggingConfigurable, metaclass=ExecutorMeta
):
    """Runs cells in a runtime subprocess on this host (the embedded default).

    Configurable from the kernelspec: ``--LocalExecutor.python=/path/to/python``,
    ``--LocalExecutor.cwd=DIR``. Files live in ``cwd`` (default: the kernel's own
    working directory, which Jupyter sets to the notebook's folder).
    """

    kind = "local"
    temp_root = tempfile.gettempdir()  # the runtime shares this host's temporary folder

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

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        """``(python, cwd, *, functions, functions_module, env, command_prefix)`` (``_SIGNATURE``,
        defaults are the traits'), plus ``parent``: arguments given win over the
        configuration the parent (the kernel) carries.
        """
        given, passthrough = _SIGNATURE.bind(self, args, kwargs)
        functions: Sequence[object] = given.pop("functions", ())
        functions_module: str = given.pop("functions_module", "functions")
        if given.get("cwd") is not None:
            given["cwd"] = str(given["cwd"])
        LoggingConfigurable.__init__(self, **passthrough, **given)
        RuntimeBackedExecutor.__init__(self)
        if not functions_module.isidentifier():
            raise ConfigurationError(
                f"functions_module {functions_module!r} is not a Python identifier; "
                "use a name like 'functions'"
            )
        self._functions = list(functions)
        self._functions_module_name = functions_module

    def _expected_python_version(self) -> str | None:
        """This interpreter's version when the runtime runs on it (the default)."""
        python = shutil.which(self.python) or self.python
        if os.path.realpath(python) == os.path.realpath(sys.executable):
            return platform.python_version()
        return None

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
        early = adopt_early_runtime(argv, env)
        if early is not None:
            return await SubprocessTransport.adopt(early)
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


_SIGNATURE = TraitSignature(
    positional=("python", "cwd"),
    keyword=("functions", "functions_module", "env", "command_prefix"),
    others={"functions": (), "functions_module": "functions"},
)
_SIGNATURE.install(LocalExecutor)
