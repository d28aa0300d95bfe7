"""Section 1: per-cell round trip on warm kernels, and per-block execute_code_blocks."""

from __future__ import annotations

import asyncio
import os
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from _env import (
    BRIDGE_ACA,
    BRIDGE_DOCKER,
    CONTAINER_PREFIX,
    IPYKERNEL,
    IPYKERNEL_DOCKER,
    MINIMAL_IMAGE,
    SYSTEM_LABELS,
    Workspace,
)
from _kernel import running
from _plan import Plan
from _report import Section, Table, Target, anchor_target, attempt, median, ms, p95, ratio

TRIVIAL_CELL = "x = 1"
BLOCK = "x = 1\nprint(x)"
AUTOGEN_DOCKER_LANGUAGE = "python3"
"""AutoGen's executor runs ``python`` for "python" blocks; the minimal image has only ``python3``
(AutoGen's executor uses any language starting with "python" as the command, as documented)."""


def cell_round_trips(ws: Workspace, plan: Plan) -> dict[str, list[float]]:
    """Interleaved round trips of ``TRIVIAL_CELL`` on one warm kernel per system."""
    times: dict[str, list[float]] = {name: [] for name in ws.systems}
    with running(ws.systems, warmup=plan.warmup_cells) as kernels:
        for _ in range(plan.cells):
            for name, kernel in kernels.items():
                got = kernel.execute(TRIVIAL_CELL)
                if got.status != "ok":
                    raise RuntimeError(f"{name}: {TRIVIAL_CELL!r} failed: {got.errors}")
                times[name].append(got.seconds)
    return times


async def _interleave(
    runners: dict[str, Callable[[], Awaitable[Any]]], n: int, warmup: int
) -> dict[str, list[float]]:
    """Call each runner ``warmup`` times, then ``n`` times interleaved, timing each call."""
    for _ in range(warmup):
        for run in runners.values():
            await run()
    times: dict[str, list[float]] = {name: [] for name in runners}
    for _ in range(n):
        for name, run in runners.items():
            t0 = time.perf_counter()
            await run()
            times[name].append(time.perf_counter() - t0)
    return times


def _check(name: str, result: Any) -> None:
    if result.exit_code != 0 or result.output.strip() != "1":
        raise RuntimeError(f"{name}: block gave exit {result.exit_code}: {result.output!r}")


async def docker_blocks(plan: Plan) -> tuple[dict[str, list[float]], dict[str, float]]:
    """Our Docker executor vs AutoGen's on the same image; returns times and stop times."""
    from autogen_core import CancellationToken
    from autogen_core.code_executor import CodeBlock as AutoGenBlock
    from autogen_ext.code_executors.docker import DockerCommandLineCodeExecutor as AutoGenExecutor

    from kernel_bridge.executors._blocks import CodeBlock
    from kernel_bridge.executors.docker import DockerCommandLineCodeExecutor as Ours

    with tempfile.TemporaryDirectory() as d1, tempfile.TemporaryDirectory() as d2:
        if os.geteuid() == 0:  # our containers never run the code as root: hand it the dir
            os.chown(d1, 1000, 1000)
        ours = Ours(
            image=MINIMAL_IMAGE,
            container_name=f"{CONTAINER_PREFIX}ours-{uuid.uuid4().hex[:8]}",
            work_dir=d1,
        )
        autogen = AutoGenExecutor(
            image=MINIMAL_IMAGE,
            container_name=f"{CONTAINER_PREFIX}autogen-{uuid.uuid4().hex[:8]}",
            work_dir=d2,
        )
        await ours.start()
        await autogen.start()
        stops: dict[str, float] = {}
        try:

            async def run_ours() -> None:
                _check("ours", await ours.execute_code_blocks([CodeBlock(BLOCK, "python")]))

            async def run_autogen() -> None:
                result = await autogen.execute_code_blocks(
                    [AutoGenBlock(code=BLOCK, language=AUTOGEN_DOCKER_LANGUAGE)],
                    CancellationToken(),
                )
                _check("autogen", result)

            times = await _interleave(
                {
                    "bridge DockerCommandLineCodeExecutor": run_ours,
                    "AutoGen DockerCommandLineCodeExecutor": run_autogen,
                },
                plan.blocks,
                warmup=3,
            )
        finally:

            async def timed_stop(name: str, executor: Any) -> None:
                t0 = time.perf_counter()
                await executor.stop()
                stops[name] = time.perf_counter() - t0

            await asyncio.gather(
                timed_stop("bridge DockerCommandLineCodeExecutor", ours),
                timed_stop("AutoGen DockerCommandLineCodeExecutor", autogen),
            )
    return times, stops


