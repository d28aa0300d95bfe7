"""Docker kernels: rich output on the rich image; no container outlives its kernel."""

from __future__ import annotations

import os
import signal
import time

from _support.kernel_client import run_cell, start_kernel
from _support.specs import DOCKER, DOCKER_RICH


def test_rich_image_gives_matplotlib_png_and_ipython_display() -> None:
    km, kc = start_kernel(DOCKER_RICH.ready())
    try:
        figure = run_cell(
            kc,
            "import matplotlib.pyplot as plt\nplt.plot([1, 2, 3], [1, 4, 9])\nplt.show()",
            timeout=120,
        )
        assert figure.status == "ok", figure.reply["content"]
        pngs = [m for m in figure.of_type("display_data") if "image/png" in m["content"]["data"]]
        assert pngs, figure.outputs
        html = run_cell(kc, "from IPython.display import HTML\nHTML('<b>rich</b>')")
        assert html.of_type("execute_result")[0]["content"]["data"]["text/html"] == "<b>rich</b>"
        shell = run_cell(kc, "!echo from-bang")
        assert "from-bang" in shell.stream_text()
        arrays = run_cell(kc, "import numpy as np\nnp.arange(3) * 2")
        assert (
            "array([0, 2, 4])"
            in arrays.of_type("execute_result")[0]["content"]["data"]["text/plain"]
        )
    finally:
        kc.stop_channels()
        km.shutdown_kernel()


def _our_containers(client: object, kernel_pid: int) -> list[object]:
    return client.containers.list(  # type: ignore[attr-defined, no-any-return]
        all=True, ignore_removed=True, filters={"label": f"kernel_bridge.pid={kernel_pid}"}
    )


def test_sigkilled_kernel_leaves_no_container() -> None:
    import docker

    km, kc = start_kernel(DOCKER.ready())
    client = docker.from_env()
    try:
        assert run_cell(kc, "x = 1").status == "ok"
        kernel_pid = km.provisioner.process.pid  # type: ignore[union-attr]
        assert _our_containers(client, kernel_pid), "the kernel's container should be running"
        os.kill(kernel_pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while _our_containers(client, kernel_pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not _our_containers(client, kernel_pid), "container outlived its SIGKILLed kernel"
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)
        client.close()


def test_shutdown_removes_the_container_quickly() -> None:
    import docker

    km, kc = start_kernel(DOCKER.ready())
    client = docker.from_env()
    try:
        assert run_cell(kc, "1").status == "ok"
        kernel_pid = km.provisioner.process.pid  # type: ignore[union-attr]
        assert _our_containers(client, kernel_pid)
        kc.stop_channels()
        started = time.monotonic()
        km.shutdown_kernel()
        elapsed = time.monotonic() - started
        assert not _our_containers(client, kernel_pid)
        assert elapsed < 5.0, f"shutdown took {elapsed:.1f} s"
    finally:
        client.close()


def _bad_docker_spec(name: str, flags: tuple[str, ...], env: dict[str, str] | None = None) -> str:
    from _support.specs import BridgeSpec, jupyter_root, write_kernelspec

    spec = BridgeSpec(name, ("--BridgeKernel.executor=docker", *flags), env=env or {})
    write_kernelspec(jupyter_root(), spec)
    return spec.name


def _assert_clear_error_twice(name: str, *needles: str) -> None:
    km, kc = start_kernel(name)
    try:
        for _ in range(2):
            run = run_cell(kc, "1 + 1", timeout=120)
            assert run.status == "error"
            evalue = run.reply["content"]["evalue"]
            for needle in needles:
                assert needle in evalue, evalue
            assert len(run.of_type("error")) == 1
        assert km.is_alive()
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)


def test_missing_image_is_one_clear_error_in_the_cell() -> None:
    DOCKER.ready()
    name = _bad_docker_spec(
        "kbtest-docker-noimage",
        ("--DockerCommandLineCodeExecutor.image=kernel-bridge-test/absent:none",),
    )
    _assert_clear_error_twice(name, "kernel-bridge-test/absent:none", "docker load")


def test_unreachable_engine_is_one_clear_error_in_the_cell() -> None:
    name = _bad_docker_spec(
        "kbtest-docker-noengine",
        ("--DockerCommandLineCodeExecutor.image=kernel-bridge-test/minimal:bookworm",),
        env={"DOCKER_HOST": "tcp://127.0.0.1:1"},
    )
    _assert_clear_error_twice(name, "DOCKER_HOST")


def test_bad_volume_spec_is_one_clear_error_in_the_cell() -> None:
    DOCKER.ready()
    name = _bad_docker_spec(
        "kbtest-docker-badvolume",
        (
            "--DockerCommandLineCodeExecutor.image=kernel-bridge-test/minimal:bookworm",
            '--DockerCommandLineCodeExecutor.extra_volumes={"relative/path": {"bind": "/x"}}',
        ),
    )
    _assert_clear_error_twice(name, "relative/path")
