"""%bridge lines are the kernel's, on every executor, with or without IPython in the session."""

from __future__ import annotations

from pathlib import Path

import pytest
from _support.kernel_client import run_cell
from _support.notebook_kernel import error_text, info_of, kernel_in
from _support.specs import DOCKER, DOCKER_RICH, LOCAL, BridgeSpec


@pytest.mark.parametrize("spec", [LOCAL, DOCKER, DOCKER_RICH], ids=lambda s: s.name)
def test_magics_never_reach_the_session(spec: BridgeSpec, tmp_path: Path) -> None:
    with kernel_in(spec.ready(), tmp_path) as kc:
        helped = run_cell(kc, "%bridge upload --help")
        unknown = run_cell(kc, "%bridge frobnicate --now")
        bad_option = run_cell(kc, "%bridge info --verbose")
        mixed = run_cell(kc, "# where am I?\n%bridge info\nvalue = 6 * 7\nprint(value)")
        misplaced = run_cell(kc, "print('before')\n%bridge info")
        alive = run_cell(kc, "print(value)")
    assert helped.status == "ok"
    assert helped.stream_text().startswith("usage: %bridge upload [-h] PATH [PATH ...]")
    assert unknown.status == "error"
    assert "invalid choice: 'frobnicate'" in error_text(unknown)
    assert unknown.reply["content"]["ename"] == "BridgeMagicError"
    assert "unrecognized arguments: --verbose" in error_text(bad_option)
    assert mixed.status == "ok"
    assert info_of(mixed)["executor"] == spec.name.split("-")[1]
    assert mixed.stream_text() == "42\n", "the code after the magics runs"
    assert misplaced.status == "error" and "must come first" in error_text(misplaced)
    assert "before" not in misplaced.stream_text(), "nothing of a refused cell runs"
    assert alive.stream_text() == "42\n"
