"""Transports for testing the runtime-backed machinery without a backend.

``PipeTransport`` speaks to a real kb_runtime subprocess over plain pipes (what a
backend does, minus process groups and containers); ``ScriptedTransport`` plays the
runtime's side of the protocol from a script, for faults a real runtime does not
produce on demand.
"""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from collections.abc import Callable, Sequence
from typing import Any

from kernel_bridge.executors.runtime_backed.channel import RuntimeTransport
from kernel_bridge.runtime import BOOTSTRAP_CODE, library_source, runtime_source

Frame = dict[str, Any] | bytes
"""A protocol message, or raw bytes (``b""`` ends the runtime's output)."""


class PipeTransport(RuntimeTransport):
    """A real runtime subprocess on plain pipes, started from the given runtime source."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process

    @classmethod
    async def start(cls, source: bytes | None = None) -> PipeTransport:
        source = runtime_source() if source is None else source
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-u",
            "-c",
            BOOTSTRAP_CODE,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            env={"KB_RUNTIME_NO_IPYTHON": "1", "PATH": "/usr/bin:/bin"},
            limit=1 << 24,
        )
        transport = cls(process)
        # the bootstrap reads the in-session library first, then the runtime
        for part in (library_source(), source):
            await transport.write(str(len(part)).encode() + b"\n" + part)
        return transport

    async def read_line(self) -> bytes:
        assert self.process.stdout is not None
        return await self.process.stdout.readline()

    async def write(self, data: bytes) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(data)
        await self.process.stdin.drain()

    async def send_interrupt_signal(self) -> None:
        self.process.send_signal(signal.SIGINT)

    async def kill(self) -> None:
        if self.process.returncode is None:
            self.process.kill()
        await self.process.wait()

    async def describe_exit(self) -> str:
        return f"exit code {await self.process.wait()}"

    async def close(self) -> None:
        if self.process.stdin is not None:
            self.process.stdin.close()


class ScriptedTransport(RuntimeTransport):
    """Plays the runtime: ``respond`` maps each message the channel sends to frames."""

    def __init__(
        self,
        first: Sequence[Frame] = (),
        respond: Callable[[dict[str, Any]], Sequence[Frame]] | None = None,
    ) -> None:
        self.lines: asyncio.Queue[bytes] = asyncio.Queue()
        self.respond = respond or (lambda msg: ())
        self.sent: list[dict[str, Any]] = []
        self.killed = False
        self.closed = False
        self.signals = 0
        for frame in first:
            self.feed(frame)

    def feed(self, frame: Frame) -> None:
        self.lines.put_nowait(
            frame if isinstance(frame, bytes) else json.dumps(frame).encode() + b"\n"
        )

    async def read_line(self) -> bytes:
        return await self.lines.get()

    async def write(self, data: bytes) -> None:
        if self.killed:
            raise BrokenPipeError("the runtime is gone")
        message = json.loads(data)
        self.sent.append(message)
        for frame in self.respond(message):
            self.feed(frame)
        if message["type"] == "shutdown":  # as the runtime does: its output ends
            self.feed(b"")

    async def send_interrupt_signal(self) -> None:
        self.signals += 1

    async def kill(self) -> None:
        if not self.killed:
            self.killed = True
            self.feed(b"")

    async def describe_exit(self) -> str:
        return "killed by signal 9 (SIGKILL)" if self.killed else "exit code 3"

    async def close(self) -> None:
        self.closed = True
