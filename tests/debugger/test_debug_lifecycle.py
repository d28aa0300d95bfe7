"""Interrupt, restart and runtime death while a cell waits at a breakpoint; and the plain
message a frontend gets where the debugger cannot run."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest
from _support.debug_client import DebugClient, stream_text
from _support.kernel_client import run_cell, start_kernel
from _support.specs import ACA_LOCAL, DOCKER, DOCKER_RICH, LOCAL, MINIMAL_IMAGE, BridgeSpec
from jupyter_client.blocking.client import BlockingKernelClient
from jupyter_client.manager import KernelManager

LOOP_CELL = "total = 0\nfor i in range(3):\n    total += i\nprint('total', total)\n"


def _kernel(spec: BridgeSpec) -> Iterator[tuple[KernelManager, BlockingKernelClient]]:
    km, kc = start_kernel(spec.ready())
    yield km, kc
    kc.stop_channels()
    km.shutdown_kernel()


@pytest.fixture
def local_kernel() -> Iterator[tuple[KernelManager, BlockingKernelClient]]:
    """A fresh local-executor kernel."""
    yield from _kernel(LOCAL)


@pytest.fixture(params=[LOCAL, DOCKER_RICH], ids=lambda s: s.name)
def debuggable_kernel(
    request: pytest.FixtureRequest,
) -> Iterator[tuple[KernelManager, BlockingKernelClient]]:
    """A fresh kernel whose executor hosts debugpy (local, Docker rich image)."""
    yield from _kernel(request.param)


def _stop_in_loop(dbg: DebugClient, kc: BlockingKernelClient) -> tuple[str, int]:
    """Start debugging, break on line 3 of LOOP_CELL, run it; return (msg_id, thread id)."""
    dbg.start()
    path = dbg.request("dumpCell", {"code": LOOP_CELL})["body"]["sourcePath"]
    points = dbg.request("setBreakpoints", {"source": {"path": path}, "breakpoints": [{"line": 3}]})
    assert points["success"], points
    assert dbg.request("configurationDone")["success"]
    msg_id = kc.execute(LOOP_CELL)
    stopped = dbg.wait_event("stopped")
    return msg_id, int(stopped["body"]["threadId"])


def _reply(kc: BlockingKernelClient, msg_id: str, timeout: float = 60.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        reply = kc.get_shell_msg(timeout=max(0.1, deadline - time.monotonic()))
        if reply["parent_header"].get("msg_id") == msg_id:
            return dict(reply["content"])


def _runtime_pid(kc: BlockingKernelClient) -> int:
    run = run_cell(kc, "import os\nprint(os.getpid())")
    assert run.status == "ok", run.reply
    return int(run.stream_text().strip())


def test_interrupt_while_stopped_ends_the_cell_and_the_kernel_stays_usable(
    debuggable_kernel: tuple,
) -> None:
    km, kc = debuggable_kernel
    dbg = DebugClient(kc)
    msg_id, _ = _stop_in_loop(dbg, kc)
    km.interrupt_kernel()
    reply = _reply(kc, msg_id)
    assert reply["status"] == "error"
    assert reply["ename"] == "KeyboardInterrupt"
    dbg.wait_idle(msg_id)
    # the debugger still answers, and the next cells run (breakpoints of other cells only)
    assert dbg.request("debugInfo")["success"]
    after = run_cell(kc, "print('after', 6 * 7)")
    assert after.status == "ok", after.reply
    assert after.stream_text() == "after 42\n"
    # and breakpoints still hit (the interrupt left pydevd believing the thread stopped,
    # with tracing switched off; a stock ipykernel never stops again here)
    msg_id = kc.execute(LOOP_CELL)
    thread = int(dbg.wait_event("stopped")["body"]["threadId"])
    bye = dbg.request("disconnect", {"restart": False, "terminateDebuggee": False})
    assert bye["success"], bye
    assert stream_text(dbg.wait_idle(msg_id)) == "total 3\n"
    assert thread > 0


def test_continue_after_stop_then_the_same_cell_stops_again(local_kernel: tuple) -> None:
    _km, kc = local_kernel
    dbg = DebugClient(kc)
    msg_id, thread = _stop_in_loop(dbg, kc)
    for _ in range(2):  # the breakpoint is inside a 3-round loop: it hits 3 times
        assert dbg.request("continue", {"threadId": thread})["success"]
        thread = int(dbg.wait_event("stopped")["body"]["threadId"])
    assert dbg.request("continue", {"threadId": thread})["success"]
    assert stream_text(dbg.wait_idle(msg_id)) == "total 3\n"
    assert _reply(kc, msg_id)["status"] == "ok"


def test_runtime_death_while_stopped_resets_the_debugger(local_kernel: tuple) -> None:
    _km, kc = local_kernel
    pid = _runtime_pid(kc)
    dbg = DebugClient(kc)
    msg_id, _ = _stop_in_loop(dbg, kc)
    os.kill(pid, signal.SIGKILL)
    reply = _reply(kc, msg_id)
    assert reply["ename"] == "RuntimeDiedError"
    dbg.wait_idle(msg_id)
    assert dbg.request("debugInfo")["body"]["isStarted"] is False
    # switching the debugger off now still succeeds (JupyterLab's toggle needs it to)
    assert dbg.request("disconnect", {"restart": False, "terminateDebuggee": False})["success"]
    assert run_cell(kc, "print('fresh')").stream_text() == "fresh\n"
    # a new runtime debugs again from scratch
    msg_id, _ = _stop_in_loop(dbg, kc)
    # disconnecting (as JupyterLab does when the debugger is switched off) lets it finish
    bye = dbg.request("disconnect", {"restart": False, "terminateDebuggee": False})
    assert bye["success"], bye
    assert stream_text(dbg.wait_idle(msg_id)) == "total 3\n"
    assert _reply(kc, msg_id)["status"] == "ok"


def test_restart_while_stopped_gives_a_working_kernel_and_ends_the_runtime(
    local_kernel: tuple,
) -> None:
    km, kc = local_kernel
    pid = _runtime_pid(kc)
    dbg = DebugClient(kc)
    _stop_in_loop(dbg, kc)
    km.restart_kernel(now=False)
    kc.wait_for_ready(timeout=60)
    deadline = time.monotonic() + 30
    while psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
        assert time.monotonic() < deadline, "the old runtime outlived the restart"
        time.sleep(0.05)
    after = run_cell(kc, "print('restarted')")
    assert after.stream_text() == "restarted\n"
    dbg = DebugClient(kc)
    assert dbg.start()["isStarted"] is True


def test_restart_while_stopped_tells_the_frontend_nothing_is_stopped(
    debuggable_kernel: tuple,
) -> None:
    km, kc = debuggable_kernel
    dbg = DebugClient(kc)
    _stop_in_loop(dbg, kc)
    km.restart_kernel(now=False)
    # JupyterLab's "Paused in Debugger" overlay, over the notebook's toolbar, goes away
    # only on continued/terminated; a container's debugpy dies without saying either
    continued = dbg.wait_event("continued", timeout=30)
    assert continued["body"].get("allThreadsContinued") is True, continued
    kc.wait_for_ready(timeout=60)
    assert run_cell(kc, "print('restarted')").stream_text() == "restarted\n"


@pytest.fixture
def aca_kernel() -> Iterator[tuple[KernelManager, BlockingKernelClient]]:
    """A kernel on the ACA executor (emulator, local backend)."""
    yield from _kernel(ACA_LOCAL)


@pytest.fixture
def minimal_docker_kernel() -> Iterator[tuple[KernelManager, BlockingKernelClient]]:
    """A Docker kernel on the minimal image (no debugpy in it)."""
    yield from _kernel(DOCKER)


def _initialize_fails(kc: BlockingKernelClient) -> str:
    """Send initialize, check it fails with an output event saying why; return the reason."""
    dbg = DebugClient(kc)
    reply = dbg.request("initialize", {"adapterID": "python"})
    assert reply["success"] is False
    output = dbg.wait_event("output")
    assert output["body"]["output"].strip() == reply["message"]
    return str(reply["message"])


def test_aca_advertises_no_debugger_and_says_why(aca_kernel: tuple) -> None:
    _km, kc = aca_kernel
    kc.kernel_info()
    assert "debugger" not in kc.get_shell_msg(timeout=30)["content"]["supported_features"]
    message = _initialize_fails(kc)
    assert "'aca' executor has no private channel" in message
    assert run_cell(kc, "print(1 + 1)").stream_text() == "2\n"


def test_image_without_debugpy_names_the_package_and_the_image(
    minimal_docker_kernel: tuple,
) -> None:
    _km, kc = minimal_docker_kernel
    message = _initialize_fails(kc)
    assert "debugpy" in message
    assert MINIMAL_IMAGE in message
    assert run_cell(kc, "print(2 + 2)").stream_text() == "4\n"


def test_debugging_again_after_disconnect_in_the_same_runtime(local_kernel: tuple) -> None:
    _km, kc = local_kernel
    dbg = DebugClient(kc)
    dbg.start()
    assert dbg.request("disconnect", {"restart": False, "terminateDebuggee": False})["success"]
    # debugpy listens once per process: the second session reconnects to the same adapter
    msg_id, thread = _stop_in_loop(dbg, kc)
    assert dbg.request("debugInfo")["body"]["stoppedThreads"] == [thread]
    bye = dbg.request("disconnect", {"restart": False, "terminateDebuggee": False})
    assert bye["success"], bye
    assert stream_text(dbg.wait_idle(msg_id)) == "total 3\n"


def test_shutdown_while_stopped_ends_quietly(tmp_path: Path) -> None:
    log_path = tmp_path / "kernel.log"
    with log_path.open("w") as log:
        km, kc = start_kernel(LOCAL.ready(), stderr=log, stdout=log)
        try:
            dbg = DebugClient(kc)
            _stop_in_loop(dbg, kc)
        finally:
            kc.stop_channels()
            km.shutdown_kernel()
    assert not km.is_alive()
    # the stopped cell ends as the executor stops; its reply has no socket left to go to
    # (it used to be sent anyway: "ZMQError: Socket operation on non-socket")
    text = log_path.read_text(errors="replace")
    assert "Traceback" not in text, text
