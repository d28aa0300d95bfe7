"""Details notebooks rely on, as a stock ipykernel does them (issue: parity)."""

from __future__ import annotations

import platform

from _support.kernel_client import run_cell, start_kernel
from _support.specs import DOCKER_RICH, LOCAL


def test_local_language_info_version_is_the_interpreters_at_once() -> None:
    km, kc = start_kernel(LOCAL.ready())
    try:
        kc.kernel_info()
        reply = kc.get_shell_msg(timeout=30)
        assert reply["content"]["language_info"]["version"] == platform.python_version()
    finally:
        kc.stop_channels()
        km.shutdown_kernel()


def test_docker_language_info_version_is_the_containers_once_started() -> None:
    km, kc = start_kernel(DOCKER_RICH.ready())
    try:
        run = run_cell(kc, "import platform\nplatform.python_version()", timeout=120)
        version = run.of_type("execute_result")[0]["content"]["data"]["text/plain"].strip("'")
        kc.kernel_info()
        reply = kc.get_shell_msg(timeout=30)
        assert reply["content"]["language_info"]["version"] == version
    finally:
        kc.stop_channels()
        km.shutdown_kernel()


def test_undefined_line_magic_reports_usage_error_once(kernel: tuple) -> None:
    _, kc = kernel
    if run_cell(kc, "get_ipython").status != "ok":
        return_value = run_cell(kc, "%undefined_magic")
        assert return_value.status == "error"  # plain Python: a SyntaxError
        return
    run = run_cell(kc, "%undefined_magic")
    assert run.status == "error"
    assert run.reply["content"]["ename"] == "UsageError"
    assert not run.of_type("error"), run.outputs
    assert run.stream_text("stderr").count("UsageError") == 1


def test_stderr_after_explicit_stdout_flush_never_overtakes_it(kernel: tuple) -> None:
    _, kc = kernel
    run = run_cell(
        kc,
        "import sys\n"
        "for i in range(200):\n"
        "    sys.stdout.write(f'out{i} ' * 50 + '\\n')\n"
        "    sys.stdout.flush()\n"
        "    sys.stderr.write(f'err{i}\\n')\n",
    )
    assert run.status == "ok"
    order = []
    for m in run.of_type("stream"):
        for line in m["content"]["text"].splitlines():
            order.append(line.split()[0])
    assert sorted(order) == sorted(f"{tag}{i}" for i in range(200) for tag in ("out", "err"))
    position = {tag: n for n, tag in enumerate(order)}
    overtaken = [i for i in range(200) if position[f"err{i}"] < position[f"out{i}"]]
    assert not overtaken, f"stderr overtook the flushed stdout for {overtaken}"