class CountingCredential:
    """A credential whose ``get_token`` returns the emulator's token and counts calls."""

    def __init__(self, token: str, lifetime: float = 3600) -> None:
        self.token = token
        self.lifetime = lifetime
        self.calls = 0

    def get_token(self, *scopes: str, **kwargs: Any) -> Any:
        """Return an AccessToken(token, expires_on) valid for ``lifetime`` seconds."""
        from azure.core.credentials import AccessToken

        self.calls += 1
        return AccessToken(self.token, int(time.time() + self.lifetime))


async def aca_blocks(ws: Workspace, plan: Plan) -> tuple[dict[str, list[float]], dict[str, int]]:
    """Our ACA executor vs AutoGen's against the same emulator; times and get_token calls."""
    from autogen_core import CancellationToken
    from autogen_core.code_executor import CodeBlock as AutoGenBlock
    from autogen_ext.code_executors.azure import ACADynamicSessionsCodeExecutor as AutoGenExecutor

    from kernel_bridge.executors._blocks import CodeBlock
    from kernel_bridge.executors.aca import ACADynamicSessionsCodeExecutor as Ours

    assert ws.emulator is not None
    cred_ours = CountingCredential(ws.emulator.token)
    cred_autogen = CountingCredential(ws.emulator.token)
    ours = Ours(ws.emulator.endpoint, cred_ours)
    autogen = AutoGenExecutor(ws.emulator.endpoint, cred_autogen)
    await ours.start()
    try:

        async def run_ours() -> None:
            _check("ours", await ours.execute_code_blocks([CodeBlock(BLOCK, "python")]))

        async def run_autogen() -> None:
            result = await autogen.execute_code_blocks(
                [AutoGenBlock(code=BLOCK, language="python")], CancellationToken()
            )
            _check("autogen", result)

        times = await _interleave(
            {
                "bridge ACADynamicSessionsCodeExecutor": run_ours,
                "AutoGen ACADynamicSessionsCodeExecutor": run_autogen,
            },
            plan.aca_blocks,
            warmup=3,
        )
    finally:
        await ours.stop()
        await autogen.stop()
    calls = {
        "bridge ACADynamicSessionsCodeExecutor": cred_ours.calls,
        "AutoGen ACADynamicSessionsCodeExecutor": cred_autogen.calls,
    }
    return times, calls


def _block_table(times: dict[str, list[float]], reference: str) -> Table:
    table = Table(["executor", "time / AutoGen's time", "median", "p95", "n"])
    ref = median(times[reference])
    for name, values in times.items():
        table.rows.append(
            [
                name,
                ratio(median(values), ref),
                ms(median(values)),
                ms(p95(values)),
                str(len(values)),
            ]
        )
    return table


def run(ws: Workspace, plan: Plan) -> Section:
    """Measure section 1 and return its report."""
    section = Section(
        "1. Per-cell and per-block latency (warm)",
        intro=(
            f"Kernels: `BlockingKernelClient.execute({TRIVIAL_CELL!r})` until this request's "
            "`idle` status (and its reply), on one warm kernel per system, the systems "
            f"interleaved cell by cell ({plan.cells} rounds after {plan.warmup_cells} warm-up "
            f"cells). Executors: `execute_code_blocks([CodeBlock({BLOCK!r}, 'python')])`, "
            "ours and AutoGen's (autogen-ext) interleaved call by call."
        ),
    )
    with attempt(section, "kernel round trips"):
        _kernels_part(ws, plan, section)
    if ws.docker:
        with attempt(section, "Docker executors"):
            _docker_part(plan, section)
    if BRIDGE_ACA in ws.systems:
        with attempt(section, "ACA executors"):
            _aca_part(ws, plan, section)
    return section


