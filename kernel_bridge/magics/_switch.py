"""``%bridge use`` and ``%bridge restart``: a new session, on another executor or the same.

State never carries over, and the messages say so; the functions are injected again
by the new session's start.
"""

from __future__ import annotations

import contextlib
import importlib.util
from collections.abc import AsyncIterator
from typing import Any

from ..errors import BridgeError
from ..events import Error, OutputEvent, Stream
from ..executors.registry import executor_kinds
from ._host import MagicHost

__all__ = ["list_executors", "restart", "use"]

_NEEDS = {"local": None, "docker": "docker", "aca": "httpx"}


def _functions_note(host: MagicHost) -> str:
    names = host.function_names()
    if not names:
        return "no user-defined functions are configured"
    return "the functions were injected again: " + ", ".join(names)


def list_executors(host: MagicHost) -> list[OutputEvent]:
    """``%bridge use`` alone: the executors and how to switch to each."""
    lines = [f"this notebook uses: {host.executor_kind}", "available executors:"]
    examples = {
        "local": "%bridge use local",
        "docker": "%bridge use docker --image IMAGE [--memory 2g] [--mount-notebook-dir]",
        "aca": "%bridge use aca [--endpoint URL]",
    }
    for kind in executor_kinds():
        module = _NEEDS.get(kind)
        ready = module is None or importlib.util.find_spec(module) is not None
        note = "" if ready else f" (needs: pip install 'kernel_bridge[{kind}]')"
        lines.append(f"  {kind:<7} {examples.get(kind, '%bridge use ' + kind)}{note}")
    lines.append("Switching starts a new session: state does not carry over.")
    return [Stream("stdout", "\n".join(lines) + "\n")]


def _error(text: str) -> Error:
    return Error("BridgeMagicError", text, [f"BridgeMagicError: {text}"])


async def use(host: MagicHost, kind: str, overrides: dict[str, Any]) -> AsyncIterator[OutputEvent]:
    """Start a session on ``kind``; on success drop the old one, else keep it."""
    previous = host.executor_kind
    try:
        executor = host.build_executor_for(kind, overrides)
    except BridgeError as exc:
        yield _error(f"cannot use the {kind} executor: {exc}. This notebook stays on {previous}.")
        return
    try:
        await executor.start()
    except BridgeError as exc:
        with contextlib.suppress(Exception):
            await executor.stop()
        yield _error(
            f"the {kind} executor did not start: {exc}\nThis notebook stays on {previous}, "
            "its state untouched."
        )
        return
    old = host.bridge_session.replace_executor(executor)
    host.set_executor_kind(kind, overrides)
    host.provenance.forget()
    await host.provenance.refresh(executor)
    if old is not None:
        with contextlib.suppress(Exception):
            await old.stop()
    where = (
        f" (image {overrides.get('image') or getattr(executor, 'image', '')})"
        if kind == "docker"
        else ""
    )
    yield Stream(
        "stdout",
        f"now using the {kind} executor{where}, in a new session. State was reset: variables "
        f"and imports of the {previous} session do not carry over; {_functions_note(host)}.\n",
    )


async def restart(host: MagicHost) -> AsyncIterator[OutputEvent]:
    """Replace the session by a fresh one on the same executor."""
    executor = host.bridge_session.get_executor()
    try:
        await executor.restart()
    except BridgeError as exc:
        yield _error(f"the {host.executor_kind} session could not be restarted: {exc}")
        return
    finally:
        host.provenance.forget()
    await host.provenance.refresh(executor)
    yield Stream(
        "stdout",
        f"restarted: a fresh {host.executor_kind} session. State was reset; "
        f"{_functions_note(host)}.\n",
    )
