"""The AutoGen-compatible code-block layer: ``execute_code_blocks`` on top of ``execute``.

Every executor's ``execute_code_blocks(code_blocks, cancellation_token)`` calls
:func:`run_code_blocks`, which keeps AutoGen's contract (blocks in order, stop at
the first non-zero exit, the last block's exit code, outputs joined with no separator,
``# filename:`` files, ``tmp_code_<sha256>.<ext>`` names, exit 124 plus ``"\\n Timeout"``
with the partial output kept, exit 1 plus ``"Code execution was cancelled."``) while
folding the executor's events, so output is merged in arrival order and a cancellation
really interrupts the running code.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import io
import logging
import re
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from ..errors import ConfigurationError, InvalidCodeBlocksError
from ..events import (
    ClearOutput,
    Display,
    Error,
    Event,
    Finished,
    Page,
    Result,
    StateLost,
    Stream,
)
from ._host_files import check_name, unlink_file, write_file
from .base import RemoteExecutor

__all__ = [
    "CancellationToken",
    "CodeBlock",
    "CodeResult",
    "CommandLineCodeResult",
    "filename_from_code",
    "normalize_language",
    "run_code_blocks",
    "silence_pip",
]

log = logging.getLogger(__name__)

TIMEOUT_EXIT_CODE = 124
TIMEOUT_MARKER = "\n Timeout"
CANCELLED_MESSAGE = "Code execution was cancelled."
CANCEL_GRACE_SECONDS = 5.0
"""How long a cancelled block may take to end after the interrupt before it is abandoned."""

_ANSI = re.compile(r"\x1b(?:[@-Z\\-_]|\[[0-?]*[ -/]*[@-~])")
_PWSH = ("pwsh", "powershell", "ps1")


@dataclass
class CodeBlock:
    """A block of code and its language, as an agent extracted it from a message."""

    code: str
    language: str


@dataclass
class CodeResult:
    """The result of running code blocks: the exit code and the combined output."""

    exit_code: int
    output: str


@dataclass
class CommandLineCodeResult(CodeResult):
    """A :class:`CodeResult` plus ``code_file``: the first file written, or None."""

    code_file: str | None = None


class CancellationToken:
    """Minimal equivalent of ``autogen_core.CancellationToken`` (thread-safe).

    ``execute_code_blocks`` accepts this or autogen's own token (duck typed). Callbacks
    run once, when :meth:`cancel` is first called (at once if already cancelled).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._cancelled = False
        self._callbacks: list[Callable[[], None]] = []

    def cancel(self) -> None:
        """Cancel: run every registered callback (once)."""
        with self._lock:
            if self._cancelled:
                return
            self._cancelled = True
            callbacks, self._callbacks = self._callbacks, []
        for callback in callbacks:
            try:
                callback()
            except Exception:
                log.exception("cancellation callback failed")

    def is_cancelled(self) -> bool:
        """Return True once :meth:`cancel` was called."""
        with self._lock:
            return self._cancelled

    def add_callback(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` on cancellation (immediately when already cancelled)."""
        with self._lock:
            if not self._cancelled:
                self._callbacks.append(callback)
                return
        callback()

    def link_future(self, future: asyncio.Future[Any]) -> asyncio.Future[Any]:
        """Cancel ``future`` when this token is cancelled; returns ``future``."""

        def cancel_future() -> None:
            future.cancel()

        self.add_callback(cancel_future)
        return future


def normalize_language(lang: str) -> str:
    """Return the canonical name of a block language (case-insensitive).

    ``python``/``py``/``python3`` -> ``python``; ``shell`` -> ``sh``; ``bash`` and ``sh``
    stay; ``pwsh``/``powershell``/``ps1`` -> ``pwsh``; anything else is returned
    lower-cased (and is then reported as an unknown language).
    """
    name = (lang or "").strip().lower()
    if name in ("python", "py", "python3"):
        return "python"
    if name == "shell":
        return "sh"
    if name in _PWSH:
        return "pwsh"
    return name


def silence_pip(code: str, lang: str) -> str:
    """Add ``-qqq`` to pip install lines, exactly as AutoGen does.

    For ``python``, lines starting with ``!pip install`` or ``! pip install``; for
    bash/shell/sh/pwsh/powershell/ps1, lines starting with ``pip install``; lines that
    already contain ``-qqq`` and other languages are left alone.
    """
    if lang == "python":
        regex = r"^! ?pip install"
    elif lang in ("bash", "shell", "sh", "pwsh", "powershell", "ps1"):
        regex = r"^pip install"
    else:
        return code
    lines = code.split("\n")
    for i, line in enumerate(lines):
        match = re.search(regex, line)
        if match is not None and "-qqq" not in line:
            lines[i] = line.replace(match.group(0), match.group(0) + " -qqq")
    return "\n".join(lines)


def filename_from_code(code: str, workspace: Path) -> str | None:
    """Return the ``# filename: NAME`` of the block's first line, relative to ``workspace``.

    Returns None without such a line. Raises :class:`InvalidCodeBlocksError` (a
    ValueError) ``"Filename is not in the workspace"`` when the name (resolved,
    following ``..`` and symlinks) escapes it.
    """
    first_line = code.split("\n")[0]
    if not first_line.startswith("# filename:"):
        return None
    filename = first_line.split(":")[1].strip()
    path = Path(filename)
    if not path.is_absolute():
        path = workspace / path
    try:
        relative = path.resolve().relative_to(workspace.resolve())
    except ValueError:
        raise InvalidCodeBlocksError("Filename is not in the workspace") from None
    return str(relative)


def _extension(lang: str) -> str:
    if lang == "python":
        return "py"
    if lang in _PWSH:
        return "ps1"
    return lang


def _with_newline(text: str) -> str:
    return text if text.endswith("\n") else text + "\n"


class _Fold:
    """Accumulates one block's events into its text output and exit code."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.exit_code: int | None = None
        self.cancelled = False
        self._timeout_error: tuple[int, str] | None = None

    def add(self, event: Event) -> None:
        if isinstance(event, Stream):
            self.parts.append(event.text)
        elif isinstance(event, Display | Result):
            text = event.data.get("text/plain")
            if isinstance(text, str):
                self.parts.append(_with_newline(text))
        elif isinstance(event, Error):
            if self.cancelled and event.ename == "KeyboardInterrupt":
                return  # our own interrupt: the cancellation message says it
            if not event.shown:
                return  # already in the output as text (IPython's UsageError on stderr)
            if event.traceback:
                text = _ANSI.sub("", "\n".join(event.traceback))
            else:
                text = f"{event.ename}: {event.evalue}"
            if event.ename == "TimeoutError":
                # held back: AutoGen's marker replaces it when Finished says 124
                self._timeout_error = (len(self.parts), _with_newline(text))
            else:
                self.parts.append(_with_newline(text))
        elif isinstance(event, StateLost):
            self.parts.append(_with_newline(event.reason))
        elif isinstance(event, Page):
            text = event.data.get("text/plain")
            if isinstance(text, str):
                self.parts.append(_with_newline(_ANSI.sub("", text)))
        elif isinstance(event, Finished):
            self.exit_code = event.exit_code
        elif isinstance(event, ClearOutput):
            pass  # the folded text keeps everything that was shown

    def text(self) -> str:
        parts = list(self.parts)
        if self._timeout_error is not None and self.exit_code != TIMEOUT_EXIT_CODE:
            index, text = self._timeout_error
            parts.insert(index, text)
        return "".join(parts)


def _cancel_event(token: object | None) -> tuple[asyncio.Future[None], Callable[[], None]]:
    """Return a future done (on this loop) when ``token`` is cancelled, and a detach function.

    A future rather than an ``asyncio.Event``: ``asyncio.wait`` watches it directly, where
    an event would need a task (and an event-loop turn) for every block.
    """
    loop = asyncio.get_running_loop()
    signal: asyncio.Future[None] = loop.create_future()
    if token is None:
        return signal, lambda: None
    active = True

    def set_signal() -> None:
        if not signal.done():
            signal.set_result(None)

    def on_cancel(*_: object) -> None:
        if not active:
            return
        with contextlib.suppress(RuntimeError):  # the loop is already closed
            loop.call_soon_threadsafe(set_signal)

    def detach() -> None:
        nonlocal active
        active = False

    is_cancelled = getattr(token, "is_cancelled", None)
    if callable(is_cancelled) and is_cancelled():
        set_signal()
    elif callable(getattr(token, "add_callback", None)):
        token.add_callback(on_cancel)  # type: ignore[attr-defined]
    elif callable(getattr(token, "link_future", None)):
        future: asyncio.Future[None] = loop.create_future()
        future.add_done_callback(on_cancel)
        token.link_future(future)  # type: ignore[attr-defined]
    else:
        raise TypeError(
            f"cancellation_token must be a CancellationToken (or None), not {type(token).__name__}"
        )
    return signal, detach


async def _interrupt(executor: RemoteExecutor) -> None:
    try:
        await executor.interrupt()
    except Exception:
        log.exception("interrupting the executor after a cancellation failed")


async def _run_block(
    executor: RemoteExecutor,
    code: str,
    lang: str,
    timeout: float,
    cancelled: asyncio.Future[None],
) -> tuple[int, str]:
    """Run one block, folding its events; interrupt it when ``cancelled`` is done."""
    fold = _Fold()
    events = executor.execute(code, language=lang, timeout=timeout)

    async def consume() -> None:
        async for event in events:
            fold.add(event)

    consumer = asyncio.ensure_future(consume())
    try:
        await asyncio.wait({consumer, cancelled}, return_when=asyncio.FIRST_COMPLETED)
        if consumer.done():
            consumer.result()  # an executor failure (not a user error) propagates
            if fold.exit_code is None:
                return 1, _with_newline(fold.text()) + "The execution ended without a status.\n"
            text = fold.text()
            if fold.exit_code == TIMEOUT_EXIT_CODE:
                text += TIMEOUT_MARKER
            return fold.exit_code, text
        fold.cancelled = True
        await _interrupt(executor)
        with contextlib.suppress(Exception, asyncio.TimeoutError):
            await asyncio.wait_for(asyncio.shield(consumer), CANCEL_GRACE_SECONDS)
        text = fold.text()
        if text and not text.endswith("\n"):
            text += "\n"
        return 1, text + CANCELLED_MESSAGE
    except asyncio.CancelledError:
        if not consumer.done():
            await asyncio.shield(_interrupt(executor))
        raise
    finally:
        if not consumer.done():
            consumer.cancel()
            with contextlib.suppress(BaseException):
                await consumer
        aclose = getattr(events, "aclose", None)
        if callable(aclose):
            with contextlib.suppress(Exception):
                await aclose()


def _block_fields(block: object) -> tuple[str, str]:
    code, language = getattr(block, "code", None), getattr(block, "language", None)
    if not isinstance(code, str) or not isinstance(language, str):
        raise InvalidCodeBlocksError(f"not a code block (needs str code and language): {block!r}")
    return code, language


async def run_code_blocks(
    executor: RemoteExecutor,
    code_blocks: Sequence[object],
    cancellation_token: object | None,
    *,
    timeout: float,
    work_dir: Path | None,
    supported_languages: Sequence[str],
    write_code_files: bool,
    delete_tmp_files: bool,
) -> CommandLineCodeResult:
    """Run ``code_blocks`` in order on ``executor`` and fold them into one result.

    Called by every executor's ``execute_code_blocks``. Per block: normalise the
    language (unknown -> exit 1 ``unknown language X``, nothing run), apply
    :func:`silence_pip`, write the code to ``work_dir`` when ``write_code_files``
    (``# filename:`` name or ``tmp_code_<sha256>.<ext>``), run it with ``timeout``
    seconds. Stops at the first non-zero exit code; a timeout gives exit 124 with the
    partial output and ``"\\n Timeout"``; cancelling ``cancellation_token`` interrupts
    the running code and gives exit 1 with ``"Code execution was cancelled."``. Written
    files are removed at the end when ``delete_tmp_files``. Raises
    :class:`InvalidCodeBlocksError` (a ValueError, as AutoGen's API says) for an empty
    list, something that is not a block, or a missing ``work_dir`` when files are to be
    written.
    """
    if not code_blocks:
        raise InvalidCodeBlocksError("No code blocks to execute.")
    if write_code_files and work_dir is None:
        raise InvalidCodeBlocksError("work_dir is required to write code files")
    supported = {normalize_language(lang) for lang in supported_languages}
    outputs: list[str] = []
    exit_code = 0
    written: list[Path] = []
    cancelled, detach = _cancel_event(cancellation_token)
    try:
        for block in code_blocks:
            code, raw_language = _block_fields(block)
            lang = normalize_language(raw_language)
            if lang not in supported:
                joined = "".join(outputs)
                sep = "\n" if joined and not joined.endswith("\n") else ""
                outputs.append(f"{sep}unknown language {raw_language.strip().lower()}")
                exit_code = 1
                break
            code = silence_pip(code, lang)
            if cancelled.done():
                outputs.append(CANCELLED_MESSAGE)
                exit_code = 1
                break
            if write_code_files and work_dir is not None:
                try:
                    filename = filename_from_code(code, work_dir)
                except InvalidCodeBlocksError as exc:
                    outputs.append(str(exc))
                    exit_code = 1
                    break
                if filename is None:
                    digest = hashlib.sha256(code.encode("utf-8")).hexdigest()
                    filename = f"tmp_code_{digest}.{_extension(lang)}"
                # work_dir may be shared with the code (Docker): write without following links
                try:
                    relative = check_name(filename, where=f"the work_dir {str(work_dir)!r}")
                    path = write_file(work_dir, relative, io.BytesIO(code.encode("utf-8")))
                except ConfigurationError as exc:
                    outputs.append(str(exc))
                    exit_code = 1
                    break
                if path not in written:
                    written.append(path)
            exit_code, output = await _run_block(executor, code, lang, timeout, cancelled)
            outputs.append(output)
            if exit_code != 0:
                break
    finally:
        detach()
        if delete_tmp_files:
            for path in written:
                with contextlib.suppress(OSError, ValueError):
                    base = work_dir or path.parent
                    unlink_file(base, PurePosixPath(path.relative_to(base).as_posix()))
    return CommandLineCodeResult(
        exit_code=exit_code,
        output="".join(outputs),
        code_file=str(written[0]) if written else None,
    )
