"""A runtime killed mid-cell is reported in that cell; the next cell gets a fresh one."""

from __future__ import annotations

from _support.kernel_client import run_cell


def test_killed_runtime_reports_lost_state_then_recovers_with_functions(kernel: tuple) -> None:
    km, kc = kernel
    assert run_cell(kc, "keep = 'me'").status == "ok"
    died = run_cell(kc, "import os\nos.kill(os.getpid(), 9)")
    assert died.status == "error"
    assert died.reply["content"]["ename"] == "RuntimeDiedError"
    assert "state" in died.reply["content"]["evalue"] or "lost" in died.reply["content"]["evalue"]
    assert "SIGKILL" in died.reply["content"]["evalue"]
    assert died.of_type("error"), "the error must also be published on IOPub"
    assert km.is_alive()
    after = run_cell(kc, "print('keep' in globals(), circle_area(1.0), shout('ok'))")
    assert after.status == "ok", after.reply["content"]
    assert after.stream_text() == "False 3.141593 OK!\n"
