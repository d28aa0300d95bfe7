"""Turn a ``code/execute`` response's ``properties`` into kernel_bridge events.

Mapping (aca-api.md §1.4, §7)::

    stdout                      -> Stream("stdout")
    stderr (status Success)     -> Stream("stderr")
    result 42 / True / 1.5      -> Result(text/plain "42", value_json=42)
    result "text"               -> Result(text/plain "text")     ("" means no value)
    result {type: image, ...}   -> Display(image/<format>)
    status Failure              -> Error(ename, evalue, traceback) parsed from stderr

Newer api-versions name the value ``executionResult`` and the status ``Failed``; both
are read too.

With the output shim installed (``_shim``), ``parse_properties(..., nonce=...)``
cuts the shim's frames out of ``stdout``: the user's text and the ``Display`` /
``ClearOutput`` / ``Result`` events keep their order, ``stderr`` goes before the framed
result, a framed ``Result`` replaces the service's ``result``, and the service's image
``result`` is dropped when the same image arrived framed (it stays as the fallback
otherwise).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from ...events import Display, Error, OutputEvent, Result, Stream
from ._shim import split_stdout

__all__ = [
    "ParsedExecution",
    "parse_properties",
    "parse_traceback",
    "strip_ansi",
    "truncation_notices",
]

_ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]")
_EXCEPTION_LINE = re.compile(r"^([A-Za-z_][\w.]*)(?::\s?(.*))?$")
_TIMEOUT_NAMES = frozenset({"TimeoutError", "Timeout", "asyncio.TimeoutError"})


def strip_ansi(text: str) -> str:
    """Remove ANSI colour escapes (IPython tracebacks carry them)."""
    return _ANSI.sub("", text)


@dataclass(frozen=True)
class ParsedExecution:
    """The events of one execution and its AutoGen-style exit code (0, 1 or 124)."""

    events: list[OutputEvent]
    exit_code: int
    failed: bool
    error: Error | None
    frames: list[dict[str, Any]] = field(default_factory=list)
    """Shim frames that are not outputs (hello, introspection replies)."""


def parse_traceback(stderr: str) -> Error:
    """Build an :class:`Error` from traceback text: the last ``Name: value`` line names it."""
    lines = strip_ansi(stderr).rstrip().splitlines()
    ename, evalue = "RemoteExecutionError", "the ACA service reported a failure without details"
    for line in reversed(lines):
        stripped = line.strip()
        if not stripped:
            continue
        match = _EXCEPTION_LINE.match(stripped)
        if match and not stripped.startswith(("File ", "Cell ")):
            ename, evalue = match.group(1), (match.group(2) or "")
        else:
            ename, evalue = "RemoteExecutionError", stripped
        break
    return Error(ename=ename, evalue=evalue, traceback=stderr.rstrip("\n").splitlines())


def _is_failure(status: Any) -> bool:
    return isinstance(status, str) and ("Fail" in status or status.lower() == "error")


def _result_events(value: Any) -> list[OutputEvent]:
    if value is None or value == "":
        return []
    if isinstance(value, dict) and value.get("type") == "image" and "base64_data" in value:
        fmt = str(value.get("format") or "png").lower()
        mime = "image/svg+xml" if fmt == "svg" else f"image/{'jpeg' if fmt == 'jpg' else fmt}"
        return [Display(data={mime: value["base64_data"], "text/plain": f"<{fmt} image>"})]
    if isinstance(value, bool | int | float):
        return [Result(data={"text/plain": repr(value)}, value_json=value)]
    if isinstance(value, str):
        return [Result(data={"text/plain": value})]
    return [Result(data={"text/plain": json.dumps(value, ensure_ascii=False)})]


def _framed_images(events: list[OutputEvent]) -> set[str]:
    return {
        str(value)
        for event in events
        if isinstance(event, Display)
        for mime, value in event.data.items()
        if mime.startswith("image/")
    }


def parse_properties(properties: dict[str, Any], nonce: str | None = None) -> ParsedExecution:
    """Map one response's ``properties`` to events, in the order a notebook shows them.

    ``nonce`` is the output shim's for this session (None: stdout is plain text).
    """
    nested = properties.get("result") if isinstance(properties.get("result"), dict) else None
    if nested is not None and "stdout" in nested:  # 2024-10-02+ execution resource
        properties = {**nested, "status": properties.get("status")}
    stdout = str(properties.get("stdout") or "")
    stderr = str(properties.get("stderr") or "")
    value = properties.get("result", properties.get("executionResult"))
    events, frames = split_stdout(stdout, nonce)
    if _is_failure(properties.get("status")):
        error = parse_traceback(stderr)
        events.append(error)
        exit_code = 124 if error.ename in _TIMEOUT_NAMES else 1
        return ParsedExecution(events, exit_code, True, error, frames)
    if stderr:
        first_result = next((i for i, e in enumerate(events) if isinstance(e, Result)), None)
        events.insert(
            len(events) if first_result is None else first_result, Stream("stderr", stderr)
        )
    framed_result = any(isinstance(e, Result) for e in events)
    images = _framed_images(events)
    for event in _result_events(value):
        if isinstance(event, Result) and framed_result:
            continue
        if isinstance(event, Display) and images & _framed_images([event]):
            continue
        events.append(event)
    return ParsedExecution(events, 0, False, None, frames)


def _streams(properties: dict[str, Any]) -> tuple[str, str]:
    nested = properties.get("result") if isinstance(properties.get("result"), dict) else None
    source = nested if nested is not None and "stdout" in nested else properties
    return str(source.get("stdout") or ""), str(source.get("stderr") or "")


_CUT_SLACK = 3
"""A stream this close to the requested length counts as cut (a multi-byte character
at the limit may leave it a little short)."""


def truncation_notices(
    properties: dict[str, Any], *, requested: int | None, end_frame_missing: bool
) -> list[str]:
    """Notices for output streams the service cut (``outputStreamsMaxLength``).

    A stream is cut when it is as long as the length asked for (``requested``), or —
    for stdout — when the cell's end frame (written last by the session, ``_once``)
    is missing. The service flags neither (aca-api.md §3).
    """
    stdout, stderr = _streams(properties)
    notices: list[str] = []
    advice = (
        "the rest of this cell's output is lost. Write large output to a file in "
        "/mnt/data and download it instead.\n"
    )
    for name, text in (("stdout", stdout), ("stderr", stderr)):
        if requested is not None and len(text) >= requested - _CUT_SLACK:
            notices.append(
                f"[kernel_bridge] {name} was truncated by the service at {len(text)} "
                f"characters (outputStreamsMaxLength); {advice}"
            )
        elif name == "stdout" and end_frame_missing and text:
            notices.append(
                f"[kernel_bridge] stdout ends early: the line the session writes after "
                f"the cell did not arrive, so the service cut stdout at {len(text)} "
                f"characters (outputStreamsMaxLength) or lost its end; {advice}"
            )
    return notices
