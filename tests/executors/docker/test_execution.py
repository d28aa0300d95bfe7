"""The Docker executor runs code in a persistent runtime: state, streaming, shells,
timeouts, interrupts, cancellation, container death and restart."""

from __future__ import annotations

import asyncio
import subprocess
import time
from pathlib import Path
from typing import Any

from kernel_bridge.events import Display, Error, Event, Finished, Result, StateLost, Stream
from kernel_bridge.executors._blocks import CancellationToken, CodeBlock
from kernel_bridge.executors.docker import DockerCommandLineCodeExecutor


def add_numbers(a: int, b: int) -> int:
    """Add two numbers (a user-defined function injected into the container)."""
    return a + b


async def collect(executor: DockerCommandLineCodeExecutor, code: str, **kw: Any) -> list[Event]:
    return [event async for event in executor.execute(code, **kw)]


def text_of(events: list[Event], name: str = "stdout") -> str:
    return "".join(e.text for e in events if isinstance(e, Stream) and e.name == name)


def test_python_and_bash_blocks_keep_state(minimal_image: str, tmp_path: Path) -> None:
    async def main() -> None:
        async with DockerCommandLineCodeExecutor(minimal_image, work_dir=tmp_path) as ex:
            result = await ex.execute_code_blocks(
                [
                    CodeBlock("x = 40\nprint('python', x)", "python"),
                    CodeBlock("echo bash $((1+2)); echo to-stderr >&2", "bash"),
                    CodeBlock("print('state kept', x + 2)", "python"),
                ],
                CancellationToken(),
            )
            assert result.exit_code == 0, result.output
            assert "python 40\n" in result.output
            assert "bash 3\n" in result.output and "to-stderr" in result.output
            assert "state kept 42" in result.output
            assert result.code_file is not None and Path(result.code_file).parent == tmp_path
            # a later call still sees the state, and the last expression is a Result
            events = await collect(ex, "x * 2")
            results = [e for e in events if isinstance(e, Result)]
            assert results and results[0].data["text/plain"] == "80"
            # a failing shell block stops the run with its exit code
            failed = await ex.execute_code_blocks(
                [CodeBlock("exit 3", "sh"), CodeBlock("print('never')", "python")], None
            )
            assert failed.exit_code == 3 and "never" not in failed.output

    asyncio.run(main())


def test_output_streams_while_the_code_runs(minimal_image: str) -> None:
    async def main() -> None:
        async with DockerCommandLineCodeExecutor(minimal_image) as ex:
            code = "import time\nprint('first', flush=True)\ntime.sleep(1.5)\nprint('second')"
            seen: list[tuple[float, Event]] = []
            start = time.monotonic()
            async for event in ex.execute(code):
                seen.append((time.monotonic() - start, event))
            first = next(t for t, e in seen if isinstance(e, Stream) and "first" in e.text)
            end = next(t for t, e in seen if isinstance(e, Finished))
            assert end - first > 1.0  # "first" arrived long before the cell ended

    asyncio.run(main())


def test_timeout_result_has_autogens_shape_and_state_stays(minimal_image: str) -> None:
    async def main() -> None:
        async with DockerCommandLineCodeExecutor(minimal_image, timeout=1) as ex:
            await ex.execute_code_blocks([CodeBlock("kept = 'yes'", "python")], None)
            result = await ex.execute_code_blocks(
                [CodeBlock("import time\nprint('start', flush=True)\ntime.sleep(30)", "python")],
                None,
            )
            assert result.exit_code == 124
            assert result.output.startswith("start\n")
            assert result.output.endswith("\n Timeout")
            after = await ex.execute_code_blocks([CodeBlock("print(kept)", "python")], None)
            assert after.exit_code == 0 and after.output == "yes\n"

    asyncio.run(main())


