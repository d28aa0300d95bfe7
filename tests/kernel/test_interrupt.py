"""Interrupts never kill the kernel: the cell ends with KeyboardInterrupt and state survives."""

from __future__ import annotations

import time

import pytest
from _support.kernel_client import run_cell, start_kernel
from _support.specs import DOCKER, DOCKER_REMOTE, LOCAL, LOCAL_MSG, BridgeSpec


def _wait_busy(kc: object, msg_id: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        msg = kc.get_iopub_msg(timeout=deadline - time.monotonic())  # type: ignore[attr-defined]
        if msg["parent_header"].get("msg_id") == msg_id and msg["msg_type"] == "stream":
            return
    raise TimeoutError("the cell never started")


@pytest.mark.parametrize("spec", [LOCAL, LOCAL_MSG, DOCKER, DOCKER_REMOTE], ids=lambda s: s.name)
@pytest.mark.parametrize("loop", ["while True: pass", "import time\ntime.sleep(100)"])
def test_interrupt_stops_cell_within_one_second_and_keeps_state(
    spec: BridgeSpec, loop: str
) -> None:
    km, kc = start_kernel(spec.ready())
    try:
        assert run_cell(kc, "x = 41").status == "ok"
        msg_id = kc.execute(f"print('running', flush=True)\n{loop}", stop_on_error=False)
        _wait_busy(kc, msg_id)
        sent = time.monotonic()
        km.interrupt_kernel()
        reply = kc.get_shell_msg(timeout=10)
        elapsed = time.monotonic() - sent
        assert reply["parent_header"]["msg_id"] == msg_id
        assert reply["content"]["status"] == "error"
        assert reply["content"]["ename"] == "KeyboardInterrupt"
        assert elapsed < 1.0, f"interrupt took {elapsed:.2f} s"
        assert km.is_alive()
        after = run_cell(kc, "x + 1")
        assert after.status == "ok"
        assert after.of_type("execute_result")[0]["content"]["data"]["text/plain"] == "42"
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)


def test_interrupt_while_idle_is_harmless(kernel: tuple) -> None:
    km, kc = kernel
    assert run_cell(kc, "y = 1").status == "ok"
    km.interrupt_kernel()
    assert km.is_alive()
    assert run_cell(kc, "y").of_type("execute_result")[0]["content"]["data"]["text/plain"] == "1"
