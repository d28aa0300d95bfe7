"""Section 3: streaming latency, from a ``print`` in a running cell to the client."""

from __future__ import annotations

import re

from _env import (
    BRIDGE_ACA,
    BRIDGE_DOCKER,
    BRIDGE_LOCAL,
    IPYKERNEL_DOCKER,
    SYSTEM_LABELS,
    Workspace,
)
from _kernel import running
from _plan import Plan
from _report import Section, Table, Target, anchor_target, median, ms, p95

_STAMP = re.compile(r"@(\d+\.\d+)@")


def stream_cell(lines: int, flush: bool) -> str:
    """A cell printing ``lines`` lines, one every 0.1 s, each stamped with time.time()."""
    extra = ", flush=True" if flush else ""
    return (
        "import time\n"
        f"for _i in range({lines}):\n"
        f"    print(f'@{{time.time()!r}}@'{extra})\n"
        "    time.sleep(0.1)\n"
    )


def latencies(kernel: object, lines: int, flush: bool) -> list[float]:
    """Arrival time minus the stamped print time of every line of one cell."""
    got: list[float] = []

    def on_stream(text: str, arrived: float) -> None:
        got.extend(arrived - float(m.group(1)) for m in _STAMP.finditer(text))

    result = kernel.execute(stream_cell(lines, flush), on_stream=on_stream)  # type: ignore[attr-defined]
    if result.status != "ok" or len(got) != lines:
        raise RuntimeError(f"streaming cell: status {result.status}, {len(got)}/{lines} lines")
    return got


def run(ws: Workspace, plan: Plan) -> Section:
    """Measure section 3 and return its report."""
    section = Section(
        "3. Streaming latency",
        intro=(
            f"A cell prints {plan.stream_lines} lines, one every 0.1 s, each carrying "
            "`time.time()` at the print; the client subtracts it from `time.time()` when the "
            "stream message arrives (same machine, same clock; containers share the host "
            "clock). Two variants: a plain `print(...)` (what users write) and "
            "`print(..., flush=True)`. Systems interleaved cell by cell."
        ),
    )
    data: dict[tuple[str, bool], list[float]] = {}
    with running(ws.systems, warmup=2) as kernels:
        for flush in (False, True):
            for name, kernel in kernels.items():
                data[(name, flush)] = latencies(kernel, plan.stream_lines, flush)
    table = Table(["system", "print", "median", "p95", "max"])
    for (name, flush), values in data.items():
        table.rows.append(
            [
                SYSTEM_LABELS[name],
                "flush=True" if flush else "plain",
                ms(median(values)),
                ms(p95(values)),
                ms(max(values)),
            ]
        )
    section.tables.append(table)
    for name in (BRIDGE_LOCAL, BRIDGE_DOCKER):
        if name not in ws.systems:
            continue
        worst = p95(data[(name, False)])
        section.targets.append(
            Target(
                f"Streaming, {SYSTEM_LABELS[name]}: p95 of plain `print` to client",
                f"{ms(worst)} (median {ms(median(data[(name, False)]))}, "
                f"max {ms(max(data[(name, False)]))})",
                "≤ 50 ms",
                worst <= 0.050,
            )
        )
    if BRIDGE_DOCKER in ws.systems:
        anchor = data.get((IPYKERNEL_DOCKER, True))
        section.targets.append(
            anchor_target(
                "`print(flush=True)` line to client (median)",
                median(data[(BRIDGE_DOCKER, True)]),
                median(anchor) if anchor else None,
                1.1,
                ms,
            )
        )
    if BRIDGE_ACA in ws.systems:
        section.notes.append(
            "ACA has no streaming (the service answers when the execution ends), so its "
            "lines arrive together at the end of the cell; no target applies."
        )
    section.notes.append(
        "The local ipykernel batches plain prints for up to its `flush_interval` (0.2 s); "
        "that is the reference's own behaviour."
    )
    return section
