"""``kernel-bridge provenance NOTEBOOK``: print, per cell, where its outputs were produced.

Reads the ``kernel_bridge`` entries the kernel put in the outputs' metadata and the
executor record in ``metadata.language_info.kernel_bridge`` (see
kernel_bridge/provenance.py). Needs nothing but the notebook file.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from kernel_bridge.provenance import PROVENANCE_KEY

__all__ = ["add_arguments", "cell_provenance", "describe_place", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Declare the options; called by kernel_bridge.cli before parsing."""
    parser.description = (
        "Print, for each code cell of a notebook run with kernel_bridge, where its outputs "
        "were produced: executor, image id or pool host, Python version, session start."
    )
    parser.add_argument("notebook", metavar="NOTEBOOK", help="an .ipynb file")
    parser.add_argument("--json", action="store_true", help="print one JSON document instead")


def describe_place(entry: dict[str, Any]) -> str:
    """One line for people from a provenance entry (an output's or the notebook's)."""
    kind = entry.get("executor", "?")
    parts = [str(kind)]
    if entry.get("image"):
        image = str(entry["image"])
        if entry.get("image_id"):
            image += f" ({entry['image_id']})"
        parts.append(f"image {image}")
    for digest in entry.get("repo_digests") or []:
        parts.append(f"digest {digest}")
    for name in ("mem_limit", "cpus", "network_mode", "mount_notebook_dir"):
        if entry.get(name):
            parts.append(f"{name} {entry[name]}")
    if entry.get("pool_host"):
        parts.append(f"pool {entry['pool_host']}")
    if entry.get("python"):
        parts.append(f"python {entry['python']}")
    if entry.get("session_started"):
        parts.append(f"session started {entry['session_started']}")
    return ", ".join(parts)


def cell_provenance(notebook: dict[str, Any]) -> list[dict[str, Any]]:
    """Per code cell: its index, execution count and the distinct provenance entries."""
    cells: list[dict[str, Any]] = []
    for index, cell in enumerate(notebook.get("cells", []), start=1):
        if cell.get("cell_type") != "code":
            continue
        places: list[dict[str, Any]] = []
        elapsed = 0.0
        for output in cell.get("outputs", []):
            entry = (output.get("metadata") or {}).get(PROVENANCE_KEY)
            if not isinstance(entry, dict):
                continue
            elapsed = max(elapsed, float(entry.get("cell_elapsed_s") or 0.0))
            place = {k: v for k, v in entry.items() if k not in ("cell_elapsed_s", "cell_started")}
            if place not in places:
                places.append(place)
        cells.append(
            {
                "cell": index,
                "execution_count": cell.get("execution_count"),
                "places": places,
                "elapsed_s": elapsed if places else None,
            }
        )
    return cells


def run(args: argparse.Namespace) -> int:
    """Read the notebook and print where each cell ran; return the exit code."""
    path = Path(args.notebook)
    try:
        notebook = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        print(f"kernel-bridge provenance: error: cannot read {path}: {exc}", file=sys.stderr)
        return 1
    record = (notebook.get("metadata", {}).get("language_info") or {}).get(PROVENANCE_KEY)
    cells = cell_provenance(notebook)
    if args.json:
        print(json.dumps({"notebook": record, "cells": cells}, indent=1))
        return 0
    if record:
        print(f"kernel: {describe_place(record)}")
    else:
        print("kernel: no kernel_bridge record in the notebook's metadata")
    for cell in cells:
        count = cell["execution_count"]
        label = f"cell {cell['cell']}" + (f" [{count}]" if count is not None else "")
        if not cell["places"]:
            print(f"{label}: no rich output or result recorded (streams and errors carry none)")
            continue
        where = " | ".join(describe_place(p) for p in cell["places"])
        print(f"{label}: {where}; {cell['elapsed_s']:.3f} s into the cell")
    return 0
