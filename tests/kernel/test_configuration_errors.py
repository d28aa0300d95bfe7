"""A bad configuration is an error in each cell, never a dead kernel."""

from __future__ import annotations

from _support.kernel_client import run_cell, start_kernel


def test_unknown_executor_names_bad_value_and_valid_ones() -> None:
    km, kc = start_kernel("kbtest-bad")
    try:
        info = kc.kernel_info(reply=True, timeout=10)
        assert info["content"]["language_info"]["name"] == "python"
        for _ in range(2):
            run = run_cell(kc, "1 + 1")
            assert run.status == "error"
            evalue = run.reply["content"]["evalue"]
            assert "'nope'" in evalue
            for kind in ("local", "docker", "aca"):
                assert kind in evalue
            assert run.of_type("error")
        assert km.is_alive()
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)


def test_kernel_info_is_immediate_and_honest(kernel: tuple) -> None:
    _, kc = kernel
    reply = kc.kernel_info(reply=True, timeout=5)["content"]
    assert reply["language_info"]["name"] == "python"
    assert reply["language_info"]["file_extension"] == ".py"
    assert reply["supported_features"] == ["debugger"]  # runtime-backed: no subshells
    assert reply["implementation"] == "kernel_bridge"


def test_broken_function_source_is_named_and_kernel_stays_usable() -> None:
    km, kc = start_kernel("kbtest-broken-functions")
    try:
        first = run_cell(kc, "1 + 1")
        assert first.status == "error"
        assert first.reply["content"]["ename"] == "FunctionsError"
        assert "broken_functions.py" in first.reply["content"]["evalue"]
        second = run_cell(kc, "print(circle_area(1.0))")
        assert second.status == "ok", second.reply["content"]
        assert second.stream_text() == "3.141593\n"
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)


def test_help_all_documents_every_executor_option() -> None:
    import subprocess
    import sys

    proc = subprocess.run(
        [sys.executable, "-m", "kernel_bridge", "--help-all"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    for option in (
        "--BridgeKernel.executor",
        "--BridgeKernel.functions",
        "--LocalExecutor.python",
        "--DockerCommandLineCodeExecutor.image",
        "--DockerCommandLineCodeExecutor.mem_limit",
        "--ACADynamicSessionsCodeExecutor.pool_management_endpoint",
    ):
        assert option in proc.stdout
