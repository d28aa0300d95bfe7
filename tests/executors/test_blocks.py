"""The AutoGen-compatible block layer: a pure fold of executor events, tested with an
in-test executor that replays canned events (and really waits for interrupt())."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import pytest

from kernel_bridge.errors import BridgeError, InvalidCodeBlocksError
from kernel_bridge.events import Display, Error, Event, Finished, Result, StateLost, Stream
from kernel_bridge.executors._blocks import (
    CancellationToken,
    CodeBlock,
    CommandLineCodeResult,
    filename_from_code,
    normalize_language,
    run_code_blocks,
    silence_pip,
)
from kernel_bridge.executors.base import (
    InputHandler,
    RemoteExecutor,
)


class CannedExecutor(RemoteExecutor):
    """Replays one list of events per execute() call; a "WAIT" item blocks until interrupt().

    It implements only the four required methods of the kernel contract, which is all
    ``run_code_blocks`` needs.
    """

    kind = "canned"

    def __init__(self, scripts: Sequence[Sequence[Event | str]]) -> None:
        self.scripts = list(scripts)
        self.calls: list[tuple[str, str, float | None]] = []
        self.interrupted = asyncio.Event()
        self.interrupts = 0
        self.waiting = asyncio.Event()

    async def start(self) -> None: ...
    async def stop(self) -> None: ...

    async def interrupt(self) -> None:
        self.interrupts += 1
        self.interrupted.set()

    async def execute(  # type: ignore[override]
        self,
        code: str,
        *,
        language: str = "python",
        timeout: float | None = None,
        input_handler: InputHandler | None = None,
        silent: bool = False,
        store_history: bool = True,
    ) -> AsyncIterator[Event]:
        self.calls.append((code, language, timeout))
        for item in self.scripts[len(self.calls) - 1]:
            if item == "WAIT":
                self.waiting.set()
                await self.interrupted.wait()
            else:
                assert not isinstance(item, str)
                yield item


LANGS = ("python", "sh", "bash", "pwsh")


def run(
    executor: CannedExecutor,
    blocks: Sequence[object],
    token: object | None = None,
    *,
    work_dir: Path | None = None,
    write: bool = False,
    delete: bool = False,
) -> CommandLineCodeResult:
    return asyncio.run(
        run_code_blocks(
            executor,
            blocks,
            token,
            timeout=7,
            work_dir=work_dir,
            supported_languages=LANGS,
            write_code_files=write,
            delete_tmp_files=delete,
        )
    )


# -- unit helpers ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("python", "python"),
        ("Python", "python"),
        ("py", "python"),
        ("PY", "python"),
        ("shell", "sh"),
        ("sh", "sh"),
        ("bash", "bash"),
        ("pwsh", "pwsh"),
        ("PowerShell", "pwsh"),
        ("ps1", "pwsh"),
        ("JavaScript", "javascript"),
    ],
)
def test_normalize_language(given: str, expected: str) -> None:
    assert normalize_language(given) == expected


def test_silence_pip_matches_autogen() -> None:
    code = (
        "!pip install numpy\n! pip install pandas\n  !pip install x\n!pip install -qqq y\nprint(1)"
    )
    assert silence_pip(code, "python") == (
        "!pip install -qqq numpy\n! pip install -qqq pandas\n  !pip install x\n"
        "!pip install -qqq y\nprint(1)"
    )
    assert silence_pip("pip install a\necho pip install b", "sh") == (
        "pip install -qqq a\necho pip install b"
    )
    for lang in ("bash", "shell", "pwsh", "powershell", "ps1"):
        assert silence_pip("pip install a", lang) == "pip install -qqq a"
    # AutoGen only rewrites the exact lower-case names
    assert silence_pip("!pip install a", "py") == "!pip install a"
    assert silence_pip("pip install a", "javascript") == "pip install a"


def test_filename_from_code(tmp_path: Path) -> None:
    assert filename_from_code("print(1)", tmp_path) is None
    assert filename_from_code("# filename: a.py\nprint(1)", tmp_path) == "a.py"
    assert filename_from_code("# filename: sub/b.py\n", tmp_path) == str(Path("sub/b.py"))
    assert filename_from_code(f"# filename: {tmp_path}/c.py\n", tmp_path) == "c.py"
    for bad in ("../evil.py", "/etc/passwd", "sub/../../x.py"):
        with pytest.raises(ValueError, match=r"^Filename is not in the workspace$"):
            filename_from_code(f"# filename: {bad}\nx", tmp_path)


def test_cancellation_token_runs_callbacks_once() -> None:
    token = CancellationToken()
    seen: list[str] = []
    token.add_callback(lambda: seen.append("a"))
    assert not token.is_cancelled()
    token.cancel()
    token.cancel()
    token.add_callback(lambda: seen.append("late"))
    assert token.is_cancelled()
    assert seen == ["a", "late"]

    async def linked() -> bool:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        other = CancellationToken()
        assert other.link_future(future) is future
        other.cancel()
        return future.cancelled()

    assert asyncio.run(linked())


# -- folding ----------------------------------------------------------------------------


def test_events_fold_in_arrival_order_and_blocks_join_without_separator() -> None:
    executor = CannedExecutor(
        [
            [
                Stream("stdout", "out1\n"),
                Stream("stderr", "err1\n"),
                Display({"text/plain": "<Figure>", "image/png": "xx"}),
                Result({"text/plain": "42"}),
                Finished(0),
            ],
            [Stream("stdout", "second"), Finished(0)],
        ]
    )
    result = run(executor, [CodeBlock("a = 1", "Python"), CodeBlock("echo hi", "shell")])
    assert result == CommandLineCodeResult(0, "out1\nerr1\n<Figure>\n42\nsecond", None)
    assert executor.calls == [("a = 1", "python", 7), ("echo hi", "sh", 7)]


def test_error_strips_ansi_and_stops_at_first_failure() -> None:
    executor = CannedExecutor(
        [
            [
                Stream("stdout", "before\n"),
                Error(
                    "ZeroDivisionError",
                    "division by zero",
                    ["\x1b[0;31mTraceback\x1b[0m", "ZeroDivisionError: division by zero"],
                ),
                Finished(1),
            ],
            [Stream("stdout", "never"), Finished(0)],
        ]
    )
    result = run(executor, [CodeBlock("1/0", "python"), CodeBlock("x", "python")])
    assert result.exit_code == 1
    assert result.output == "before\nTraceback\nZeroDivisionError: division by zero\n"
    assert len(executor.calls) == 1


def test_error_without_traceback_and_state_lost() -> None:
    executor = CannedExecutor(
        [[StateLost("the runtime died"), Error("RuntimeDiedError", "gone"), Finished(1)]]
    )
    result = run(executor, [CodeBlock("x", "python")])
    assert result.output == "the runtime died\nRuntimeDiedError: gone\n"
    assert result.exit_code == 1


def test_shell_exit_code_is_the_last_blocks() -> None:
    executor = CannedExecutor([[Finished(0)], [Stream("stderr", "boom\n"), Finished(3)]])
    result = run(executor, [CodeBlock("true", "sh"), CodeBlock("exit 3", "bash")])
    assert (result.exit_code, result.output) == (3, "boom\n")


def test_timeout_keeps_partial_output_and_appends_the_docker_marker() -> None:
    executor = CannedExecutor(
        [[Stream("stdout", "start\n"), Error("TimeoutError", "timed out after 7 s"), Finished(124)]]
    )
    result = run(executor, [CodeBlock("import time; print('start'); time.sleep(99)", "python")])
    assert result.exit_code == 124
    assert result.output == "start\n\n Timeout"


def test_a_user_timeout_error_is_an_ordinary_error() -> None:
    executor = CannedExecutor([[Error("TimeoutError", "mine"), Stream("stdout", "x"), Finished(1)]])
    result = run(executor, [CodeBlock("raise TimeoutError('mine')", "python")])
    assert (result.exit_code, result.output) == (1, "TimeoutError: mine\nx")


def test_unknown_language_stops_without_running_or_writing(tmp_path: Path) -> None:
    executor = CannedExecutor([[Stream("stdout", "ok"), Finished(0)]])
    result = run(
        executor,
        [
            CodeBlock("print(1)", "python"),
            CodeBlock("console.log(1)", "JavaScript"),
            CodeBlock("x", "python"),
        ],
        work_dir=tmp_path,
        write=True,
    )
    assert (result.exit_code, result.output) == (1, "ok\nunknown language javascript")
    assert len(executor.calls) == 1
    assert [p.suffix for p in tmp_path.iterdir()] == [".py"]

    first = run(CannedExecutor([]), [CodeBlock("x", "ruby")])
    assert (first.exit_code, first.output, first.code_file) == (1, "unknown language ruby", None)


def test_bad_block_input_is_a_value_error_of_our_tree() -> None:
    # a ValueError as AutoGen's API promises, and a BridgeError the session reports by type
    with pytest.raises(InvalidCodeBlocksError, match=r"^No code blocks to execute\.$") as info:
        run(CannedExecutor([]), [])
    assert isinstance(info.value, ValueError) and isinstance(info.value, BridgeError)
    with pytest.raises(InvalidCodeBlocksError, match="not a code block"):
        run(CannedExecutor([]), [("print(1)", "python")])


def test_code_files_are_written_named_and_deleted(tmp_path: Path) -> None:
    import hashlib

    blocks = [
        CodeBlock("!pip install numpy\nprint(1)", "py"),
        CodeBlock("# filename: sub/named.sh\necho hi", "shell"),
        CodeBlock("Write-Output 1", "powershell"),
    ]
    executor = CannedExecutor([[Finished(0)]] * 3)
    result = run(executor, blocks, work_dir=tmp_path, write=True)
    silenced = "!pip install -qqq numpy\nprint(1)"
    digest = hashlib.sha256(silenced.encode()).hexdigest()
    first = tmp_path / f"tmp_code_{digest}.py"
    assert result.code_file == str(first)
    assert first.read_text(encoding="utf-8") == silenced
    assert (tmp_path / "sub" / "named.sh").read_text() == "# filename: sub/named.sh\necho hi"
    ps1 = hashlib.sha256(b"Write-Output 1").hexdigest()
    assert (tmp_path / f"tmp_code_{ps1}.ps1").exists()
    assert executor.calls[0] == (silenced, "python", 7)

    deleted = tmp_path / "deleted"
    deleted.mkdir()
    result = run(
        CannedExecutor([[Finished(0)]]),
        [CodeBlock("print(2)", "python")],
        work_dir=deleted,
        write=True,
        delete=True,
    )
    assert result.code_file is not None and result.code_file.startswith(str(deleted))
    assert list(deleted.iterdir()) == []


def test_filename_escape_is_reported_as_autogen_does(tmp_path: Path) -> None:
    executor = CannedExecutor([])
    result = run(
        executor,
        [CodeBlock("# filename: ../evil.py\nprint(1)", "python")],
        work_dir=tmp_path,
        write=True,
    )
    assert (result.exit_code, result.output) == (1, "Filename is not in the workspace")
    assert executor.calls == []
    assert not (tmp_path.parent / "evil.py").exists()


def test_cancellation_interrupts_the_running_code_and_keeps_partial_output() -> None:
    executor = CannedExecutor(
        [
            [
                Stream("stdout", "partial"),
                "WAIT",
                Error("KeyboardInterrupt", "", ["KeyboardInterrupt"]),
                Finished(1),
            ],
            [Finished(0)],
        ]
    )
    token = CancellationToken()

    async def main() -> CommandLineCodeResult:
        task = asyncio.create_task(
            run_code_blocks(
                executor,
                [CodeBlock("long()", "python"), CodeBlock("never()", "python")],
                token,
                timeout=60,
                work_dir=None,
                supported_languages=LANGS,
                write_code_files=False,
                delete_tmp_files=False,
            )
        )
        await asyncio.wait_for(executor.waiting.wait(), 10)
        token.cancel()
        return await asyncio.wait_for(task, 10)

    result = asyncio.run(main())
    assert executor.interrupts == 1
    assert (result.exit_code, result.output) == (1, "partial\nCode execution was cancelled.")
    assert len(executor.calls) == 1


def test_cancellation_from_another_thread() -> None:
    executor = CannedExecutor([["WAIT", Finished(1)]])
    token = CancellationToken()

    async def main() -> CommandLineCodeResult:
        task = asyncio.create_task(
            run_code_blocks(
                executor,
                [CodeBlock("x", "python")],
                token,
                timeout=60,
                work_dir=None,
                supported_languages=LANGS,
                write_code_files=False,
                delete_tmp_files=False,
            )
        )
        await asyncio.wait_for(executor.waiting.wait(), 10)
        thread = threading.Thread(target=token.cancel)
        thread.start()
        result = await asyncio.wait_for(task, 10)
        thread.join()
        return result

    result = asyncio.run(main())
    assert (result.exit_code, result.output) == (1, "Code execution was cancelled.")
    assert executor.interrupts == 1


def test_an_already_cancelled_token_runs_nothing() -> None:
    token = CancellationToken()
    token.cancel()
    executor = CannedExecutor([[Finished(0)]])
    result = run(executor, [CodeBlock("x", "python")], token)
    assert (result.exit_code, result.output) == (1, "Code execution was cancelled.")
    assert executor.calls == []


class LinkOnlyToken:
    """An autogen-like token offering only link_future (duck typing)."""

    def __init__(self) -> None:
        self.futures: list[asyncio.Future[object]] = []

    def link_future(self, future: asyncio.Future[object]) -> asyncio.Future[object]:
        self.futures.append(future)
        return future


def test_duck_typed_token_via_link_future() -> None:
    executor = CannedExecutor([[Stream("stdout", "a"), "WAIT", Finished(1)]])
    token = LinkOnlyToken()

    async def main() -> CommandLineCodeResult:
        task = asyncio.create_task(
            run_code_blocks(
                executor,
                [CodeBlock("x", "python")],
                token,
                timeout=60,
                work_dir=None,
                supported_languages=LANGS,
                write_code_files=False,
                delete_tmp_files=False,
            )
        )
        await asyncio.wait_for(executor.waiting.wait(), 10)
        token.futures[0].cancel()
        return await asyncio.wait_for(task, 10)

    result = asyncio.run(main())
    assert (result.exit_code, result.output) == (1, "a\nCode execution was cancelled.")


def test_cancelling_the_awaiting_task_interrupts_and_propagates() -> None:
    executor = CannedExecutor([["WAIT", Finished(1)]])

    async def main() -> None:
        task = asyncio.create_task(
            run_code_blocks(
                executor,
                [CodeBlock("x", "python")],
                None,
                timeout=60,
                work_dir=None,
                supported_languages=LANGS,
                write_code_files=False,
                delete_tmp_files=False,
            )
        )
        await asyncio.wait_for(executor.waiting.wait(), 10)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())
    assert executor.interrupts == 1
