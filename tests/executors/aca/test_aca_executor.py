"""ACADynamicSessionsCodeExecutor against a real emulator: the issue's Done-when items."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from traitlets.config import Config

from kernel_bridge.emulator import Emulator, Fault
from kernel_bridge.errors import ConfigurationError, ExecutorStartError
from kernel_bridge.events import Display, Error, Event, Finished, Result, StateLost, Stream
from kernel_bridge.executors._blocks import CodeBlock
from kernel_bridge.executors.aca import ACADynamicSessionsCodeExecutor
from kernel_bridge.executors.aca._client import RetryPolicy
from kernel_bridge.functions import FunctionWithRequirements

from .conftest import TOKEN, CountingCredential, ShortLivedCredential

ADD = FunctionWithRequirements.from_str(
    'def add(a, b):\n    """Add two numbers."""\n    return a + b\n'
)


def make(emulator: Emulator, **kwargs: Any) -> ACADynamicSessionsCodeExecutor:
    kwargs.setdefault("credential", CountingCredential())
    executor = ACADynamicSessionsCodeExecutor(emulator.endpoint, **kwargs)
    executor._client.retry = RetryPolicy(max_retries=3, base_delay=0.05, max_delay=5)
    return executor


async def run(executor: ACADynamicSessionsCodeExecutor, code: str, **kw: Any) -> list[Event]:
    return [event async for event in executor.execute(code, **kw)]


def value(events: list[Event]) -> Any:
    results = [e for e in events if isinstance(e, Result)]
    assert results, events
    return (
        results[-1].value_json
        if results[-1].value_json is not None
        else results[-1].data["text/plain"]
    )


def error_of(events: list[Event]) -> Error:
    errors = [e for e in events if isinstance(e, Error)]
    assert errors, events
    return errors[-1]


def finished(events: list[Event]) -> int:
    assert isinstance(events[-1], Finished), events
    assert sum(isinstance(e, Finished) for e in events) == 1
    return events[-1].exit_code


# -- basics ---------------------------------------------------------------------------------


def test_cells_keep_state_and_map_outputs(emulator: Emulator) -> None:
    async def main() -> None:
        ex = make(emulator)
        try:
            events = await run(ex, "x = 6\nprint('hello')\nx * 7")
            assert events == [
                Stream("stdout", "hello\n"),
                Result({"text/plain": "42"}, value_json=42),
                Finished(0),
            ]
            assert value(await run(ex, "x + 1")) == 7
            failed = await run(ex, "1/0")
            assert finished(failed) == 1
            err = error_of(failed)
            assert err.ename == "ZeroDivisionError"
            assert not any("_kb_alive_" in line for line in err.traceback)
            assert value(await run(ex, "import os; os.getcwd()")) == "'/mnt/data'"
            png = (
                "import base64\nfrom IPython.display import Image, display\n"
                "display(Image(data=base64.b64decode('iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAA"
                "fFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==')))"
            )
            shown = await run(ex, png)
            assert any(isinstance(e, Display) and "image/png" in e.data for e in shown)
            unknown = await run(ex, "echo hi", language="bash")
            assert finished(unknown) == 1 and "Python only" in error_of(unknown).evalue
            assert ex.SUPPORTED_LANGUAGES == ["python"]
        finally:
            await ex.stop()

    asyncio.run(main())


def test_autogen_surface_and_functions(emulator: Emulator, tmp_path: Path) -> None:
    async def main() -> None:
        ex = make(emulator, functions=[ADD], work_dir=tmp_path)
        try:
            assert ex.SUPPORTED_LANGUAGES == ["python"]
            assert ex.functions == ["add"]
            assert ex.functions_module == "functions" and ex.timeout == 60
            assert ex.work_dir == tmp_path
            prompt = ex.format_functions_for_prompt()
            assert prompt.startswith("You have access to the following user defined functions.")
            assert "def add(a, b):" in prompt
            result = await ex.execute_code_blocks([CodeBlock("print(add(1, 2))", "python")])
            assert (result.exit_code, result.output) == (0, "3\n")
            imported = await run(ex, "from functions import add as plus\nplus(2, 2)")
            assert value(imported) == 4
            bad = await ex.execute_code_blocks([CodeBlock("ls", "sh")])
            assert bad.exit_code == 1 and "unknown language" in bad.output
            packages = await ex.get_available_packages()
            assert {"httpx", "ipython"} <= packages
        finally:
            await ex.stop()

    asyncio.run(main())


def test_missing_packages_are_listed(emulator: Emulator) -> None:
    needs = FunctionWithRequirements.from_str(
        "def f():\n    return 1\n", python_packages=["surely-not-installed-pkg>=1.0"]
    )

    async def main() -> None:
        ex = make(emulator, functions=[needs])
        try:
            events = await run(ex, "1")
            assert finished(events) == 1
            assert "surely-not-installed-pkg" in error_of(events).evalue
        finally:
            await ex.stop()

    asyncio.run(main())


def test_configuration_through_traitlets(emulator: Emulator) -> None:
    config = Config()
    config.ACADynamicSessionsCodeExecutor.pool_management_endpoint = emulator.endpoint
    config.ACADynamicSessionsCodeExecutor.timeout = 7
    config.ACADynamicSessionsCodeExecutor.suppress_result_output = True
    ex = ACADynamicSessionsCodeExecutor(config=config, credential=CountingCredential())
    assert ex.timeout == 7 and ex.suppress_result_output

    async def main() -> None:
        try:
            assert finished(await run(ex, "1 + 1")) == 0
            assert not [e for e in await run(ex, "2") if isinstance(e, Result)]
        finally:
            await ex.stop()

    asyncio.run(main())
    with pytest.raises(ConfigurationError, match="pool_management_endpoint"):
        ACADynamicSessionsCodeExecutor(credential=CountingCredential())
    with pytest.raises(ValueError, match="Timeout"):
        ACADynamicSessionsCodeExecutor(emulator.endpoint, CountingCredential(), timeout=0)


# -- files ----------------------------------------------------------------------------------


def test_files_between_work_dir_and_mnt_data(emulator: Emulator, tmp_path: Path) -> None:
    (tmp_path / "in.csv").write_text("a,b\n1,2\n")

    async def main() -> None:
        ex = make(emulator, work_dir=tmp_path)
        try:
            await ex.upload_files(["in.csv"])
            assert await ex.get_file_list() == ["in.csv"]
            code = "open('out.txt', 'w').write(open('/mnt/data/in.csv').read().upper())"
            assert finished(await run(ex, code)) == 0
            assert sorted(await ex.get_file_list()) == ["in.csv", "out.txt"]
            (tmp_path / "in.csv").unlink()
            written = await ex.download_files(["out.txt"])
            assert written == [str(tmp_path / "out.txt")]
            assert (tmp_path / "out.txt").read_text() == "A,B\n1,2\n"
            for bad in ("../x", "/etc/passwd", "sub/../../x"):
                with pytest.raises(ConfigurationError):
                    await ex.upload_files([bad])
            for bad in ("../x", "a/b", ".."):
                with pytest.raises(ConfigurationError):
                    await ex.download_files([bad])
        finally:
            await ex.stop()

    asyncio.run(main())


# -- tokens ---------------------------------------------------------------------------------


@pytest.mark.slow
def test_short_lived_tokens_are_refreshed_before_expiry(
    make_emulator: Callable[..., Emulator],
) -> None:
    emulator = make_emulator(token=None)  # any token, but expired JWTs get 401
    credential = ShortLivedCredential(lifetime=3)

    async def main() -> None:
        ex = make(emulator, credential=credential)
        try:
            deadline = time.monotonic() + 9
            n = 0
            while time.monotonic() < deadline:
                n += 1
                assert value(await run(ex, f"{n}")) == n
                await asyncio.sleep(0.2)
        finally:
            await ex.stop()

    asyncio.run(main())
    uses = emulator.tokens.snapshot()
    assert len(uses) > 20
    assert all(u.accepted for u in uses), [u for u in uses if not u.accepted]
    assert not any(u.expired for u in uses)
    assert all(u.expires_at is not None and u.expires_at > u.used_at for u in uses)
    assert len({u.fingerprint for u in uses}) >= 3  # several tokens over 9 s of 3 s tokens
    assert len(credential.issued) < len(uses)  # cached, not fetched per request


def test_401_gives_exactly_one_refresh_and_one_retry(emulator: Emulator) -> None:
    credential = CountingCredential()

    async def main() -> None:
        ex = make(emulator, credential=credential)
        try:
            assert value(await run(ex, "1")) == 1
            assert credential.calls == 1
            before = emulator.stats()["requests"]
            emulator.faults.add(Fault(status=401))
            assert value(await run(ex, "2")) == 2
            assert credential.calls == 2
            assert emulator.stats()["requests"] - before == 2
        finally:
            await ex.stop()

    asyncio.run(main())


def test_403_names_the_session_executor_role(emulator: Emulator) -> None:
    async def main() -> None:
        ex = make(emulator)
        try:
            emulator.faults.add(Fault(status=403))
            events = await run(ex, "1")
            assert finished(events) == 1
            assert "Azure ContainerApps Session Executor" in error_of(events).evalue
        finally:
            await ex.stop()

    asyncio.run(main())


def test_404_on_a_new_session_says_the_pool_is_full(make_emulator: Callable[..., Emulator]) -> None:
    emulator = make_emulator(max_sessions=1)

    async def main() -> None:
        first, second = make(emulator), make(emulator)
        try:
            assert value(await run(first, "1")) == 1
            events = await run(second, "1")
            assert finished(events) == 1
            assert "pool is full" in error_of(events).evalue
            assert error_of(events).ename == "SessionPoolFullError"
            with pytest.raises(ExecutorStartError, match="maxConcurrentSessions"):
                await second.start()
        finally:
            await first.stop()
            await second.stop()

    asyncio.run(main())


# -- sessions -------------------------------------------------------------------------------


@pytest.mark.slow
def test_expired_session_reports_lost_state_and_gets_functions_again(
    make_emulator: Callable[..., Emulator],
) -> None:
    emulator = make_emulator(cooldown=2)

    async def main() -> None:
        ex = make(emulator, functions=[ADD])
        try:
            assert finished(await run(ex, "x = add(1, 2)")) == 0
            await asyncio.sleep(3)  # the idle period under test (cooldown is 2 s)
            events = await run(ex, "add(2, 3)")
            lost = [e for e in events if isinstance(e, StateLost)]
            assert len(lost) == 1 and "cooldown" in lost[0].reason and "functions" in lost[0].reason
            assert value(events) == 5 and finished(events) == 0
            gone = await run(ex, "x")
            assert error_of(gone).ename == "NameError"
            assert not any(isinstance(e, StateLost) for e in gone)
        finally:
            await ex.stop()

    asyncio.run(main())
    assert emulator.stats()["sessions_created"] == 2


def test_restart_uses_a_new_session_and_deletes_the_old_one(emulator: Emulator) -> None:
    async def main() -> None:
        ex = make(emulator, functions=[ADD])
        try:
            await run(ex, "x = 1")
            old = ex._session_id
            await ex.restart()
            assert ex._session_id != old
            assert error_of(await run(ex, "x")).ename == "NameError"
            assert value(await run(ex, "add(1, 1)")) == 2
            assert emulator.stats()["live_sessions"] == 1
        finally:
            await ex.stop()

    asyncio.run(main())
    assert emulator.stats()["live_sessions"] == 0  # stop() deleted the session


def test_interrupt_ends_the_cell_within_2s_and_the_session_stays_usable(
    emulator: Emulator,
) -> None:
    async def main() -> None:
        ex = make(emulator)
        try:
            await run(ex, "1")
            cell = asyncio.ensure_future(run(ex, "import time\ntime.sleep(4)\ny = 'done'"))
            deadline = time.monotonic() + 30
            while emulator.stats()["executions"] < 3:  # setup, '1', this cell
                assert time.monotonic() < deadline, "the cell never reached the emulator"
                await asyncio.sleep(0.02)
            started = time.monotonic()
            await ex.interrupt()
            events = await asyncio.wait_for(cell, 5)
            assert time.monotonic() - started < 2
            err = error_of(events)
            assert err.ename == "KeyboardInterrupt" and "may still be running" in err.evalue
            assert finished(events) == 1
            after = await run(ex, "y")
            assert value(after) == "'done'"  # waited for the abandoned code, state kept
            assert "Waiting" in "".join(e.text for e in after if isinstance(e, Stream))
        finally:
            await ex.stop()

    asyncio.run(main())


def test_timeout_gives_exit_124_and_the_session_survives(emulator: Emulator) -> None:
    async def main() -> None:
        ex = make(emulator)
        try:
            events = await run(ex, "import time\ntime.sleep(30)", timeout=1)
            assert finished(events) == 124
            assert error_of(events).ename == "TimeoutError"
            assert value(await run(ex, "40 + 2")) == 42
        finally:
            await ex.stop()
        limited = make(emulator, timeout=1)
        try:
            result = await limited.execute_code_blocks(
                [CodeBlock("print('partial')\nimport time; time.sleep(30)", "py")]
            )
            assert result.exit_code == 124
            assert result.output.startswith("partial") or "Timeout" in result.output
            assert result.output.endswith("Timeout")
        finally:
            await limited.stop()

    asyncio.run(main())


def test_stop_is_quick_idempotent_and_final(emulator: Emulator) -> None:
    async def main() -> None:
        ex = make(emulator)
        await run(ex, "1")
        started = time.monotonic()
        await ex.stop()
        await ex.stop()
        assert time.monotonic() - started < 2.5
        events = await run(ex, "1")
        assert error_of(events).ename == "ExecutorClosedError"

    asyncio.run(main())


# -- secrets --------------------------------------------------------------------------------


@pytest.mark.parametrize("api_version", ["2024-02-02-preview", "2025-10-02-preview"])
def test_no_token_or_session_identifier_in_logs_or_outputs(
    emulator: Emulator, caplog: pytest.LogCaptureFixture, api_version: str
) -> None:
    caplog.set_level(logging.DEBUG)
    identifiers: list[str] = []
    outputs: list[str] = []

    async def main() -> None:
        ex = make(emulator, functions=[ADD], api_version=api_version)
        ex.log.setLevel(logging.DEBUG)
        try:
            identifiers.append(ex._session_id)
            emulator.faults.add(
                Fault(status=401), Fault(status=429, retry_after=0.1), Fault(status=403)
            )
            for code in ("add(1, 2)", "1", "1/0", "print('x')"):
                outputs.extend(repr(e) for e in await run(ex, code))
            emulator.faults.add(Fault(status=500, after=True))
            outputs.extend(repr(e) for e in await run(ex, "2"))
            await ex.restart()
            identifiers.append(ex._session_id)
            outputs.extend(repr(e) for e in await run(ex, "3"))
        finally:
            await ex.stop()

    asyncio.run(main())
    text = caplog.text + "\n".join(outputs)
    assert "ACA" in caplog.text  # the executor did log
    assert "identifier=<redacted>" in caplog.text  # httpx's request lines, redacted
    assert TOKEN not in text
    for identifier in identifiers:
        assert identifier not in text
        assert identifier[:8] not in text


def test_async_context_manager_starts_and_stops(emulator: Emulator) -> None:
    async def main() -> None:
        async with make(emulator, functions=[ADD]) as ex:
            assert emulator.stats()["executions"] == 1  # the session setup ran at start
            result = await ex.execute_code_blocks([CodeBlock("print(add(2, 2))", "python")])
            assert (result.exit_code, result.output) == (0, "4\n")
        assert emulator.stats()["live_sessions"] == 0

    asyncio.run(main())


def test_comms_follow_the_session_across_a_restart(emulator: Emulator) -> None:
    """Comms work once a session is set up; a restart gives a new session's comms."""
    from kernel_bridge.events import IOPubMessage
    from kernel_bridge.executors._comm import CommRequest

    control = CommRequest(
        "comm_open",
        {"comm_id": "ctl", "target_name": "jupyter.widget.control"},
        {"version": "1.0.0"},  # as JupyterLab sends it (ipywidgets checks the major)
    )

    async def deliver(ex: ACADynamicSessionsCodeExecutor) -> list[Event]:
        return [event async for event in ex.deliver_comm(control)]

    async def main() -> None:
        ex = make(emulator)
        try:
            assert not ex.supports_comms
            assert finished(await run(ex, "import ipywidgets")) == 0
            assert ex.supports_comms
            assert not [e for e in await deliver(ex) if isinstance(e, IOPubMessage)]
            assert await ex.comm_info("jupyter.widget.control") == {
                "ctl": {"target_name": "jupyter.widget.control"}
            }
            await ex.restart()  # a new session, set up with its own comm manager
            assert await ex.comm_info(None) == {}
            # ipywidgets not imported there: no target, so the session closes the comm
            closed = [e for e in await deliver(ex) if isinstance(e, IOPubMessage)]
            assert closed == [IOPubMessage("comm_close", {"comm_id": "ctl", "data": {}})]
        finally:
            await ex.stop()

    asyncio.run(main())
