"""``kernel-bridge list``: show the kernel_bridge kernelspecs Jupyter can see."""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict

from kernel_bridge.executors.registry import executor_kinds
from kernel_bridge.kernelspecs import find_bridge_kernelspecs

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Declare the list options; called by kernel_bridge.cli before parsing."""
    parser.description = (
        "List the installed kernelspecs that run kernel_bridge (other kernels are not shown). "
        "Jupyter's search path applies, including JUPYTER_PATH."
    )
    parser.add_argument("--json", action="store_true", help="print a JSON list instead of a table")


def run(args: argparse.Namespace) -> int:
    """Print the specs (name, executor, display name, path); return 0.

    The table also names the specs whose executor no installed plug-in provides (their
    kernels would only report that in every cell).
    """
    specs = find_bridge_kernelspecs()
    if args.json:
        print(json.dumps([asdict(s) for s in specs], indent=2))
        return 0
    if not specs:
        print("No kernel_bridge kernelspecs installed; add one with 'kernel-bridge install'.")
        return 0
    rows = [("NAME", "EXECUTOR", "DISPLAY NAME", "PATH")]
    rows += [(s.name, s.executor, s.display_name, s.path) for s in specs]
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    for row in rows:
        print(
            "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=False)) + "  " + row[3]
        )
    kinds = executor_kinds()
    for spec in specs:
        if spec.executor not in kinds:
            print(
                f"{spec.name}: no installed executor plug-in provides {spec.executor!r} "
                f"(installed: {', '.join(kinds)}); install its package or remove the spec"
            )
    return 0
