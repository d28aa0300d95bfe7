"""Section 7: one slider update's round trip (frontend comm_msg → change observed → echo).

What JupyterLab does when a slider is dragged: a ``comm_msg`` ``update`` on the shell
channel; an ``observe`` callback in the kernel's code reacts by setting another trait,
whose ``update`` comes back on IOPub. Timed from sending the comm_msg to the arrival of
that update, interleaved across a stock ipykernel, the bridge's local kernel, its
Docker kernel on the rich image with ipywidgets, and its ACA kernel through the emulator
(whose session runs on this Python, with ipywidgets). ACA has no channel back: the
comm_msg is delivered as a short execution in the session and the echo and the
observer's update come back in that execution's output, so its figure is one HTTP
execution round trip.
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any

from _env import BENCH_ENV, BRIDGE_ACA, BRIDGE_LOCAL, IPYKERNEL, SYSTEM_LABELS, Workspace, _install
from _kernel import Kernel, running
from _plan import Plan
from _report import Section, Table, attempt, median, ms, p95

WIDGETS_IMAGE = "kernel-bridge-test/rich:bookworm-3"
BRIDGE_DOCKER_WIDGETS = "bench-bridge-docker-widgets"
SETUP = (
    "import ipywidgets as w\n"
    "s = w.IntSlider(0, max=10**9)\n"
    "s.observe(lambda change: setattr(s, 'description', f'v{change.new}'), 'value')\n"
    "s.model_id"
)


def _round_trip(kernel: Kernel, comm_id: str, value: int, timeout: float = 30) -> float:
    """Send one frontend update; seconds until the observer's update comes back."""
    kc: Any = kernel.kc
    msg = kc.session.msg(
        "comm_msg",
        {
            "comm_id": comm_id,
            "data": {"method": "update", "state": {"value": value}, "buffer_paths": []},
        },
    )
    t0 = time.perf_counter()
    kc.session.send(kc.shell_channel.socket, msg)
    deadline = time.monotonic() + timeout
    while True:
        got = kc.get_iopub_msg(timeout=max(0.01, deadline - time.monotonic()))
        content = got["content"]
        if (
            got["msg_type"] == "comm_msg"
            and content.get("comm_id") == comm_id
            and content["data"].get("state", {}).get("description") == f"v{value}"
        ):
            return time.perf_counter() - t0


def run(ws: Workspace, plan: Plan) -> Section:
    """Measure the slider round trip per system."""
    intro = (__doc__ or "").split("\n\n", 1)[-1].strip()
    section = Section("7. Widgets: one slider update's round trip", intro=intro)
    systems = [IPYKERNEL, BRIDGE_LOCAL]
    labels = dict(SYSTEM_LABELS)
    if ws.docker:
        _install(
            [
                *(sys.executable, "-m", "kernel_bridge.cli", "install", "--prefix", str(ws.prefix)),
                *("--executor", "docker", "--image", WIDGETS_IMAGE),
                *("--name", BRIDGE_DOCKER_WIDGETS),
                "--kernel-arg=--DockerCommandLineCodeExecutor.environment=" + json.dumps(BENCH_ENV),
            ]
        )
        systems.append(BRIDGE_DOCKER_WIDGETS)
        labels[BRIDGE_DOCKER_WIDGETS] = "bridge docker (rich image + ipywidgets)"
    if ws.emulator is not None:
        systems.append(BRIDGE_ACA)
    times: dict[str, list[float]] = {name: [] for name in systems}
    with attempt(section, "slider round trips"), running(systems, warmup=plan.warmup_cells) as ks:
        comm_ids: dict[str, str] = {}
        for name, kernel in ks.items():
            got = kernel.execute(SETUP)
            if got.status != "ok" or not got.results:
                raise RuntimeError(f"{name}: the slider could not be made: {got.errors}")
            comm_ids[name] = str(got.results[-1]["text/plain"]).strip("'")
        for i in range(plan.cells):
            for name, kernel in ks.items():
                times[name].append(_round_trip(kernel, comm_ids[name], i + 1))
        table = Table(["system", "n", "median", "p95", "vs ipykernel (median)"])
        base = median(times[IPYKERNEL])
        for name in systems:
            values = times[name]
            table.rows.append(
                [
                    labels[name],
                    str(len(values)),
                    ms(median(values)),
                    ms(p95(values)),
                    f"+{ms(median(values) - base)}",
                ]
            )
        section.tables.append(table)
        if BRIDGE_ACA in systems:
            section.notes.append(
                "ACA: the emulator runs the session on this machine, so its figure is the "
                "bridge's cost (one execution over loopback HTTP); a real pool adds its "
                "network round trip and execution overhead (section 6) to each update."
            )
    return section
