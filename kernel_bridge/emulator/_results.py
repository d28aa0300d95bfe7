"""Fold an execution's events into the service's ``properties`` (aca-api.md §1.4, §7).

``result`` follows the service: numbers and booleans as JSON values, other values as
their ``text/plain`` repr, ``""`` when nothing was displayed, a PNG display (a figure)
as ``{"type": "image", "format": "png", "base64_data": ...}`` (it wins over a value:
[INF]). A cell that fails makes the status ``Failure``; a shown error's plain (ANSI-free)
traceback goes to ``stderr``; output printed before it stays in ``stdout``. Other rich displays
(HTML, ...) are not reported, like on the service [INF].
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from typing import Any

from ..events import Display, Error, Event, Finished, Result, StateLost, Stream

__all__ = ["fold_events"]

_ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]")


def _primitive(value: Any) -> bool:
    if isinstance(value, bool | int):
        return True
    return isinstance(value, float) and math.isfinite(value)


def _traceback_text(error: Error) -> str:
    lines = [_ANSI.sub("", line) for line in error.traceback]
    text = "\n".join(line.rstrip("\n") for line in lines).strip("\n")
    last = text.strip().splitlines()[-1].strip() if text.strip() else ""
    if not last.startswith(error.ename):
        tail = f"{error.ename}: {error.evalue}" if error.evalue else error.ename
        text = f"{text}\n{tail}" if text else tail
    return text + "\n"


def fold_events(events: Iterable[Event]) -> dict[str, Any]:
    """Return ``{status, stdout, stderr, result}`` for the events of one execution."""
    stdout: list[str] = []
    stderr: list[str] = []
    result: Any = ""
    image: dict[str, str] | None = None
    failed = False
    for event in events:
        if isinstance(event, Stream):
            (stdout if event.name == "stdout" else stderr).append(event.text)
        elif isinstance(event, Error):
            # The cell's end says whether it failed: a traceback shown by a cell that
            # went on (a failing _repr_html_, an exception in a widget) leaves it ok,
            # as in the kernel.
            if event.shown:  # an unshown one (UsageError) is already on stderr
                stderr.append(_traceback_text(event))
        elif isinstance(event, StateLost):
            stderr.append(event.reason.rstrip("\n") + "\n")
        elif isinstance(event, Result):
            if _primitive(event.value_json):
                result = event.value_json
            else:
                result = str(event.data.get("text/plain", ""))
        elif isinstance(event, Display) and "image/png" in event.data:
            image = {"type": "image", "format": "png", "base64_data": str(event.data["image/png"])}
        elif isinstance(event, Finished) and not event.ok:
            failed = True
    return {
        "status": "Failure" if failed else "Success",
        "stdout": "".join(stdout),
        "stderr": "".join(stderr),
        "result": image if image is not None else result,
    }
