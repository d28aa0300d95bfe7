"""The local runtime, started before the kernel's own imports so the two overlap.

A kernel process spends most of its start-up importing ipykernel, IPython and
jupyter_client; the local runtime it then starts spends most of its own importing
IPython. Started one after the other, a cold kernel waits for both. ``python -m
kernel_bridge`` therefore calls :func:`start_early` first thing, and
:class:`~kernel_bridge.executors.local.LocalExecutor` adopts that process (:func:`adopt`)
when it would have started exactly the same one (same argv, environment and working
directory); otherwise it is killed and a fresh one is started as usual. A runtime that
is never adopted (prestart off, another executor chosen by a config file) ends by
itself when the kernel process exits: its stdin closes.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Sequence
from dataclasses import dataclass

from ...runtime import bootstrap_argv, bootstrap_payload

__all__ = ["EarlyRuntime", "adopt", "start_early"]


@dataclass
class EarlyRuntime:
    """A runtime subprocess started at kernel start-up, waiting to be adopted."""

    process: subprocess.Popen[bytes]
    argv: list[str]
    env: dict[str, str]
    cwd: str
    feeder: threading.Thread
    """Writes the bootstrap payload (larger than a pipe buffer) without blocking start-up."""


_EARLY: EarlyRuntime | None = None

# Options that change what the local executor would start, or whether it starts one at
# kernel start: with any of them the early start is skipped.
_SKIP_PREFIXES = ("--LocalExecutor.", "--BridgeKernel.prestart", "--config")


def start_early(kernel_argv: Sequence[str]) -> None:
    """Start the local runtime now, when the kernel's arguments say it will be wanted.

    Called by ``kernel_bridge.__main__`` before the kernel application is imported.
    Only for the plain local kernel (``--BridgeKernel.executor=local`` and no option
    that changes the runtime's command or environment).
    """
    global _EARLY
    args = list(kernel_argv)
    if "--BridgeKernel.executor=local" not in args:
        return
    if any(arg.startswith(_SKIP_PREFIXES) for arg in args):
        return
    argv = bootstrap_argv(sys.executable)
    try:
        process = subprocess.Popen(
            argv,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
    except OSError:
        return  # the executor will try again, and report the error in a cell
    feeder = threading.Thread(target=_feed, args=(process,), name="kb-early-runtime", daemon=True)
    feeder.start()
    _EARLY = EarlyRuntime(process, argv, dict(os.environ), os.getcwd(), feeder)


def _feed(process: subprocess.Popen[bytes]) -> None:
    assert process.stdin is not None
    with contextlib.suppress(OSError, ValueError):
        process.stdin.write(bootstrap_payload())
        process.stdin.flush()


def adopt(argv: Sequence[str], env: dict[str, str] | None) -> subprocess.Popen[bytes] | None:
    """Hand over the early runtime if it was started as ``argv``/``env`` in this cwd.

    ``env`` None means the kernel's own environment. Called once, by the local
    executor's first spawn; any early runtime that does not match is killed.
    """
    global _EARLY
    early, _EARLY = _EARLY, None
    if early is None:
        return None
    early.feeder.join()
    wanted_env = dict(os.environ) if env is None else env
    same = (
        list(argv) == early.argv
        and wanted_env == early.env
        and os.getcwd() == early.cwd
        and early.process.poll() is None
    )
    if same:
        return early.process
    with contextlib.suppress(OSError):
        os.killpg(early.process.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        early.process.wait(2)
    for stream in (early.process.stdin, early.process.stdout, early.process.stderr):
        if stream is not None:
            with contextlib.suppress(OSError):
                stream.close()
    return None
