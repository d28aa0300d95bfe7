"""``%bridge`` line magics, run by the kernel itself before any code is sent.

Because they never reach the executor they work on every executor, with or without
IPython where the code runs. Commands: ``info`` (the default), ``upload``,
``download``, ``use``, ``restart``; each has ``--help``. See docs/magics.md.

The kernel calls :func:`split_cell` on every cell and :func:`run_magic` for each
leading ``%bridge`` line; a magic never raises: what goes wrong becomes an ``Error``.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

from ..errors import BridgeError
from ..events import Error, OutputEvent, Stream
from . import _files, _info, _switch
from ._host import MagicHost
from ._parse import HelpRequested, MagicUsageError, SplitCell, parse_line, split_cell, use_overrides

__all__ = ["MagicHost", "MagicUsageError", "SplitCell", "run_magic", "split_cell", "usage_error"]

log = logging.getLogger(__name__)


def usage_error(text: str) -> Error:
    """The error event for a ``%bridge`` line that could not be run."""
    return Error("BridgeMagicError", text, [f"BridgeMagicError: {text}"])


async def run_magic(host: MagicHost, line: str) -> AsyncIterator[OutputEvent]:
    """Run one ``%bridge`` line and yield its output; an ``Error`` event when it fails."""
    try:
        args = parse_line(line)
        if args.command == "info":
            yield _info.info_display(await _info.describe(host))
        elif args.command == "upload":
            async for event in _files.upload(host, list(args.paths)):
                yield event
        elif args.command == "download":
            async for event in _files.download(host, list(args.paths)):
                yield event
        elif args.command == "use":
            if args.executor is None:
                for event in _switch.list_executors(host):
                    yield event
            else:
                async for event in _switch.use(host, args.executor, use_overrides(args)):
                    yield event
        elif args.command == "restart":
            async for event in _switch.restart(host):
                yield event
    except HelpRequested as exc:
        yield Stream("stdout", str(exc))
    except MagicUsageError as exc:
        yield usage_error(str(exc))
    except BridgeError as exc:
        yield usage_error(f"{line.split()[1] if len(line.split()) > 1 else 'info'}: {exc}")
    except Exception as exc:  # a bug of ours must not kill the kernel
        log.exception("%%bridge failed")
        yield usage_error(f"{line!r} failed: {type(exc).__name__}: {exc}")
