"""JupyterLab 4 in headless Chromium on the ACA kernel, through the emulator.

The same things a person does as in test_jupyterlab.py, with what an ACA session can
and cannot give: the service returns a cell's output when the execution ends (no live
stream; on the executions API versions a status line is updated while the cell runs),
has no remote cancel (an interrupt ends the cell at once and says so) and no stdin
channel; widgets work, their comm messages riding on executions (each move in the page
is a short execution in the session). Each case asserts what the page shows.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from _support.lab import CELL_TIMEOUT_MS, Notebook, open_notebook
from _support.lab_cases import (
    restart_from_the_toolbar_clears_state,
    slider_follows_both_sides,
    tqdm_bar_reaches_100_percent,
)
from _support.specs import ACA_LOCAL, ACA_LOCAL_NEWEST

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module", params=[ACA_LOCAL, ACA_LOCAL_NEWEST], ids=lambda s: s.name)
def notebook_page(
    request: pytest.FixtureRequest, lab_server: Any, browser: Any
) -> Iterator[Notebook]:
    """A notebook on an ACA kernel (emulated pool), kernel idle."""
    with open_notebook(request.param, lab_server, browser) as notebook:
        yield notebook


def test_run_shows_out(nb: Notebook) -> None:
    cell = nb.run("6 * 7")
    assert nb.output_text(cell).strip().endswith("42")


def test_output_arrives_when_the_cell_ends(nb: Notebook) -> None:
    from playwright.sync_api import expect

    cell = nb.run(
        "import time\nfor i in range(3):\n    print('tick', i, flush=True)\n    time.sleep(2)",
        wait=False,
    )
    if nb.spec is ACA_LOCAL_NEWEST:
        # polled executions: one status line, updated in place while the cell runs
        expect(cell.locator(".jp-OutputArea")).to_contain_text(
            "still running in the ACA session", timeout=CELL_TIMEOUT_MS
        )
        assert cell.locator(".jp-InputPrompt").inner_text() == "[*]:"
    nb.wait_done(cell)
    text = nb.output_text(cell)
    assert all(f"tick {i}" in text for i in range(3))


def test_rich_output_renders(nb: Notebook) -> None:
    cell = nb.run("from IPython.display import HTML\nHTML('<b class=\"kb-rich\">rich</b>')")
    assert cell.locator("b.kb-rich").inner_text() == "rich"


def test_interrupt_ends_the_cell_and_says_what_became_of_the_remote_run(nb: Notebook) -> None:
    from playwright.sync_api import expect

    cell = nb.run("import time\ntime.sleep(5)\nkb_after_sleep = 1", wait=False)
    expect(cell.locator(".jp-InputPrompt")).to_have_text("[*]:")
    nb.toolbar("notebook:interrupt-kernel").click()
    nb.wait_done(cell)
    text = nb.output_text(cell)
    assert "KeyboardInterrupt" in text
    assert "ACA" in text or "session" in text  # it says the remote execution goes on
    # the next cell waits for the abandoned one, then sees what it did
    check = nb.run("kb_after_sleep")
    assert nb.output_text(check).strip().endswith("1")


def test_input_ends_with_a_clear_error_not_a_hang(nb: Notebook) -> None:
    cell = nb.run("name = input('who? ')")
    assert cell.locator(".jp-Stdin-input").count() == 0
    text = nb.output_text(cell)
    assert re.search(r"StdinNotImplementedError|EOFError|stdin|input", text), text


def test_completion_from_the_live_namespace(nb: Notebook) -> None:
    from playwright.sync_api import expect

    nb.run("kb_completion_target = 1\nkb_completion_other = 2")
    # a prefix of two names, so JupyterLab lists them (a single match is inserted at once)
    # JupyterLab drops an answer slower than 1 s: one short execution in the session
    cell = nb.complete_and_pick(
        "kb_completion_", "kb_completion_target", also="kb_completion_other"
    )
    expect(cell.locator(".cm-content")).to_have_text("kb_completion_target")
    nb.page.keyboard.press("Shift+Enter")
    nb.wait_done(cell)
    assert nb.output_text(cell).strip().endswith("1")


def test_slider_renders_and_follows_both_sides(nb: Notebook) -> None:
    """Comms ride on executions: each move in the page is a short one in the session."""
    slider_follows_both_sides(nb, forbidden=("Error displaying widget", "not interactive"))


def test_tqdm_notebook_bar_reaches_100_percent(nb: Notebook) -> None:
    tqdm_bar_reaches_100_percent(nb)


def test_restart_from_the_toolbar_clears_state(nb: Notebook) -> None:
    restart_from_the_toolbar_clears_state(nb)
