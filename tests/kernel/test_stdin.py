"""input() goes through Jupyter's stdin channel when allowed, and fails clearly when not."""

from __future__ import annotations

from _support.kernel_client import run_cell


def test_input_is_answered_through_stdin_channel(kernel: tuple) -> None:
    _, kc = kernel
    run = run_cell(
        kc, "name = input('who? ')\nprint('hello', name)", allow_stdin=True, stdin_answer="ada"
    )
    assert run.status == "ok", run.reply["content"]
    assert "hello ada" in run.stream_text()


def test_input_without_stdin_fails_with_clear_message(kernel: tuple) -> None:
    _, kc = kernel
    has_ipython = run_cell(kc, "get_ipython").status == "ok"
    run = run_cell(kc, "input('who? ')", allow_stdin=False)
    assert run.status == "error"
    # as ipykernel where IPython runs the code (nbclient's own tests look for this name)
    expected = "StdinNotImplementedError" if has_ipython else "EOFError"
    assert run.reply["content"]["ename"] == expected
    assert "allow_stdin" in run.reply["content"]["evalue"]
    assert run_cell(kc, "1").status == "ok"
