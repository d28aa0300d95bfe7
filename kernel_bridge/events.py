"""The event vocabulary every executor speaks.

An executor turns "run this code" into a stream of these events; everything above it
(the session, the kernel, the AutoGen-compatible ``execute_code_blocks``) speaks only
these. The kernel maps them one to one onto IOPub messages::

    Stream       -> stream
    Display      -> display_data / update_display_data (update=True)
    Result       -> execute_result
    Error        -> error (and the error reply)
    ClearOutput  -> clear_output
    Page         -> a "page" payload of the execute reply (help text for ``obj?``)
    IOPubMessage -> the IOPub message it names (comm_open/comm_msg/comm_close of widgets,
                    or what the code sent with ``get_ipython().kernel.session.send``)
    StateLost    -> a stderr stream that says what was lost (the runtime died,
                    the remote session was replaced); not an error by itself
    Finished     -> nothing on IOPub; it ends every execution and carries the exit code

``Finished`` is always the last event of an execution and appears exactly once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, TypeAlias

__all__ = [
    "ClearOutput",
    "Display",
    "Error",
    "Event",
    "Finished",
    "IOPubMessage",
    "OutputEvent",
    "Page",
    "Result",
    "StateLost",
    "Stream",
]

MimeBundle: TypeAlias = dict[str, Any]


@dataclass(frozen=True)
class Stream:
    """Text written to stdout or stderr while the code runs, in the order it was written."""

    name: Literal["stdout", "stderr"]
    text: str


@dataclass(frozen=True)
class Display:
    """A rich output (``display()``, a figure); ``update`` re-renders ``display_id``."""

    data: MimeBundle
    metadata: dict[str, Any] = field(default_factory=dict)
    display_id: str | None = None
    update: bool = False


@dataclass(frozen=True)
class Result:
    """The value of the cell's last expression (always has ``text/plain``).

    ``value_json`` holds the value itself when it is a bool, int, float or None, for
    consumers (the ACA emulator) that report primitive results as JSON.
    """

    data: MimeBundle
    metadata: dict[str, Any] = field(default_factory=dict)
    value_json: Any = None


@dataclass(frozen=True)
class Error:
    """The code raised (or could not run); ``traceback`` is a list of lines, ANSI allowed."""

    ename: str
    evalue: str
    traceback: list[str] = field(default_factory=list)
    shown: bool = True
    """False: the failure was already reported as text (IPython's ``UsageError`` on
    stderr); it only names the failure in the reply, with no error output."""


@dataclass(frozen=True)
class ClearOutput:
    """Clear the cell's output; with ``wait`` only when the next output arrives."""

    wait: bool = False


@dataclass(frozen=True)
class Page:
    """Help text for the frontend's pager (``obj?``); ``start`` is the first line to show."""

    data: MimeBundle
    start: int = 0


@dataclass(frozen=True)
class StateLost:
    """The interpreter state behind the session is gone; ``reason`` says why, for people."""

    reason: str


@dataclass(frozen=True)
class IOPubMessage:
    """A message the code addressed to IOPub itself: comm traffic, ``kernel.session.send``.

    ``parent_id`` names the Jupyter request it answers (the msg_id the kernel gave the
    runtime), or None for the current one. Comm messages may also arrive between cells
    (a widget updated by a background thread).
    """

    msg_type: str
    content: dict[str, Any]
    metadata: dict[str, Any] = field(default_factory=dict)
    buffers: tuple[bytes, ...] = ()
    parent_id: str | None = None


@dataclass(frozen=True)
class Finished:
    """The last event of every execution.

    ``exit_code`` follows AutoGen's executors: 0 success, 1 an error, 124 a timeout,
    a shell block's own exit status otherwise.
    """

    exit_code: int

    @property
    def ok(self) -> bool:
        """True when the execution succeeded."""
        return self.exit_code == 0


OutputEvent: TypeAlias = (
    Stream | Display | Result | Error | ClearOutput | Page | StateLost | IOPubMessage
)
Event: TypeAlias = OutputEvent | Finished
