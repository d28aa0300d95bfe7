"""Section 5: 8 Docker kernels running a notebook at once (nbclient) vs one alone."""

from __future__ import annotations

import asyncio
import os
import time

import nbformat
from _env import BRIDGE_DOCKER, IPYKERNEL, SYSTEM_LABELS, Workspace
from _plan import Plan
from _report import Section, Table, median, ratio, secs
from nbclient import NotebookClient

PARALLEL = 8
CELLS = [
    "import math, os, sys, time",
    "total = sum(i * i for i in range(200_000))\ntotal",
    "for i in range(5):\n    print('line', i)",
    "values = [math.sqrt(i) for i in range(10_000)]\nlen(values)",
    "state = {'total': total, 'n': len(values)}\nstate",
]


def notebook() -> nbformat.NotebookNode:
    """The small notebook every run executes."""
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(src) for src in CELLS]
    return nb


async def _run_one(kernel_name: str) -> float:
    nb = notebook()
    client = NotebookClient(nb, kernel_name=kernel_name, timeout=300, startup_timeout=300)
    t0 = time.perf_counter()
    await client.async_execute()
    elapsed = time.perf_counter() - t0
    last = nb.cells[-1].outputs
    if not last or "total" not in str(last[0].get("data", {})):
        raise RuntimeError(f"{kernel_name}: notebook ran without the expected last output")
    return elapsed


async def _run_many(kernel_name: str, n: int) -> tuple[float, list[float]]:
    t0 = time.perf_counter()
    each = await asyncio.gather(*(_run_one(kernel_name) for _ in range(n)))
    return time.perf_counter() - t0, list(each)


def run(ws: Workspace, plan: Plan) -> Section:
    """Measure section 5 and return its report."""
    section = Section(
        "5. Concurrency: 8 notebooks at once",
        intro=(
            f"nbclient `NotebookClient.async_execute()` of a {len(CELLS)}-cell notebook, "
            "including kernel start and shutdown: one notebook alone "
            f"({plan.notebooks_single} runs) vs {PARALLEL} at once (asyncio.gather, "
            f"{plan.notebooks_parallel_reps} run(s)). Local ipykernel as the reference."
        ),
    )
    systems = [s for s in (IPYKERNEL, BRIDGE_DOCKER) if s in ws.systems]
    single: dict[str, list[float]] = {s: [] for s in systems}
    walls: dict[str, list[float]] = {s: [] for s in systems}
    each: dict[str, list[float]] = {s: [] for s in systems}
    for name in systems:  # untimed warm-up
        asyncio.run(_run_one(name))
    for _ in range(plan.notebooks_single):
        for name in systems:
            single[name].append(asyncio.run(_run_one(name)))
    for _ in range(plan.notebooks_parallel_reps):
        for name in systems:
            wall, times = asyncio.run(_run_many(name, PARALLEL))
            walls[name].append(wall)
            each[name].extend(times)
    table = Table(
        [
            "system",
            f"{PARALLEL} at once: wall / one alone",
            "one alone",
            f"{PARALLEL} at once (wall)",
            f"per notebook in the {PARALLEL} (median)",
            "throughput vs one at a time",
        ]
    )
    for name in systems:
        one = median(single[name])
        wall = median(walls[name])
        table.rows.append(
            [
                SYSTEM_LABELS[name],
                ratio(wall, one),
                secs(one),
                secs(wall),
                secs(median(each[name])),
                ratio(PARALLEL * one, wall),
            ]
        )
    section.tables.append(table)
    section.notes.append(
        f"On {os.cpu_count()} cores the {PARALLEL} kernel processes (and, for "
        "Docker, containers) compete for CPU; no target is set by the issue."
    )
    return section
