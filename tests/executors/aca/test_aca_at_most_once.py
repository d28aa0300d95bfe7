"""At most once: every emulator fault, before and after the code runs, once and twice.

A cell appends a line to a file: after any fault the file holds exactly 0 or 1 new line,
never 2, and the cell says which (or that it cannot know).
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from kernel_bridge.emulator import Emulator, Fault
from kernel_bridge.events import Error, Event, Finished, Stream
from kernel_bridge.executors.aca import ACADynamicSessionsCodeExecutor
from kernel_bridge.executors.aca._client import RetryPolicy

from .conftest import CountingCredential

KINDS: dict[str, dict[str, Any]] = {
    "401": {"status": 401},
    "429": {"status": 429, "retry_after": 0.2},
    "500": {"status": 500},
    "503": {"status": 503, "retry_after": 0.2},
    "dropped": {"drop": True},
}
RAN_ONCE = "ran once in the ACA session"
UNKNOWN = "may or may not have run"


def _events(executor: ACADynamicSessionsCodeExecutor, code: str) -> list[Event]:
    async def collect() -> list[Event]:
        return [event async for event in executor.execute(code)]

    return asyncio.run(collect())


def _text(events: list[Event]) -> str:
    parts = [e.text for e in events if isinstance(e, Stream)]
    parts += [e.evalue for e in events if isinstance(e, Error)]
    return "\n".join(parts)


def _run_with_fault(
    emulator: Emulator,
    tmp_path: Path,
    code: str,
    fault: Fault,
    api_version: str = "2024-02-02-preview",
) -> tuple[list[Event], list[Event]]:
    """Set the session up, queue ``fault``, run ``code``; return (setup events, cell events)."""

    async def main() -> tuple[list[Event], list[Event]]:
        executor = ACADynamicSessionsCodeExecutor(
            emulator.endpoint, credential=CountingCredential(), api_version=api_version
        )
        executor._client.retry = RetryPolicy(max_retries=3, base_delay=0.05, max_delay=2)
        try:
            first = [event async for event in executor.execute("'ready'")]
            emulator.faults.add(fault)
            cell = [event async for event in executor.execute(code)]
            return first, cell
        finally:
            await executor.stop()
            emulator.faults.clear()

    return asyncio.run(main())


@pytest.mark.parametrize("times", [1, 2], ids=["once", "twice"])
@pytest.mark.parametrize("after", [False, True], ids=["before-run", "after-run"])
@pytest.mark.parametrize("kind", sorted(KINDS))
@pytest.mark.parametrize("api_version", ["2024-02-02-preview", "2025-10-02-preview"])
def test_a_fault_never_runs_a_cell_twice_and_the_cell_says_what_happened(
    emulator: Emulator, tmp_path: Path, kind: str, after: bool, times: int, api_version: str
) -> None:
    ledger = tmp_path / "ledger.txt"
    ledger.touch()
    code = f"open({str(ledger)!r}, 'a').write('ran\\n')\nprint('appended')"
    fault = Fault(after=after, times=times, **KINDS[kind])
    first, events = _run_with_fault(emulator, tmp_path, code, fault, api_version)
    assert isinstance(first[-1], Finished) and first[-1].exit_code == 0, first
    assert isinstance(events[-1], Finished), events
    lines = len(ledger.read_text().splitlines())
    text = _text(events)
    assert lines in (0, 1), (lines, text)
    # A second 401 is final (the refreshed token was refused too): the cell cannot know.
    knowable = not (kind == "401" and times == 2)
    if not knowable:
        assert lines == (1 if after else 0)
        assert events[-1].exit_code == 1 and UNKNOWN in text, text
    elif after:
        assert lines == 1
        assert RAN_ONCE in text and "did not run a second time" in text, text
        assert "appended" not in text  # its output was lost, and said so
        assert events[-1].exit_code == 0  # the session recorded that it ended without error
    else:
        assert lines == 1
        assert events[-1].exit_code == 0 and "appended" in text, text
        assert RAN_ONCE not in text


def test_a_recorded_error_is_reported_when_the_answer_was_lost(
    emulator: Emulator, tmp_path: Path
) -> None:
    ledger = tmp_path / "ledger.txt"
    code = f"open({str(ledger)!r}, 'a').write('ran\\n')\n1 / 0"
    _, events = _run_with_fault(emulator, tmp_path, code, Fault(status=503, after=True))
    assert ledger.read_text() == "ran\n"
    errors = [e for e in events if isinstance(e, Error)]
    assert errors and "ZeroDivisionError" in errors[-1].evalue
    assert RAN_ONCE in errors[-1].evalue
    assert isinstance(events[-1], Finished) and events[-1].exit_code == 1


def test_a_cell_magic_carries_the_check_and_keeps_its_meaning(
    emulator: Emulator, tmp_path: Path
) -> None:
    ledger = tmp_path / "ledger.txt"
    code = f"%%capture captured\nopen({str(ledger)!r}, 'a').write('ran\\n')\nprint('hidden')"
    _, events = _run_with_fault(emulator, tmp_path, code, Fault(status=503, after=True))
    assert ledger.read_text() == "ran\n"
    assert RAN_ONCE in _text(events) and "hidden" not in _text(events)
    _, events = _run_with_fault(emulator, tmp_path, code + "\n", Fault(status=503))
    assert ledger.read_text() == "ran\nran\n"
    assert "hidden" not in _text(events)  # %%capture still captured it
    assert isinstance(events[-1], Finished) and events[-1].exit_code == 0


@pytest.mark.parametrize("after", [False, True], ids=["before-run", "after-run"])
def test_a_cell_that_cannot_carry_the_check_is_never_resent(
    emulator: Emulator, tmp_path: Path, after: bool
) -> None:
    ledger = tmp_path / "ledger.txt"
    ledger.touch()
    code = f"from __future__ import annotations\nopen({str(ledger)!r}, 'a').write('ran\\n')"
    _, events = _run_with_fault(
        emulator, tmp_path, code, Fault(status=503, retry_after=0.1, after=after)
    )
    assert len(ledger.read_text().splitlines()) == (1 if after else 0)
    text = _text(events)
    assert UNKNOWN in text and "cannot carry the run-once check" in text, text
    assert isinstance(events[-1], Finished) and events[-1].exit_code == 1
