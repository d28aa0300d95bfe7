"""The runtime that runs where the code runs, and helpers to start it.

The runtime itself is ``kb_runtime.py`` next to this file: one standard-library-only
Python 3.8+ program speaking the NDJSON protocol of docs/runtime-protocol.md. Executors
either run that file directly (``bootstrap_argv`` is not needed then) or, where no file
can be placed (a container, a remote session), run ``BOOTSTRAP_CODE`` with
``python3 -u -c`` and write ``bootstrap_payload()`` to its stdin first.
"""

from __future__ import annotations

import functools
import pathlib
import re

__all__ = [
    "BOOTSTRAP_CODE",
    "PROTOCOL_VERSION",
    "RUNTIME_PATH",
    "bootstrap_argv",
    "bootstrap_payload",
    "runtime_source",
]

RUNTIME_PATH: pathlib.Path = pathlib.Path(__file__).with_name("kb_runtime.py")
"""The runtime program (run it as ``python3 -u RUNTIME_PATH [--cwd DIR] [--linger]``)."""

BOOTSTRAP_CODE: str = (
    "import sys;n=int(sys.stdin.buffer.readline());"
    "exec(compile(sys.stdin.buffer.read(n),'kb_runtime.py','exec'))"
)
"""The ``python3 -u -c`` program that reads the runtime source from stdin and runs it."""


@functools.cache
def runtime_source() -> bytes:
    """Return the runtime's source bytes (read once, then cached)."""
    return RUNTIME_PATH.read_bytes()


def _protocol_version() -> int:
    """Read ``PROTOCOL_VERSION`` from the runtime's source, its one definition.

    The runtime is sent as source to where the cells run, so it cannot import anything
    of ours; the host reads the number from that same source instead of repeating it.
    """
    found = re.search(rb"^PROTOCOL_VERSION = (\d+)$", runtime_source(), re.MULTILINE)
    if found is None:  # a broken checkout, not a user error
        raise RuntimeError(f"{RUNTIME_PATH} does not define PROTOCOL_VERSION")
    return int(found.group(1))


PROTOCOL_VERSION: int = _protocol_version()
"""The protocol version the runtime announces in its ``ready`` message; the host's
channel refuses a runtime that announces another one."""


def bootstrap_argv(python: str = "python3", *options: str) -> list[str]:
    """Return the argv that starts the runtime through the bootstrap program.

    ``options`` are runtime options such as ``"--cwd", "/workspace"`` or ``"--linger"``.
    The process then expects ``bootstrap_payload()`` on its stdin before any request.
    """
    return [python, "-u", "-c", BOOTSTRAP_CODE, *options]


def bootstrap_payload() -> bytes:
    """Return what the bootstrap reads first: the source length line, then the source."""
    source = runtime_source()
    return str(len(source)).encode("ascii") + b"\n" + source
