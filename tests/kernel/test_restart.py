"""A kernel restart gives a fresh runtime with the functions injected again."""

from __future__ import annotations

from _support.kernel_client import run_cell


def test_restart_gives_fresh_state_and_functions(kernel: tuple) -> None:
    km, kc = kernel
    assert run_cell(kc, "secret = 1\nimport os\npid = os.getpid()").status == "ok"
    first_pid = run_cell(kc, "pid").of_type("execute_result")[0]["content"]["data"]["text/plain"]
    km.restart_kernel(now=False)
    kc.wait_for_ready(timeout=60)
    run = run_cell(
        kc,
        "import os\nprint('secret' in globals(), os.getpid() != " + first_pid + ", shout('again'))",
    )
    assert run.status == "ok", run.reply["content"]
    assert run.stream_text() == "False True AGAIN!\n"
    assert (
        run_cell(kc, "from functions import circle_area as c\nc(2.0)").of_type("execute_result")[0][
            "content"
        ]["data"]["text/plain"]
        == "12.566371"
    )
