"""ACA kernels against the emulator: secrets stay out of logs and outputs; expiry is reported."""

from __future__ import annotations

import json
import time
from pathlib import Path

from _support.environments import ACA_TOKEN, EMULATORS
from _support.kernel_client import run_cell, start_kernel
from _support.specs import ACA_LOCAL, ACA_LOCAL_NEWEST, BridgeSpec, jupyter_root, write_kernelspec


def test_debug_log_and_outputs_hold_neither_token_nor_session_id(tmp_path: Path) -> None:
    ACA_LOCAL.ready()
    spec = BridgeSpec("kbtest-aca-debug", (*ACA_LOCAL.flags, "--debug"), env=ACA_LOCAL.env)
    write_kernelspec(jupyter_root(), spec)
    log_path = tmp_path / "kernel.log"
    emulator = EMULATORS["local"].emulator
    before = {s.identifier for s in emulator.state.sessions.live()}
    with log_path.open("w") as log:
        km, kc = start_kernel(spec.name, stderr=log, stdout=log)
        outputs: list[dict] = []
        try:
            for code in ("x = 6 * 7\nx", "print('visible', x)", "raise ValueError('boom')", "x"):
                outputs += run_cell(kc, code).outputs
            identifiers = {s.identifier for s in emulator.state.sessions.live()} - before
        finally:
            kc.stop_channels()
            km.shutdown_kernel()
    assert len(identifiers) == 1, "the kernel should have used exactly one new session"
    identifier = identifiers.pop()
    live_after = {s.identifier for s in emulator.state.sessions.live()}
    assert identifier not in live_after, "kernel shutdown should delete its ACA session"
    log_text = log_path.read_text()
    assert "-> HTTP 200" in log_text, "the debug log should show the HTTP requests"
    shown = json.dumps([m["content"] for m in outputs])
    assert "visible 42" in shown and "boom" in shown
    for text in (log_text, shown):
        assert ACA_TOKEN not in text
        assert identifier not in text


def test_expired_session_is_reported_and_functions_come_back(tmp_path: Path) -> None:
    from kernel_bridge.emulator import Emulator, EmulatorConfig

    with Emulator(EmulatorConfig(token=ACA_TOKEN, cooldown=2.0)) as emulator:
        flags = (
            "--BridgeKernel.executor=aca",
            f"--ACADynamicSessionsCodeExecutor.pool_management_endpoint={emulator.endpoint}",
            *[f for f in ACA_LOCAL.flags if f.startswith("--BridgeKernel.functions")],
        )
        spec = BridgeSpec("kbtest-aca-cooldown", flags, env=ACA_LOCAL.env)
        write_kernelspec(jupyter_root(), spec)
        km, kc = start_kernel(spec.name)
        try:
            assert run_cell(kc, "kept = 'value'\nprint(shout('one'))").stream_text() == "ONE!\n"
            time.sleep(3.0)  # the idle time is the behaviour under test, not a synchronisation
            run = run_cell(kc, "print('kept' in globals(), shout('two'))")
            assert run.status == "ok", run.reply["content"]
            assert run.stream_text("stdout").endswith("False TWO!\n")
            notice = run.stream_text("stderr")
            assert "replaced" in notice and "gone" in notice
        finally:
            kc.stop_channels()
            km.shutdown_kernel()


