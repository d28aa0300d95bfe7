"""The executor on the ``executions`` api-versions, against the emulator.

Long cells past the synchronous limit, the live status line, truncation notices,
replacement detected through GET session, and ``auto``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import pytest

from kernel_bridge.emulator import Emulator, Fault
from kernel_bridge.errors import ConfigurationError
from kernel_bridge.events import Display, Error, Event, Finished, StateLost, Stream
from kernel_bridge.executors.aca import ACADynamicSessionsCodeExecutor
from kernel_bridge.executors.aca._client import RetryPolicy

from .conftest import CountingCredential

NEWEST = "2025-10-02-preview"
LONG_CELL = "import time\ntime.sleep(6)\nprint('done after 6 s')"


def make(emulator: Emulator, **kwargs: Any) -> ACADynamicSessionsCodeExecutor:
    kwargs.setdefault("credential", CountingCredential())
    executor = ACADynamicSessionsCodeExecutor(emulator.endpoint, **kwargs)
    executor._client.retry = RetryPolicy(max_retries=3, base_delay=0.05, max_delay=2)
    return executor


def run_cells(executor: ACADynamicSessionsCodeExecutor, *cells: str) -> list[list[Event]]:
    async def main() -> list[list[Event]]:
        try:
            return [[e async for e in executor.execute(cell)] for cell in cells]
        finally:
            await executor.stop()

    return asyncio.run(main())


def stdout(events: list[Event]) -> str:
    return "".join(e.text for e in events if isinstance(e, Stream) and e.name == "stdout")


def stderr(events: list[Event]) -> str:
    return "".join(e.text for e in events if isinstance(e, Stream) and e.name == "stderr")


def test_a_long_cell_fails_clearly_on_2024_and_succeeds_polled_with_a_status_line(
    make_emulator: Callable[..., Emulator],
) -> None:
    emulator = make_emulator(execution_cap=3.0)
    (legacy,) = run_cells(make(emulator), LONG_CELL)
    errors = [e for e in legacy if isinstance(e, Error)]
    assert errors and errors[-1].ename == "TimeoutError", legacy
    message = errors[-1].evalue
    assert "limit for synchronous executions" in message
    assert "api_version=2025-10-02-preview" in message and "--api-version" in message
    assert isinstance(legacy[-1], Finished) and legacy[-1].exit_code == 124

    (polled,) = run_cells(make(emulator, api_version=NEWEST, status_line_after=2.0), LONG_CELL)
    assert isinstance(polled[-1], Finished) and polled[-1].exit_code == 0, polled
    assert stdout(polled) == "done after 6 s\n"
    lines = [e for e in polled if isinstance(e, Display)]
    assert len({d.display_id for d in lines}) == 1 and lines[0].display_id
    assert not lines[0].update and all(d.update for d in lines[1:])
    assert "still running in the ACA session" in lines[0].data["text/plain"]
    assert len(lines) >= 3  # shown, updated while running, finalised
    assert lines[-1].data["text/plain"].startswith("ran ")
    # the line comes before the output, and a quick cell shows none
    assert polled.index(lines[-1]) < next(i for i, e in enumerate(polled) if isinstance(e, Stream))
    (quick,) = run_cells(make(emulator, api_version=NEWEST), "print('quick')")
    assert stdout(quick) == "quick\n" and not any(isinstance(e, Display) for e in quick)


def test_cut_output_is_said_plainly_and_output_under_the_cap_is_not(
    make_emulator: Callable[..., Emulator],
) -> None:
    emulator = make_emulator()
    small, big, err = run_cells(
        make(emulator, api_version=NEWEST, output_streams_max_length=500),
        "print('x' * 100)",
        "print('y' * 2000)",
        "import sys; sys.stderr.write('z' * 2000)",
    )
    assert stdout(small) == "x" * 100 + "\n" and "truncated" not in stderr(small)
    assert "stdout was truncated by the service at 500 characters" in stderr(big)
    assert "stderr was truncated by the service at 500 characters" in stderr(err)
    # A pool that honours less than asked is caught by the missing end frame.
    capped = make_emulator(max_output_length=300)
    under, over = run_cells(make(capped, api_version=NEWEST), "print('a' * 10)", "print('b' * 900)")
    assert "truncated" not in stderr(under)
    assert stdout(over).startswith("b" * 100)
    assert "stdout ends early" in stderr(over) and "outputStreamsMaxLength" in stderr(over)
    # a cell that cannot carry the run-once check has no end frame: no false notice
    magic = make(capped, api_version=NEWEST)
    tagged, untagged = run_cells(
        magic, "print('c')", "from __future__ import annotations\nprint('d' * 10)"
    )
    assert "truncated" not in stderr(tagged) and "ends early" not in stderr(untagged)
    assert stdout(untagged) == "d" * 10 + "\n"


def test_replacement_is_seen_through_get_session_without_a_marker_round_trip(
    make_emulator: Callable[..., Emulator],
) -> None:
    emulator = make_emulator(cooldown=2.0)
    executor = make(emulator, api_version=NEWEST)

    async def main() -> tuple[list[Event], int, int]:
        try:
            [e async for e in executor.execute("kept = 1")]
            before = emulator.stats()["executions"]
            time.sleep(3.0)  # the idle time past the cooldown is the behaviour under test
            events = [e async for e in executor.execute("print('kept' in globals())")]
            return events, before, emulator.stats()["executions"]
        finally:
            await executor.stop()

    events, before, after = asyncio.run(main())
    assert any(isinstance(e, StateLost) for e in events)
    assert stdout(events) == "False\n"
    assert after - before == 2  # the setup and the cell: the cell was not sent twice


def test_auto_settles_on_the_newest_version_or_falls_back(emulator: Emulator) -> None:
    executor = make(emulator, api_version="auto")
    (events,) = run_cells(executor, "print('auto')")
    assert stdout(events) == "auto\n"
    assert executor._client.api_version == NEWEST
    emulator.faults.add(Fault(operation="poll", status=400))
    fallback = make(emulator, api_version="auto")
    (events,) = run_cells(fallback, "print('fallback')")
    assert stdout(events) == "fallback\n"
    assert fallback._client.api_version == "2024-02-02-preview"


def test_an_unknown_api_version_is_refused_with_the_choices(emulator: Emulator) -> None:
    with pytest.raises(ConfigurationError, match="2025-10-02-preview"):
        make(emulator, api_version="2030-01-01")


def test_interrupting_a_polled_cell_ends_it_at_once_and_the_next_cell_waits(
    emulator: Emulator,
) -> None:
    executor = make(emulator, api_version=NEWEST)

    async def main() -> tuple[list[Event], float, list[Event]]:
        try:
            [e async for e in executor.execute("x = 1")]
            events: list[Event] = []
            started = time.monotonic()

            async def interrupt_when_running() -> None:
                deadline = time.monotonic() + 10
                while emulator.stats()["executions"] < 2 and time.monotonic() < deadline:
                    await asyncio.sleep(0.05)
                await executor.interrupt()

            helper = asyncio.ensure_future(interrupt_when_running())
            async for e in executor.execute("import time\ntime.sleep(3)\nx = 2"):
                events.append(e)
            elapsed = time.monotonic() - started
            await helper
            after = [e async for e in executor.execute("print(x)")]
            return events, elapsed, after
        finally:
            await executor.stop()

    events, elapsed, after = asyncio.run(main())
    assert elapsed < 2.5
    errors = [e for e in events if isinstance(e, Error)]
    assert errors and errors[-1].ename == "KeyboardInterrupt"
    assert "may still be running" in errors[-1].evalue
    assert "Waiting for the interrupted execution" in stderr(after)
    assert stdout(after) == "2\n"


def test_a_polled_cell_ends_at_its_timeout(emulator: Emulator) -> None:
    executor = make(emulator, api_version=NEWEST)

    async def main() -> tuple[list[Event], float]:
        try:
            [e async for e in executor.execute("1")]
            started = time.monotonic()
            events = [e async for e in executor.execute("import time\ntime.sleep(30)", timeout=2)]
            return events, time.monotonic() - started
        finally:
            await executor.stop()

    events, elapsed = asyncio.run(main())
    assert isinstance(events[-1], Finished) and events[-1].exit_code == 124
    assert elapsed < 6


def test_restart_and_stop_delete_the_session_on_the_newest_version(emulator: Emulator) -> None:
    executor = make(emulator, api_version=NEWEST)

    async def main() -> tuple[int, int, int]:
        [e async for e in executor.execute("1")]
        live_before = emulator.stats()["live_sessions"]
        await executor.restart()
        live_after_restart = emulator.stats()["live_sessions"]
        await executor.stop()
        return live_before, live_after_restart, emulator.stats()["live_sessions"]

    before, after_restart, after_stop = asyncio.run(main())
    assert (before, after_restart, after_stop) == (1, 1, 0)