def test_timeout_of_code_that_ignores_interrupts_replaces_the_runtime(minimal_image: str) -> None:
    stubborn = (
        "import time\nprint('start', flush=True)\n"
        "while True:\n    try:\n        time.sleep(30)\n"
        "    except KeyboardInterrupt:\n        pass\n"
    )

    async def main() -> None:
        async with DockerCommandLineCodeExecutor(minimal_image) as ex:
            await collect(ex, "lost = 1")
            events = await collect(ex, stubborn, timeout=1)
            assert isinstance(events[-1], Finished) and events[-1].exit_code == 124
            assert any(isinstance(e, StateLost) for e in events)
            assert any(isinstance(e, Error) and e.ename == "TimeoutError" for e in events)
            after = await collect(ex, "print('lost' in globals())")
            assert text_of(after) == "False\n"

    asyncio.run(main())


def test_interrupt_stops_the_cell_within_a_second_and_keeps_state(minimal_image: str) -> None:
    async def main() -> None:
        async with DockerCommandLineCodeExecutor(minimal_image) as ex:
            await collect(ex, "kept = 7")
            events: list[Event] = []
            started = asyncio.Event()

            async def run() -> None:
                async for event in ex.execute(
                    "import time\nprint('go', flush=True)\ntime.sleep(60)"
                ):
                    events.append(event)
                    if isinstance(event, Stream) and "go" in event.text:
                        started.set()

            task = asyncio.ensure_future(run())
            await asyncio.wait_for(started.wait(), 10)
            t0 = time.monotonic()
            await ex.interrupt()
            await asyncio.wait_for(task, 10)
            assert time.monotonic() - t0 < 1.0
            assert any(isinstance(e, Error) and e.ename == "KeyboardInterrupt" for e in events)
            assert text_of(await collect(ex, "print(kept)")) == "7\n"

    asyncio.run(main())


def test_cancellation_really_stops_the_code(minimal_image: str, tmp_path: Path) -> None:
    code = (
        "import time\nopen('/workspace/started', 'w').close()\n"
        "time.sleep(3)\nopen('/workspace/late', 'w').close()\n"
    )

    async def main() -> None:
        async with DockerCommandLineCodeExecutor(minimal_image, work_dir=tmp_path) as ex:
            token = CancellationToken()
            task = asyncio.ensure_future(ex.execute_code_blocks([CodeBlock(code, "python")], token))
            deadline = time.monotonic() + 20
            while not (tmp_path / "started").exists():
                assert time.monotonic() < deadline, "the block never started"
                await asyncio.sleep(0.05)
            token.cancel()
            result = await asyncio.wait_for(task, 10)
            assert result.exit_code == 1
            assert "Code execution was cancelled." in result.output
            # the code would have written 'late' 3 s after 'started': it never does
            deadline = time.monotonic() + 4.5
            while time.monotonic() < deadline:
                assert not (tmp_path / "late").exists()
                await asyncio.sleep(0.1)
            ok = await ex.execute_code_blocks([CodeBlock("print('still usable')", "python")], None)
            assert ok.exit_code == 0

    asyncio.run(main())


def test_docker_kill_mid_cell_gives_a_clear_error_then_a_fresh_container(
    minimal_image: str,
) -> None:
    async def main() -> None:
        ex = DockerCommandLineCodeExecutor(minimal_image, functions=[add_numbers])
        try:
            first = await collect(ex, "print(add_numbers(1, 2))")
            assert text_of(first).endswith("3\n")
            container = ex.container_id
            assert container is not None
            # a local engine: the runtime's protocol comes over the Unix socket, so the
            # death is seen there (its end), not on Docker's attach stream
            assert ex._transport is not None and ex._transport.protocol_over_socket
            events: list[Event] = []
            started = asyncio.Event()

            async def run() -> None:
                async for event in ex.execute(
                    "import time\nprint('go', flush=True)\ntime.sleep(60)"
                ):
                    events.append(event)
                    if isinstance(event, Stream) and "go" in event.text:
                        started.set()

            task = asyncio.ensure_future(run())
            await asyncio.wait_for(started.wait(), 10)
            t0 = time.monotonic()
            subprocess.run(["docker", "kill", container], check=True, capture_output=True)
            await asyncio.wait_for(task, 10)
            assert time.monotonic() - t0 < 2.0
            errors = [e for e in events if isinstance(e, Error)]
            assert errors and errors[-1].ename == "RuntimeDiedError"
            assert "137" in errors[-1].evalue and "SIGKILL" in errors[-1].evalue
            assert isinstance(events[-1], Finished) and events[-1].exit_code == 1
            again = await collect(ex, "print(add_numbers(20, 22))")
            assert text_of(again).endswith("42\n"), again
            assert ex.container_id not in (None, container)
            assert ex._transport is not None and ex._transport.protocol_over_socket
        finally:
            await ex.stop()

    asyncio.run(main())


