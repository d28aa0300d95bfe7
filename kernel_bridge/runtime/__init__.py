"""The runtime that runs where the code runs, and helpers to start it.

The runtime itself is ``kb_runtime.py`` next to this file: a standard-library-only
Python 3.8+ program speaking the NDJSON protocol of docs/runtime-protocol.md. It imports
``kb_library.py`` (also next to this file), the in-session library of rich output,
completion, inspection and comms that the ACA executor loads into its sessions too
(``library_source``). Executors either run ``kb_runtime.py`` directly (it finds the
library next to itself) or, where no file can be placed (a container, a remote session),
run ``BOOTSTRAP_CODE`` with ``python3 -u -c`` and write ``bootstrap_payload()`` (both
sources) to its stdin first.
"""

from __future__ import annotations

import functools
import pathlib
import re

__all__ = [
    "BOOTSTRAP_CODE",
    "LIBRARY_PATH",
    "PROTOCOL_VERSION",
    "RUNTIME_PATH",
    "bootstrap_argv",
    "bootstrap_payload",
    "library_source",
    "runtime_source",
]

RUNTIME_PATH: pathlib.Path = pathlib.Path(__file__).with_name("kb_runtime.py")
"""The runtime program (run it as ``python3 -u RUNTIME_PATH [--cwd DIR] [--linger]``)."""

LIBRARY_PATH: pathlib.Path = pathlib.Path(__file__).with_name("kb_library.py")
"""The in-session library the runtime imports as ``kb_library`` (and ACA sessions load)."""

BOOTSTRAP_CODE: str = (
    "import sys,types;i=sys.stdin.buffer;m=types.ModuleType('kb_library');"
    "m.__file__='kb_library.py';sys.modules['kb_library']=m;"
    "exec(compile(i.read(int(i.readline())),'kb_library.py','exec'),m.__dict__);"
    "exec(compile(i.read(int(i.readline())),'kb_runtime.py','exec'))"
)
"""The ``python3 -u -c`` program that reads the library and the runtime from stdin, the
library into ``sys.modules['kb_library']``, and runs the runtime."""


@functools.cache
def runtime_source() -> bytes:
    """Return the runtime's source bytes (read once, then cached)."""
    return RUNTIME_PATH.read_bytes()


@functools.cache
def library_source() -> bytes:
    """Return the in-session library's source bytes (read once, then cached).

    Called for the bootstrap payload and by the ACA executor's session setup.
    """
    return LIBRARY_PATH.read_bytes()


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
    """Return what the bootstrap reads first: for the library, then the runtime, a line
    with the source's length and the source."""
    parts = (library_source(), runtime_source())
    return b"".join(str(len(source)).encode("ascii") + b"\n" + source for source in parts)
