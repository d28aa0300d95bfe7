"""The runtime starts ahead of the first cell (prestart), and cell_timeout stops long cells."""

from __future__ import annotations

import time

from _support.kernel_client import run_cell, start_kernel
from _support.specs import DOCKER, LOCAL, BridgeSpec, jupyter_root, write_kernelspec


def _containers(kernel_pid: int) -> list[object]:
    import docker

    client = docker.from_env()
    try:
        return client.containers.list(  # type: ignore[no-any-return]
            all=True, ignore_removed=True, filters={"label": f"kernel_bridge.pid={kernel_pid}"}
        )
    finally:
        client.close()


def test_prestart_starts_the_container_before_any_cell() -> None:
    km, kc = start_kernel(DOCKER.ready())
    try:
        kernel_pid = km.provisioner.process.pid  # type: ignore[union-attr]
        deadline = time.monotonic() + 20
        while not _containers(kernel_pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert _containers(kernel_pid), "no container was started ahead of the first cell"
        assert run_cell(kc, "print(shout('warm'))").stream_text() == "WARM!\n"
    finally:
        kc.stop_channels()
        km.shutdown_kernel()


def test_without_prestart_nothing_starts_until_the_first_cell() -> None:
    DOCKER.ready()
    spec = BridgeSpec("kbtest-docker-lazy", (*DOCKER.flags, "--BridgeKernel.prestart=False"))
    write_kernelspec(jupyter_root(), spec)
    km, kc = start_kernel(spec.name)
    try:
        kernel_pid = km.provisioner.process.pid  # type: ignore[union-attr]
        kc.kernel_info(reply=True, timeout=10)
        assert not _containers(kernel_pid)
        assert run_cell(kc, "1 + 1").status == "ok"
        assert _containers(kernel_pid)
    finally:
        kc.stop_channels()
        km.shutdown_kernel()


def test_cell_timeout_interrupts_and_keeps_state() -> None:
    spec = BridgeSpec("kbtest-local-timeout", (*LOCAL.flags, "--BridgeKernel.cell_timeout=1"))
    write_kernelspec(jupyter_root(), spec)
    km, kc = start_kernel(spec.name)
    try:
        assert run_cell(kc, "kept = 5").status == "ok"
        started = time.monotonic()
        slow = run_cell(kc, "import time\nprint('before')\ntime.sleep(30)")
        elapsed = time.monotonic() - started
        assert slow.status == "error"
        assert slow.reply["content"]["ename"] == "TimeoutError"
        assert "before" in slow.stream_text()
        assert elapsed < 5, f"the timed-out cell took {elapsed:.1f} s"
        after = run_cell(kc, "kept + 1")
        assert after.of_type("execute_result")[0]["content"]["data"]["text/plain"] == "6"
    finally:
        kc.stop_channels()
        km.shutdown_kernel()
