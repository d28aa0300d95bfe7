"""Section 4: a cell writing 10 MiB to stdout: time, and the kernel process's RSS."""

from __future__ import annotations

import threading

import psutil
from _env import (
    BRIDGE_ACA,
    BRIDGE_DOCKER,
    BRIDGE_LOCAL,
    IPYKERNEL,
    IPYKERNEL_DOCKER,
    SYSTEM_LABELS,
    Workspace,
)
from _kernel import Kernel, proc_status, running
from _plan import Plan
from _report import Section, Table, Target, anchor_target, median, mib, ms, ratio, secs

LINES = 104_858  # x 100 bytes = 10 MiB
VOLUME_CELL = (
    f"import sys\n_line = 'x' * 99 + '\\n'\nfor _ in range({LINES}):\n    sys.stdout.write(_line)\n"
)
TOTAL = LINES * 100
PNG_BYTES = 1_000_000
PNG_SETUP = (
    "import os\n"
    "try:\n"
    "    from IPython.display import display\n"
    "except ImportError:\n"
    "    pass  # the bridge's plain-Python runtime provides display()\n"
    "class _Png:\n"
    "    def _repr_png_(self):\n"
    "        return _png_data\n"
    f"_png_data = b'\\x89PNG\\r\\n\\x1a\\n' + os.urandom({PNG_BYTES - 8})\n"
)
PNG_CELL = "display(_Png())"
PNG_B64_CHARS = (PNG_BYTES + 2) // 3 * 4


class RssSampler:
    """Samples VmRSS of some processes every 10 ms in a thread; keeps the peak."""

    def __init__(self, pids: list[int]) -> None:
        self.pids = pids
        self.peak = dict.fromkeys(pids, 0)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        while not self._stop.is_set():
            for pid in self.pids:
                rss = proc_status(pid).get("VmRSS", 0)
                self.peak[pid] = max(self.peak[pid], rss)
            self._stop.wait(0.01)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def _runtime_pid(kernel: Kernel) -> int | None:
    """The local runtime subprocess of a bridge-local kernel (its only python child)."""
    try:
        children = psutil.Process(kernel.pid).children(recursive=True)
    except psutil.Error:
        return None
    for child in children:
        try:
            if "kb_runtime" in " ".join(child.cmdline()) or "python" in child.name():
                return child.pid
        except psutil.Error:
            continue
    return None


def _png_cells(kernels: dict[str, Kernel], plan: Plan) -> dict[str, list[float]]:
    """Time ``display`` of a 1 MB PNG per system, interleaved; check every image arrived."""
    for name, kernel in kernels.items():
        got = kernel.execute(PNG_SETUP)
        if got.status != "ok":
            raise RuntimeError(f"{name}: PNG set-up failed: {got.errors}")
    times: dict[str, list[float]] = {name: [] for name in kernels}
    for _ in range(plan.png_reps):
        for name, kernel in kernels.items():
            got = kernel.execute(PNG_CELL)
            # Older ipykernels end the base64 text with a newline.
            images = [r.get("image/png", "").rstrip("\n") for r in got.results]
            if got.status != "ok" or [len(i) for i in images] != [PNG_B64_CHARS]:
                raise RuntimeError(f"{name}: PNG cell gave {got.status}, {got.errors}")
            times[name].append(got.seconds)
    return times


