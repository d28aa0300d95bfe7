"""Reading ``%bridge`` lines: which lines of a cell are magics, and their arguments.

Rule for a cell (see docs/magics.md): ``%bridge`` lines come first (blank and comment
lines may sit between them); the rest of the cell is code and runs after them, on the
session the magics left. A ``%bridge`` line after code is refused, and nothing runs.
"""

from __future__ import annotations

import argparse
import re
import shlex
from dataclasses import dataclass
from typing import NoReturn

from ..errors import MagicUsageError
from ..executors.registry import executor_kinds

__all__ = ["HelpRequested", "MagicUsageError", "SplitCell", "parse_line", "split_cell"]

PROG = "%bridge"
_MAGIC_RE = re.compile(r"^%bridge(\s|$)")


class HelpRequested(Exception):
    """``--help`` was asked for; the exception's text is the help to show."""


@dataclass(frozen=True)
class SplitCell:
    """A cell cut into its leading ``%bridge`` lines and the code that follows them."""

    magics: list[str]
    code: str


def split_cell(cell: str) -> SplitCell:
    """Cut ``cell`` into its leading ``%bridge`` lines and the rest; called per execute.

    Raises :class:`MagicUsageError` when a ``%bridge`` line follows code.
    """
    lines = cell.splitlines(keepends=True)
    magics: list[str] = []
    index = 0
    while index < len(lines):
        stripped = lines[index].strip()
        if _MAGIC_RE.match(stripped):
            magics.append(stripped)
        elif stripped and not stripped.startswith("#"):
            break
        index += 1
    rest = lines[index:]
    for number, line in enumerate(rest, start=index + 1):
        if _MAGIC_RE.match(line):
            raise MagicUsageError(
                f"line {number}: %bridge lines must come first in a cell, before any code; "
                "move it to the top of the cell (or into a cell of its own). Nothing in this "
                "cell was run."
            )
    if not magics:
        return SplitCell([], cell)
    code = "".join(rest)
    return SplitCell(magics, code if code.strip() else "")


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser that raises instead of printing and exiting (the kernel must live)."""

    def error(self, message: str) -> NoReturn:
        """Called by argparse on bad arguments: raise, with the usage line."""
        raise MagicUsageError(f"{self.prog}: {message}\n{self.format_usage().rstrip()}")

    def exit(self, status: int = 0, message: str | None = None) -> NoReturn:
        """Called by argparse to end the program: raise instead (the kernel keeps running)."""
        raise MagicUsageError(message or f"{self.prog}: invalid arguments")

    def print_help(self, file: object = None) -> None:
        """Called by ``--help``: hand the help text to the kernel to show in the cell."""
        raise HelpRequested(self.format_help())


def _parser() -> _Parser:
    parser = _Parser(
        prog=PROG,
        description="Talk to kernel_bridge itself, before code is sent to the executor. "
        "Without a command: info.",
        epilog="Run '%bridge COMMAND --help' for a command's options.",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.add_parser(
        "info",
        help="where this notebook's code runs",
        description="Show the executor, image (and its id) or pool host, session age, limits, "
        "injected functions and mounts. No token or session identifier is ever shown.",
    )
    for name, direction in (
        ("upload", "notebook's folder -> session"),
        ("download", "session -> notebook's folder"),
    ):
        sub = commands.add_parser(
            name,
            help=f"copy files or folders, {direction}",
            description=f"Copy files or folders, {direction}. Names are relative to the "
            "notebook's folder (the kernel's working directory) and to the session's working "
            "directory; names that leave either are refused, and symbolic links are not "
            "followed.",
        )
        sub.add_argument("paths", nargs="+", metavar="PATH")
    use = commands.add_parser(
        "use",
        help="switch this notebook to another executor",
        description="Start a new session on another executor. State (variables, imports) "
        "does not carry over; the functions are injected again. Without EXECUTOR: list the "
        "executors.",
    )
    use.add_argument(
        "executor",
        nargs="?",
        choices=executor_kinds(),
        metavar="EXECUTOR",
        help=f"one of: {', '.join(executor_kinds())}",
    )
    use.add_argument("--image", help="docker: the image to run")
    use.add_argument("--memory", help="docker: memory limit, e.g. 512m or 2g")
    use.add_argument("--cpus", type=float, help="docker: CPU limit, e.g. 1.5")
    use.add_argument("--network", help="docker: network mode, e.g. none")
    use.add_argument(
        "--mount-notebook-dir",
        action="store_true",
        default=None,
        help="docker: mount the notebook's folder read-write at /workspace",
    )
    use.add_argument("--python", help="local: interpreter that runs the cells")
    use.add_argument("--endpoint", help="aca: the session pool's management endpoint")
    commands.add_parser(
        "restart",
        help="a fresh session on the same executor",
        description="Replace the session by a fresh one on the same executor: state is lost, "
        "the functions are injected again.",
    )
    return parser


_USE_OPTIONS: dict[str, tuple[str, str]] = {
    # option -> (executor kind, the executor's trait)
    "image": ("docker", "image"),
    "memory": ("docker", "mem_limit"),
    "cpus": ("docker", "cpus"),
    "network": ("docker", "network_mode"),
    "mount_notebook_dir": ("docker", "mount_notebook_dir"),
    "python": ("local", "python"),
    "endpoint": ("aca", "pool_management_endpoint"),
}


def use_overrides(args: argparse.Namespace) -> dict[str, object]:
    """The executor traits given on a ``%bridge use`` line; refuse options of other kinds."""
    overrides: dict[str, object] = {}
    for option, (kind, trait) in _USE_OPTIONS.items():
        value = getattr(args, option)
        if value is None:
            continue
        if kind != args.executor:
            flag = "--" + option.replace("_", "-")
            raise MagicUsageError(
                f"{PROG} use: {flag} applies to the {kind} executor, not to {args.executor}"
            )
        overrides[trait] = value
    return overrides


def parse_line(line: str) -> argparse.Namespace:
    """Parse one ``%bridge ...`` line; raise MagicUsageError or HelpRequested."""
    try:
        words = shlex.split(line)
    except ValueError as exc:
        raise MagicUsageError(f"{PROG}: cannot read the line ({exc}); check its quotes") from None
    args = _parser().parse_args(words[1:])
    if args.command is None:
        args.command = "info"
    return args
