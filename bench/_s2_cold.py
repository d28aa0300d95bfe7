"""Section 2: cold start, from kernel launch to the first cell's result."""

from __future__ import annotations

import time

from _env import BRIDGE_DOCKER, BRIDGE_LOCAL, IPYKERNEL, IPYKERNEL_DOCKER, SYSTEM_LABELS, Workspace
from _kernel import Kernel
from _plan import Plan
from _report import Section, Table, Target, anchor_target, median, ratio, secs


def _one(name: str) -> tuple[float, float, float]:
    """Launch, first result of ``1 + 1``, graceful shutdown: (ready, first result, stop)."""
    kernel = Kernel(name)
    t0 = time.perf_counter()
    try:
        kernel.start()
        ready = time.perf_counter() - t0
        kernel.check("1 + 1", "2")
        first = time.perf_counter() - t0
    finally:
        stop = kernel.stop()
    return ready, first, stop


def run(ws: Workspace, plan: Plan) -> Section:
    """Measure section 2 and return its report."""
    section = Section(
        "2. Cold start",
        intro=(
            "`KernelManager.start_kernel()` → `wait_for_ready()` (kernel_info answered) → "
            "first `execute('1 + 1')` result, then a graceful `shutdown_kernel()`; "
            f"{plan.cold_starts} launches per system, interleaved. The local and Docker "
            "bridge kernels start their runtime in the background as soon as the kernel runs "
            "(`prestart`), the ACA kernel its session at the first cell; 'first result' "
            "includes either. Docker image cached."
        ),
    )
    data: dict[str, list[tuple[float, float, float]]] = {name: [] for name in ws.systems}
    for name in ws.systems:  # one untimed launch each: imports and image in the page cache
        _one(name)
    for _ in range(plan.cold_starts):
        for name in ws.systems:
            data[name].append(_one(name))
    ref = median([d[1] for d in data[IPYKERNEL]])
    table = Table(
        [
            "system",
            "ratio to local ipykernel",
            "first result (median)",
            "min",
            "max",
            "kernel_info ready",
            "shutdown",
        ]
    )
    for name, runs in data.items():
        firsts = [r[1] for r in runs]
        table.rows.append(
            [
                SYSTEM_LABELS[name],
                ratio(median(firsts), ref),
                secs(median(firsts)),
                secs(min(firsts)),
                secs(max(firsts)),
                secs(median([r[0] for r in runs])),
                secs(median([r[2] for r in runs])),
            ]
        )
    section.tables.append(table)
    if BRIDGE_DOCKER in data:
        docker = median([r[1] for r in data[BRIDGE_DOCKER]])
        section.targets.append(
            Target("Docker cold start to first result", secs(docker), "≤ 1.50 s", docker <= 1.5)
        )
    else:
        section.targets.append(
            Target("Docker cold start to first result", "no Docker", "≤ 1.50 s", None)
        )
    if BRIDGE_DOCKER in data:
        anchor = data.get(IPYKERNEL_DOCKER)
        section.targets.append(
            anchor_target(
                "Cold start to first result",
                median([r[1] for r in data[BRIDGE_DOCKER]]),
                median([r[1] for r in anchor]) if anchor else None,
                1.0,
                secs,
            )
        )
    local = median([r[1] for r in data[BRIDGE_LOCAL]])
    section.targets.append(
        Target(
            "Local bridge cold start to first result vs local ipykernel",
            f"{ratio(local, ref)} ({secs(local)} vs {secs(ref)})",
            "≤ 1.10x",
            local <= 1.1 * ref,
        )
    )
    return section