def run(ws: Workspace, plan: Plan) -> Section:
    """Measure section 4 and return its report."""
    section = Section(
        "4. Output volume (10 MiB to stdout)",
        intro=(
            f"One cell writes {LINES} lines of 100 bytes (10 MiB) with `sys.stdout.write`; "
            "time from `execute` to `idle` with the client reading every stream message. "
            "RSS: `VmRSS` of the kernel process (the process the kernelspec starts) sampled "
            "every 10 ms during the cells; growth = peak - RSS before the first 10 MiB "
            f"cell. {plan.volume_reps} cells per system, interleaved."
        ),
    )
    times: dict[str, list[float]] = {name: [] for name in ws.systems}
    received: dict[str, int] = {}
    messages: dict[str, list[int]] = {name: [] for name in ws.systems}
    growth: dict[str, float] = {}
    runtime_growth: dict[str, float] = {}
    with running(ws.systems, warmup=2) as kernels:
        pids = {name: k.pid for name, k in kernels.items()}
        runtime = _runtime_pid(kernels[BRIDGE_LOCAL]) if BRIDGE_LOCAL in kernels else None
        watch = list(pids.values()) + ([runtime] if runtime else [])
        before = {pid: proc_status(pid).get("VmRSS", 0) for pid in watch}
        with RssSampler(watch) as sampler:
            for _ in range(plan.volume_reps):
                for name, kernel in kernels.items():
                    got = kernel.execute(VOLUME_CELL, timeout=600)
                    if got.status != "ok":
                        raise RuntimeError(f"{name}: 10 MiB cell failed: {got.errors}")
                    times[name].append(got.seconds)
                    received[name] = got.stream_bytes
                    messages[name].append(got.stream_msgs)
        for name, pid in pids.items():
            growth[name] = sampler.peak[pid] - before[pid]
        png_times = _png_cells(kernels, plan)
        if runtime:
            runtime_growth[BRIDGE_LOCAL] = sampler.peak[runtime] - before[runtime]
    ref = median(times[IPYKERNEL])
    table = Table(
        [
            "system",
            "ratio to local ipykernel",
            "time (median)",
            "bytes received",
            "stream messages (median)",
            "kernel RSS before",
            "kernel RSS growth (peak)",
        ]
    )
    for name, values in times.items():
        table.rows.append(
            [
                SYSTEM_LABELS[name],
                ratio(median(values), ref),
                secs(median(values)),
                f"{received[name]:,}",
                f"{median(messages[name]):.0f}",
                mib(before[pids[name]]),
                mib(growth[name]),
            ]
        )
    section.tables.append(table)
    if runtime_growth:
        section.notes.append(
            "Bridge local's runtime subprocess (where the code runs) grew by "
            f"{mib(runtime_growth[BRIDGE_LOCAL])} at peak."
        )
    if BRIDGE_ACA in times:
        section.notes.append(
            "ACA returns the whole output in one JSON response, so that kernel necessarily "
            "holds it; the RSS target applies to the streaming executors."
        )
    png_table = Table(["system (1 MB PNG display)", "ratio to local ipykernel", "median", "n"])
    png_ref = median(png_times[IPYKERNEL])
    for name, values in png_times.items():
        png_table.rows.append(
            [
                SYSTEM_LABELS[name],
                ratio(median(values), png_ref),
                ms(median(values)),
                str(len(values)),
            ]
        )
    section.tables.append(png_table)
    if BRIDGE_DOCKER in times:
        anchor = times.get(IPYKERNEL_DOCKER)
        section.targets.append(
            anchor_target(
                "10 MiB of stdout, to idle",
                median(times[BRIDGE_DOCKER]),
                median(anchor) if anchor else None,
                1.0,
                secs,
            )
        )
        anchor = png_times.get(IPYKERNEL_DOCKER)
        section.targets.append(
            anchor_target(
                "1 MB PNG display, to idle",
                median(png_times[BRIDGE_DOCKER]),
                median(anchor) if anchor else None,
                1.2,
                ms,
            )
        )
        section.targets.append(
            Target(
                "10 MiB output, bridge docker: kernel RSS growth (issue 15)",
                mib(growth[BRIDGE_DOCKER]),
                "≤ 2 MiB",
                growth[BRIDGE_DOCKER] <= 2 * 2**20,
            )
        )
    for name in (BRIDGE_LOCAL, BRIDGE_DOCKER):
        if name not in times:
            continue
        t = median(times[name])
        complete = received[name] >= TOTAL
        section.targets.append(
            Target(
                f"10 MiB output, {SYSTEM_LABELS[name]}: time vs local ipykernel",
                f"{ratio(t, ref)} ({secs(t)} vs {secs(ref)})"
                + ("" if complete else f"; only {received[name]:,} bytes arrived"),
                "≤ 2.00x, all bytes",
                t <= 2 * ref and complete,
            )
        )
        section.targets.append(
            Target(
                f"10 MiB output, {SYSTEM_LABELS[name]}: kernel RSS growth",
                mib(growth[name]),
                "< 10 MiB (no copy of the whole output)",
                growth[name] < TOTAL,
            )
        )
    return section