def _kernels_part(ws: Workspace, plan: Plan, section: Section) -> None:
    times = cell_round_trips(ws, plan)
    ref = median(times[IPYKERNEL])
    table = Table(["system", "ratio to local ipykernel", "median", "p95", "n"])
    for name, values in times.items():
        table.rows.append(
            [
                SYSTEM_LABELS[name],
                ratio(median(values), ref),
                ms(median(values)),
                ms(p95(values)),
                str(len(values)),
            ]
        )
    section.tables.append(table)
    if BRIDGE_DOCKER in times:
        docker = median(times[BRIDGE_DOCKER])
        section.targets.append(
            Target(
                "Docker bridge per cell vs local ipykernel",
                f"{ratio(docker, ref)} ({ms(docker)} vs {ms(ref)})",
                "≤ 1.50x",
                docker <= 1.5 * ref,
            )
        )
    else:
        section.targets.append(
            Target("Docker bridge per cell vs local ipykernel", "no Docker", "≤ 1.50x", None)
        )
    if BRIDGE_DOCKER in times:
        anchor = times.get(IPYKERNEL_DOCKER)
        section.targets.append(
            anchor_target(
                "Trivial cell",
                median(times[BRIDGE_DOCKER]),
                median(anchor) if anchor else None,
                1.0,
                ms,
            )
        )


def _docker_part(plan: Plan, section: Section) -> None:
    block_times, stops = asyncio.run(docker_blocks(plan))
    section.tables.append(_block_table(block_times, "AutoGen DockerCommandLineCodeExecutor"))
    ours = median(block_times["bridge DockerCommandLineCodeExecutor"])
    autogen = median(block_times["AutoGen DockerCommandLineCodeExecutor"])
    section.targets.append(
        Target(
            "Docker executor per block: AutoGen time / bridge time",
            f"{ratio(autogen, ours)} faster ({ms(ours)} vs AutoGen {ms(autogen)})",
            "≥ 5x",
            autogen >= 5 * ours,
        )
    )
    section.notes.append(
        "Executor `stop()`: bridge "
        f"{stops['bridge DockerCommandLineCodeExecutor']:.2f} s, AutoGen "
        f"{stops['AutoGen DockerCommandLineCodeExecutor']:.2f} s (AutoGen's `/bin/sh` PID 1 "
        "ignores SIGTERM, so Docker waits out its 10 s grace period)."
    )


def _aca_part(ws: Workspace, plan: Plan, section: Section) -> None:
    aca_times, calls = asyncio.run(aca_blocks(ws, plan))
    section.tables.append(_block_table(aca_times, "AutoGen ACADynamicSessionsCodeExecutor"))
    ours = median(aca_times["bridge ACADynamicSessionsCodeExecutor"])
    autogen = median(aca_times["AutoGen ACADynamicSessionsCodeExecutor"])
    section.targets.append(
        Target(
            "ACA executor per block vs AutoGen's (same emulator)",
            f"{ratio(ours, autogen)} ({ms(ours)} vs AutoGen {ms(autogen)})",
            "≤ 1.00x",
            ours <= autogen,
        )
    )
    section.notes.append(
        "ACA executors against the same emulator; `get_token` calls during the run: "
        + ", ".join(f"{k.split()[0]} {v}" for k, v in calls.items())
        + ". AutoGen's executor opens a new aiohttp session (a new TCP connection) per call."
    )
    if median(aca_times["bridge ACADynamicSessionsCodeExecutor"]) > 0.02:
        section.notes.append(
            "The ACA figures include the emulator's own HTTP delays on kept-alive "
            "connections (see section 6); AutoGen's executor escapes them by opening a new "
            "connection per call."
        )
