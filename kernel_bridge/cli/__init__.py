"""The ``kernel-bridge`` command line: install, list and remove kernelspecs, and more.

Subcommands are registered in ``SUBCOMMANDS``, a table of (name, module, help). Each module
exposes ``add_arguments(parser: argparse.ArgumentParser) -> None`` and
``run(args: argparse.Namespace) -> int`` and is imported only when its subcommand runs, so
``kernel-bridge --help`` stays fast and a subcommand whose module (or one of its optional
dependencies) is missing fails with a clean message instead of a traceback.

Exit codes: 0 success, 1 the operation failed (e.g. nothing to remove), 2 bad usage or
invalid options (nothing was written).
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import ModuleType
from typing import cast

from kernel_bridge._version import __version__

__all__ = ["PROG", "SUBCOMMANDS", "Subcommand", "main"]

PROG = "kernel-bridge"


@dataclass(frozen=True)
class Subcommand:
    """One entry of the subcommand table: its name, its module and its one-line help."""

    name: str
    module: str
    help: str


#: The subcommands, in the order ``--help`` lists them.
SUBCOMMANDS: tuple[Subcommand, ...] = (
    Subcommand("install", "kernel_bridge.cli._install", "install a kernelspec for an executor"),
    Subcommand("list", "kernel_bridge.cli._list", "list the installed kernel_bridge kernelspecs"),
    Subcommand("remove", "kernel_bridge.cli._remove", "remove a kernel_bridge kernelspec"),
    Subcommand("gc", "kernel_bridge.cli._gc", "remove what dead kernels left behind"),
    Subcommand(
        "aca-emulator",
        "kernel_bridge.cli._aca_emulator",
        "serve the ACA dynamic-sessions emulator locally",
    ),
    Subcommand(
        "provenance",
        "kernel_bridge.cli._provenance",
        "print where each cell of an executed notebook ran",
    ),
)

_OPTIONAL_EXTRAS = {
    "docker": "docker",
    "httpx": "aca",
    "azure": "aca",
    "starlette": "emulator",
    "uvicorn": "emulator",
    "multipart": "emulator",
}


def _top_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Manage kernel_bridge Jupyter kernelspecs (local, Docker or ACA executors).",
        epilog=f"Run '{PROG} COMMAND --help' for a command's options.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_argument_group("commands")
    width = max(len(s.name) for s in SUBCOMMANDS)
    commands.description = "\n".join(f"{s.name:<{width}}  {s.help}" for s in SUBCOMMANDS)
    return parser


def _load(command: Subcommand) -> ModuleType | str:
    """Import a subcommand's module, or return the message explaining why it cannot be."""
    try:
        return importlib.import_module(command.module)
    except ModuleNotFoundError as exc:
        missing = exc.name or ""
        if command.module == missing or command.module.startswith(missing + "."):
            return f"the '{command.name}' command is not available in this installation"
        top = missing.split(".")[0]
        extra = _OPTIONAL_EXTRAS.get(top)
        hint = (
            f"install it with: pip install 'kernel_bridge[{extra}]'"
            if extra
            else f"install the '{top}' package"
        )
        return f"the '{command.name}' command needs the Python package '{top}'; {hint}"


def _run(command: Subcommand, argv: list[str]) -> int:
    module = _load(command)
    if isinstance(module, str):
        print(f"{PROG} {command.name}: error: {module}", file=sys.stderr)
        return 1
    add_arguments = getattr(module, "add_arguments", None)
    run = getattr(module, "run", None)
    if not callable(add_arguments) or not callable(run):
        print(
            f"{PROG} {command.name}: error: {command.module} lacks add_arguments() or run()",
            file=sys.stderr,
        )
        return 1
    parser = argparse.ArgumentParser(prog=f"{PROG} {command.name}", description=command.help)
    add_arguments(parser)
    args = parser.parse_args(argv)
    return int(cast(Callable[[argparse.Namespace], int], run)(args))


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``kernel-bridge`` command line and return its exit code.

    Called by the ``kernel-bridge`` console script and ``python -m kernel_bridge.cli``;
    tests call it in-process. argparse's own exits (--help, usage errors) become return
    values too.
    """
    args = list(sys.argv[1:] if argv is None else argv)
    parser = _top_parser()
    try:
        if not args or args[0].startswith("-"):
            parser.parse_args(args)  # --help / --version exit; anything else is an error
            parser.print_help(sys.stderr)
            return 2
        by_name = {s.name: s for s in SUBCOMMANDS}
        command = by_name.get(args[0])
        if command is None:
            parser.error(f"unknown command {args[0]!r}; choose one of: {', '.join(by_name)}")
        return _run(command, args[1:])
    except SystemExit as exc:
        code = exc.code
        return code if isinstance(code, int) else (0 if code is None else 1)
