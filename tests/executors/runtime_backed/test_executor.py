"""The runtime-backed executor (executors/runtime_backed/executor.py) with the smallest
backend: ``_spawn`` starts a real kb_runtime subprocess on plain pipes.

Everything the backends share is shown here once: lazy start, warm-up, functions
injected at every start, timeouts, a dead runtime replaced, restart, stop, and the
protocol-version check reaching the cell.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest
from _support.runtime_transports import PipeTransport

from kernel_bridge.errors import RuntimeProtocolError
from kernel_bridge.events import Error, Event, Finished, Result, Stream
from kernel_bridge.executors.runtime_backed import RuntimeBackedExecutor, RuntimeTransport
from kernel_bridge.runtime import PROTOCOL_VERSION, runtime_source

DOUBLE = "def double(x: int) -> int:\n    '''Twice x.'''\n    return 2 * x\n"


class PipeExecutor(RuntimeBackedExecutor):
    """A backend in a few lines: a runtime subprocess per start."""

    kind = "pipe"

    def __init__(self, source: bytes | None = None, functions: Sequence[object] = ()) -> None:
        super().__init__()
        self.source = source
        self.functions = list(functions)
        self.spawned: list[PipeTransport] = []
        self.stopped = 0

    async def _spawn(self) -> RuntimeTransport:
        transport = await PipeTransport.start(self.source)
        self.spawned.append(transport)
        return transport

    def _functions_source(self) -> tuple[Sequence[object], str]:
        return self.functions, "tools"

    async def _on_stopped(self) -> None:
        self.stopped += 1


async def run(executor: RuntimeBackedExecutor, code: str, **options: object) -> list[Event]:
    return [event async for event in executor.execute(code, **options)]  # type: ignore[arg-type]


def plain(events: list[Event]) -> list[str]:
    return [str(e.data.get("text/plain")) for e in events if isinstance(e, Result)]


def errors(events: list[Event]) -> list[str]:
    return [e.ename for e in events if isinstance(e, Error)]


def test_starts_on_first_use_keeps_state_and_knows_its_python() -> None:
    async def main() -> None:
        executor = PipeExecutor()
        try:
            assert not executor.runtime_alive and executor.python_version is None
            assert (await run(executor, "x = 20"))[-1] == Finished(0)
            assert plain(await run(executor, "x + 22")) == ["42"]
            assert len(executor.spawned) == 1
            assert executor.python_version and executor.python_version[0] == "3"
        finally:
            await executor.stop()

    asyncio.run(main())


def test_warm_up_starts_ahead_and_the_first_cell_uses_that_runtime() -> None:
    async def main() -> None:
        executor = PipeExecutor(functions=[DOUBLE])
        try:
            await executor.warm_up()
            assert executor.runtime_alive and len(executor.spawned) == 1
            events = await run(executor, "from tools import double\ndouble(21)")
            assert plain(events) == ["42"] and len(executor.spawned) == 1
        finally:
            await executor.stop()

    asyncio.run(main())


def test_functions_are_injected_at_every_start_and_restart_loses_state() -> None:
    async def main() -> None:
        executor = PipeExecutor(functions=[DOUBLE])
        try:
            await run(executor, "y = 1")
            await executor.restart()
            events = await run(executor, "from tools import double\nprint(double(4))\ny")
            assert Stream("stdout", "8\n") in events and errors(events) == ["NameError"]
            assert len(executor.spawned) == 2
            assert executor.spawned[0].process.returncode is not None  # the old one is gone
        finally:
            await executor.stop()

    asyncio.run(main())


def test_a_dead_runtime_is_reported_then_replaced_by_a_fresh_one() -> None:
    async def main() -> None:
        executor = PipeExecutor(functions=[DOUBLE])
        try:
            await run(executor, "z = 5")
            died = await run(executor, "import os\nos._exit(3)")
            assert errors(died) == ["RuntimeDiedError"] and died[-1] == Finished(1)
            assert "exit code 3" in next(e.evalue for e in died if isinstance(e, Error))
            assert not executor.runtime_alive
            fresh = await run(executor, "from tools import double\ndouble(z)")
            assert errors(fresh) == ["NameError"]  # z is gone, the functions are back
            assert plain(await run(executor, "double(3)")) == ["6"]
            assert len(executor.spawned) == 2
        finally:
            await executor.stop()

    asyncio.run(main())


def test_a_timeout_interrupts_the_code_and_keeps_the_state() -> None:
    async def main() -> None:
        executor = PipeExecutor()
        try:
            await run(executor, "kept = 'yes'")
            events = await run(executor, "import time\ntime.sleep(60)", timeout=0.5)
            assert errors(events) == ["TimeoutError"] and events[-1] == Finished(124)
            assert plain(await run(executor, "kept")) == ["'yes'"]
            assert len(executor.spawned) == 1
        finally:
            await executor.stop()

    asyncio.run(main())


def test_completion_inspection_and_packages_come_from_the_runtime() -> None:
    async def main() -> None:
        executor = PipeExecutor()
        try:
            completion = await executor.complete("pri", 3)  # starts the runtime first
            assert "print" in completion.matches and executor.runtime_alive
            await run(executor, "answer = 42")
            assert (await executor.inspect("answer", 6)).found
            assert "kernel-bridge" in await executor.get_available_packages()
        finally:
            await executor.stop()

    asyncio.run(main())


def test_stop_releases_the_runtime_and_is_idempotent() -> None:
    async def main() -> None:
        executor = PipeExecutor()
        await run(executor, "1")
        process = executor.spawned[0].process
        await executor.stop()
        await executor.stop()
        assert process.returncode is not None and executor.stopped == 2
        assert not executor.runtime_alive

    asyncio.run(main())


def test_a_runtime_of_another_protocol_version_fails_the_cell_and_start_by_type() -> None:
    foreign = runtime_source().replace(
        f"PROTOCOL_VERSION = {PROTOCOL_VERSION}\n".encode(), b"PROTOCOL_VERSION = 99\n"
    )

    async def main() -> None:
        executor = PipeExecutor(foreign)
        try:
            events = await run(executor, "1")
            assert errors(events) == ["RuntimeProtocolError"] and events[-1] == Finished(1)
            text = next(e.evalue for e in events if isinstance(e, Error))
            assert "99" in text and "same kernel_bridge version" in text
            with pytest.raises(RuntimeProtocolError):
                await executor.start()
            assert all(t.process.returncode is not None for t in executor.spawned)
        finally:
            await executor.stop()

    asyncio.run(main())