def test_out_of_memory_is_named(minimal_image: str) -> None:
    async def main() -> None:
        async with DockerCommandLineCodeExecutor(minimal_image, mem_limit="64m") as ex:
            code = "b = bytearray(512 * 1024 * 1024)\nfor i in range(0, len(b), 4096): b[i] = 1"
            events = await asyncio.wait_for(collect(ex, code), 60)
            errors = [e for e in events if isinstance(e, Error)]
            assert errors and "OOMKilled" in errors[-1].evalue
            assert "mem_limit=64m" in errors[-1].evalue
            assert text_of(await collect(ex, "print('alive')")) == "alive\n"

    asyncio.run(main())


def test_restart_gives_fresh_state_and_stop_is_fast(minimal_image: str, docker_client: Any) -> None:
    async def main() -> None:
        ex = DockerCommandLineCodeExecutor(minimal_image)
        await ex.start()
        await collect(ex, "gone = 1")
        t0 = time.monotonic()
        await ex.restart()
        assert time.monotonic() - t0 < 5.0
        assert text_of(await collect(ex, "print('gone' in globals())")) == "False\n"
        name = ex.container_name
        t0 = time.monotonic()
        await ex.stop()
        assert time.monotonic() - t0 < 2.0
        assert not docker_client.containers.list(
            all=True, ignore_removed=True, filters={"name": name}
        )
        await ex.stop()  # idempotent

    asyncio.run(main())


def test_rich_image_uses_ipython_and_shows_figures(rich_image: str) -> None:
    async def main() -> None:
        async with DockerCommandLineCodeExecutor(rich_image) as ex:
            events = await collect(
                ex,
                "import matplotlib.pyplot as plt\nplt.plot([1, 2, 3])\nplt.show()\n%time 1 + 1",
            )
            assert any(isinstance(e, Display) and "image/png" in e.data for e in events), events
            assert not any(isinstance(e, Error) for e in events), events

    asyncio.run(main())


def test_unknown_language_gives_exit_1(minimal_image: str) -> None:
    assert {"python", "bash", "sh"} <= set(DockerCommandLineCodeExecutor.SUPPORTED_LANGUAGES)

    async def main() -> None:
        async with DockerCommandLineCodeExecutor(minimal_image) as ex:
            result = await ex.execute_code_blocks([CodeBlock("x", "javascript")], None)
            assert result.exit_code == 1 and "unknown language javascript" in result.output

    asyncio.run(main())


def test_complete_inspect_and_the_os_interrupt_fallback(minimal_image: str) -> None:
    async def main() -> None:
        async with DockerCommandLineCodeExecutor(minimal_image) as ex:
            await collect(ex, "import os\nmy_variable = 1")
            completion = await ex.complete("my_var", 6)
            assert "my_variable" in completion.matches
            assert (await ex.inspect("os", 2)).found
            events: list[Event] = []
            started = asyncio.Event()

            async def run() -> None:
                async for event in ex.execute(
                    "import time\nprint('go', flush=True)\ntime.sleep(60)"
                ):
                    events.append(event)
                    if isinstance(event, Stream) and "go" in event.text:
                        started.set()

            task = asyncio.ensure_future(run())
            await asyncio.wait_for(started.wait(), 10)
            assert ex._transport is not None
            await ex._transport.send_interrupt_signal()  # docker kill --signal SIGINT
            await asyncio.wait_for(task, 5)
            assert any(isinstance(e, Error) and e.ename == "KeyboardInterrupt" for e in events)
            assert text_of(await collect(ex, "print(my_variable)")) == "1\n"

    asyncio.run(main())
