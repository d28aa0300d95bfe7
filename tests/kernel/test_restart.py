"""A kernel restart gives a fresh runtime with the functions injected again."""

from __future__ import annotations

from _support.kernel_client import run_cell


def test_restart_gives_fresh_state_and_functions(kernel: tuple) -> None:
    km, kc = kernel
    setup = "secret = 1\nimport builtins\nbuiltins.kb_test_marker = 'old runtime'"
    assert run_cell(kc, setup).status == "ok"
    km.restart_kernel(now=False)
    kc.wait_for_ready(timeout=60)
    code = (
        "import builtins\n"
        "print('secret' in globals(), hasattr(builtins, 'kb_test_marker'), shout('again'))"
    )
    run = run_cell(kc, code)
    assert run.status == "ok", run.reply["content"]
    assert run.stream_text() == "False False AGAIN!\n"
    imported = run_cell(kc, "from functions import circle_area as c\nc(2.0)")
    assert imported.of_type("execute_result")[0]["content"]["data"]["text/plain"] == "12.566371"
