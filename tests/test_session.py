"""The session (kernel_bridge/session.py) on its own: what the kernel holds between cells.

A recording executor (the kernel contract's four required methods, plus failures on
demand) shows how the session forwards requests and turns every failure into events;
a real local runtime shows a whole cell, an interrupt and a shutdown.
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterator

import pytest

from kernel_bridge.errors import ConfigurationError, ExecutorStartError
from kernel_bridge.events import Error, Event, Finished, Result, Stream
from kernel_bridge.executors.base import BackgroundHandler, Completion, Inspection, RemoteExecutor
from kernel_bridge.executors.local import LocalExecutor
from kernel_bridge.session import Session


class Recorder(RemoteExecutor):
    """Records calls; ``fail`` names the method that raises (``"execute"``, ...)."""

    kind = "recorder"

    def __init__(self, fail: str = "", error: Exception | None = None) -> None:
        self.fail = fail
        self.error = error or RuntimeError("boom")
        self.calls: list[tuple[str, object]] = []
        self.background: BackgroundHandler | None = None

    def _maybe_fail(self, name: str) -> None:
        self.calls.append((name, None))
        if self.fail == name:
            raise self.error

    async def start(self) -> None:
        self._maybe_fail("start")

    async def stop(self) -> None:
        self._maybe_fail("stop")

    async def interrupt(self) -> None:
        self._maybe_fail("interrupt")

    async def warm_up(self) -> None:
        self._maybe_fail("warm_up")

    async def complete(self, code: str, cursor_pos: int) -> Completion:
        self._maybe_fail("complete")
        return Completion(["done"], 0, cursor_pos)

    async def inspect(self, code: str, cursor_pos: int, detail_level: int = 0) -> Inspection:
        self._maybe_fail("inspect")
        return Inspection(True, {"text/plain": code})

    def set_background_handler(self, handler: BackgroundHandler | None) -> None:
        self.background = handler

    async def execute(  # type: ignore[override]
        self, code: str, *, timeout: float | None = None, **options: object
    ) -> AsyncIterator[Event]:
        self.calls.append(("execute", (code, timeout)))
        yield Stream("stdout", f"ran {code}\n")
        if self.fail == "execute":
            raise self.error
        yield Finished(0)


async def _cell(session: Session, code: str) -> list[Event]:
    return [event async for event in session.execute(code)]


def _errors(events: list[Event]) -> list[Error]:
    return [e for e in events if isinstance(e, Error)]


def test_the_executor_is_built_on_first_use_and_gets_the_cell_timeout() -> None:
    built: list[Recorder] = []

    def factory() -> Recorder:
        built.append(Recorder())
        return built[-1]

    session = Session(factory, cell_timeout=2.5)
    assert session.executor is None and not built  # kernel_info never waits for it
    events = asyncio.run(_cell(session, "a"))
    assert events == [Stream("stdout", "ran a\n"), Finished(0)]
    assert len(built) == 1 and built[0].calls == [("execute", ("a", 2.5))]
    asyncio.run(_cell(session, "b"))
    assert len(built) == 1  # built once
    assert ("execute", ("a", None)) in _recorded(Session(Recorder, cell_timeout=0))


def _recorded(session: Session) -> list[tuple[str, object]]:
    asyncio.run(_cell(session, "a"))
    executor = session.executor
    assert isinstance(executor, Recorder)
    return executor.calls


def test_a_configuration_error_is_shown_in_each_cell_and_the_kernel_lives_on() -> None:
    attempts = 0

    def factory() -> RemoteExecutor:
        nonlocal attempts
        attempts += 1
        raise ConfigurationError("image must be set")

    session = Session(factory)
    for _ in range(2):
        events = asyncio.run(_cell(session, "1"))
        [error] = _errors(events)
        assert error.ename == "ConfigurationError"
        assert "image must be set" in error.evalue and "fix the kernelspec" in error.evalue
        assert events[-1] == Finished(1)
    assert attempts == 2  # each cell tries again (the kernelspec may have been fixed)
    assert session.python_version is None  # no exception for language_info either


def test_a_notice_replaces_the_next_cell_only() -> None:
    session = Session(Recorder)
    notice = Error("FunctionsError", "tools.py does not parse", ["FunctionsError: ..."])
    session.report_at_next_cell(notice)
    first = asyncio.run(_cell(session, "x = 1"))
    assert first == [notice, Finished(1)]
    executor = session.executor
    assert isinstance(executor, Recorder) and executor.calls == []  # the cell did not run
    assert asyncio.run(_cell(session, "x = 1"))[-1] == Finished(0)


def test_an_unexpected_exception_is_reported_as_a_bug_and_the_next_cell_runs() -> None:
    executor = Recorder(fail="execute", error=KeyError("k"))
    session = Session(lambda: executor)
    events = asyncio.run(_cell(session, "a"))
    assert events[0] == Stream("stdout", "ran a\n")  # what came before is kept
    [error] = _errors(events)
    assert error.ename == "InternalError" and "This is a bug in kernel_bridge" in error.evalue
    assert events[-1] == Finished(1)
    executor.fail = ""
    assert asyncio.run(_cell(session, "b"))[-1] == Finished(0)


def test_an_executor_error_is_reported_by_its_type_not_as_a_bug() -> None:
    executor = Recorder(fail="execute", error=ExecutorStartError("the image has no python3"))
    events = asyncio.run(_cell(Session(lambda: executor), "a"))
    [error] = _errors(events)
    assert error.ename == "ExecutorStartError" and "bug" not in error.evalue


@pytest.mark.parametrize("method", ["complete", "inspect", "interrupt", "warm_up", "stop"])
def test_requests_besides_execute_never_raise(method: str) -> None:
    executor = Recorder(fail=method)
    session = Session(lambda: executor)

    async def main() -> None:
        await _cell(session, "start")
        completion = await session.complete("pri", 3)
        assert completion == (
            Completion([], 3, 3) if method == "complete" else Completion(["done"], 0, 3)
        )
        inspection = await session.inspect("x", 1, 0)
        assert inspection.found is (method != "inspect")
        await session.interrupt()
        await session.warm_up()
        await session.shutdown()

    asyncio.run(main())
    assert (method, None) in executor.calls
    assert session.executor is None  # shut down, even when stop() failed


def test_warm_up_with_a_broken_configuration_leaves_the_error_to_the_first_cell() -> None:
    def factory() -> RemoteExecutor:
        raise ConfigurationError("bad option")

    session = Session(factory)
    asyncio.run(session.warm_up())  # no exception
    assert _errors(asyncio.run(_cell(session, "1")))[0].ename == "ConfigurationError"


def test_the_background_handler_reaches_an_executor_built_later() -> None:
    received: list[Event] = []
    session = Session(Recorder)
    session.set_background_handler(received.append)
    asyncio.run(_cell(session, "a"))
    executor = session.executor
    assert isinstance(executor, Recorder) and executor.background is not None
    executor.background(Stream("stdout", "from a thread\n"))
    assert received == [Stream("stdout", "from a thread\n")]


def test_replace_executor_returns_the_previous_one() -> None:
    session = Session(Recorder)
    asyncio.run(_cell(session, "a"))
    first = session.executor
    second = Recorder()
    assert session.replace_executor(second) is first
    asyncio.run(_cell(session, "b"))
    assert second.calls == [("execute", ("b", None))]


def test_a_real_runtime_keeps_state_is_interrupted_and_is_gone_after_shutdown() -> None:
    session = Session(lambda: LocalExecutor(python=sys.executable))

    async def main() -> None:
        await _cell(session, "x = 41")
        events = await _cell(session, "x + 1")
        assert [e.data["text/plain"] for e in events if isinstance(e, Result)] == ["42"]
        executor = session.executor
        assert isinstance(executor, LocalExecutor)
        channel = executor.running_channel()
        assert channel is not None
        pid = channel.info.pid

        async def interrupt_when_sleeping(events: AsyncIterator[Event]) -> list[Event]:
            seen: list[Event] = []
            async for event in events:
                seen.append(event)
                if event == Stream("stdout", "sleeping\n"):
                    await session.interrupt()
            return seen

        loop = asyncio.get_running_loop()
        started = loop.time()
        events = await interrupt_when_sleeping(
            session.execute("print('sleeping', flush=True); import time; time.sleep(60)")
        )
        assert loop.time() - started < 10
        assert [e.ename for e in _errors(events)] == ["KeyboardInterrupt"]
        after = await _cell(session, "x")  # state survived the interrupt
        assert [e.data["text/plain"] for e in after if isinstance(e, Result)] == ["41"]
        await session.shutdown()
        assert session.executor is None
        deadline = loop.time() + 5
        while _alive(pid) and loop.time() < deadline:
            await asyncio.sleep(0.05)  # polling the process table, with a deadline
        assert not _alive(pid)

    asyncio.run(main())


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ")[1][0] != "Z"
    except OSError:
        return False


def test_a_malformed_aca_endpoint_is_a_configuration_error_not_a_bug() -> None:
    # urlsplit's bare ValueError used to reach the cell as "This is a bug in kernel_bridge".
    from kernel_bridge.executors.aca import ACADynamicSessionsCodeExecutor

    class Credential:
        def get_token(self, *scopes: str, **kwargs: object) -> object:
            raise AssertionError("no request may be made")

    session = Session(
        lambda: ACADynamicSessionsCodeExecutor("https://[bad/pool", credential=Credential())
    )
    [error] = _errors(asyncio.run(_cell(session, "1")))
    assert error.ename == "ConfigurationValueError"
    assert "pool_management_endpoint is not a valid URL" in error.evalue
    assert "bug" not in error.evalue and "fix the kernelspec" in error.evalue