def test_install_timeout_ends_a_slow_cell_at_the_limit_and_says_so(tmp_path: Path) -> None:
    import os
    import shutil
    import subprocess
    import sys

    from kernel_bridge.emulator import Emulator, EmulatorConfig, Fault

    with Emulator(EmulatorConfig(token=ACA_TOKEN)) as emulator:
        name = "kbtest-aca-install-timeout"
        subprocess.run(
            [
                sys.executable,
                "-m",
                "kernel_bridge.cli",
                "install",
                "--executor",
                "aca",
                "--endpoint",
                emulator.endpoint,
                "--timeout",
                "5",
                "--name",
                name,
                "--prefix",
                str(tmp_path),
            ],
            check=True,
            capture_output=True,
        )
        installed = tmp_path / "share" / "jupyter" / "kernels" / name
        assert (
            "--ACADynamicSessionsCodeExecutor.timeout=5" in (installed / "kernel.json").read_text()
        )
        shutil.copytree(installed, jupyter_root() / "kernels" / name, dirs_exist_ok=True)
        env = {**os.environ, **ACA_LOCAL.env}
        km, kc = start_kernel(name, env=env)
        try:
            assert run_cell(kc, "6 * 7").status == "ok"  # the session is set up
            emulator.faults.add(Fault(operation="execute", delay=30.0))
            started = time.monotonic()
            run = run_cell(kc, "print('slow answer')", timeout=60)
            elapsed = time.monotonic() - started
            assert run.status == "error"
            assert run.reply["content"]["ename"] == "TimeoutError"
            text = run.reply["content"]["evalue"]
            assert "5 s timeout set for this kernel (--timeout)" in text
            assert "may still be running in the remote session" in text
            assert 4.5 <= elapsed < 10.0, elapsed
        finally:
            emulator.faults.clear()
            kc.stop_channels()
            km.shutdown_kernel()


def test_a_long_cell_on_the_newest_version_shows_a_live_status_line() -> None:
    ACA_LOCAL_NEWEST.ready()
    km, kc = start_kernel(ACA_LOCAL_NEWEST.name)
    try:
        run = run_cell(kc, "import time\ntime.sleep(6)\nprint('finished')", timeout=120)
    finally:
        kc.stop_channels()
        km.shutdown_kernel()
    assert run.status == "ok", run.reply["content"]
    assert run.stream_text() == "finished\n"
    shown = run.of_type("display_data")
    updates = run.of_type("update_display_data")
    assert len(shown) == 1, shown
    display_id = shown[0]["content"]["transient"]["display_id"]
    assert "still running in the ACA session" in shown[0]["content"]["data"]["text/plain"]
    assert len(updates) >= 2 and all(
        u["content"]["transient"]["display_id"] == display_id for u in updates
    )
    assert updates[-1]["content"]["data"]["text/plain"].startswith("ran ")
    order = [m["msg_type"] for m in run.outputs]
    assert order.index("display_data") < order.index("stream")
    # the line was updated while the cell ran, not only when it ended
    first_update = run.arrivals[order.index("update_display_data")]
    assert first_update < run.arrivals[order.index("stream")] - 1.0


def test_a_cell_past_the_synchronous_limit_fails_clearly_on_2024_and_runs_on_the_newest() -> None:
    from kernel_bridge.emulator import Emulator, EmulatorConfig

    cell = "import time\ntime.sleep(6)\nprint('six seconds later')"
    with Emulator(EmulatorConfig(token=ACA_TOKEN, execution_cap=3.0)) as emulator:
        runs = {}
        for version in ("2024-02-02-preview", "2025-10-02-preview"):
            flags = (
                "--BridgeKernel.executor=aca",
                f"--ACADynamicSessionsCodeExecutor.pool_management_endpoint={emulator.endpoint}",
                f"--ACADynamicSessionsCodeExecutor.api_version={version}",
            )
            spec = BridgeSpec(f"kbtest-aca-cap-{version}", flags, env=ACA_LOCAL.env)
            write_kernelspec(jupyter_root(), spec)
            km, kc = start_kernel(spec.name)
            try:
                runs[version] = run_cell(kc, cell, timeout=120)
            finally:
                kc.stop_channels()
                km.shutdown_kernel()
    legacy, newest = runs["2024-02-02-preview"], runs["2025-10-02-preview"]
    assert legacy.status == "error" and legacy.reply["content"]["ename"] == "TimeoutError"
    message = legacy.reply["content"]["evalue"]
    assert "3 s limit of synchronous executions" in message
    assert "--ACADynamicSessionsCodeExecutor.api_version=2025-10-02-preview" in message
    assert "six seconds later" not in legacy.stream_text()
    assert newest.status == "ok", newest.reply["content"]
    assert newest.stream_text() == "six seconds later\n"
    assert newest.of_type("display_data") and newest.of_type("update_display_data")
