"""``kernel-bridge remove NAME``: remove a kernel_bridge kernelspec (and only those)."""

from __future__ import annotations

import argparse
import sys

from kernel_bridge.errors import ConfigurationError
from kernel_bridge.kernelspecs import remove_kernelspec

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Declare the remove arguments; called by kernel_bridge.cli before parsing."""
    parser.description = (
        "Remove an installed kernel_bridge kernelspec. Kernelspecs of other kernels are "
        "refused; use 'jupyter kernelspec remove' for those."
    )
    parser.add_argument(
        "name", metavar="NAME", help="the kernelspec's name (see 'kernel-bridge list')"
    )


def run(args: argparse.Namespace) -> int:
    """Remove the spec; return 0, or 1 when it is missing or not a kernel_bridge spec."""
    try:
        path = remove_kernelspec(args.name)
    except LookupError:
        print(
            f"kernel-bridge remove: error: no kernelspec named {args.name!r}; "
            "see 'kernel-bridge list'",
            file=sys.stderr,
        )
        return 1
    except ConfigurationError as exc:
        print(f"kernel-bridge remove: error: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(
            f"kernel-bridge remove: error: could not remove {args.name!r}: {exc}", file=sys.stderr
        )
        return 1
    print(f"Removed kernelspec {args.name.lower()} from {path}")
    return 0
