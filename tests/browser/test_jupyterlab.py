"""JupyterLab 4 in headless Chromium, on the local and Docker (rich image) kernels.

What a person does in the page: pick the kernel in the launcher, run cells and read
Out, watch output stream, see rich output, interrupt and restart from the toolbar,
answer input(), complete a name, and use widgets (a slider rendered, moved in the page
and moved by code; a tqdm.notebook bar reaching 100%).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from _support.lab import CELL_TIMEOUT_MS, Notebook, open_notebook
from _support.lab_cases import (
    restart_from_the_toolbar_clears_state,
    slider_follows_both_sides,
    tqdm_bar_reaches_100_percent,
)
from _support.specs import DOCKER_RICH, LOCAL

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module", params=[LOCAL, DOCKER_RICH], ids=lambda s: s.name)
def notebook_page(
    request: pytest.FixtureRequest, lab_server: Any, browser: Any
) -> Iterator[Notebook]:
    """A notebook made from the launcher's card for the spec's kernel, kernel idle."""
    with open_notebook(request.param, lab_server, browser) as notebook:
        yield notebook


def test_run_shows_out(nb: Notebook) -> None:
    cell = nb.run("6 * 7")
    result = cell.locator(".jp-OutputArea-executeResult")
    assert result.inner_text().strip().endswith("42")


def test_output_streams_while_the_cell_runs(nb: Notebook) -> None:
    from playwright.sync_api import expect

    cell = nb.run(
        "import time\nfor i in range(3):\n    print('tick', i, flush=True)\n    time.sleep(1.5)",
        wait=False,
    )
    expect(cell.locator(".jp-OutputArea")).to_contain_text("tick 0", timeout=CELL_TIMEOUT_MS)
    assert "tick 2" not in nb.output_text(cell)
    assert cell.locator(".jp-InputPrompt").inner_text() == "[*]:"
    nb.wait_done(cell)
    assert "tick 2" in nb.output_text(cell)


def test_rich_output_renders(nb: Notebook) -> None:
    cell = nb.run("from IPython.display import HTML\nHTML('<b class=\"kb-rich\">rich</b>')")
    assert cell.locator("b.kb-rich").inner_text() == "rich"


def test_interrupt_from_the_toolbar(nb: Notebook) -> None:
    from playwright.sync_api import expect

    cell = nb.run("import time\ntime.sleep(300)", wait=False)
    expect(cell.locator(".jp-InputPrompt")).to_have_text("[*]:")
    nb.toolbar("notebook:interrupt-kernel").click()
    nb.wait_done(cell)
    assert "KeyboardInterrupt" in nb.output_text(cell)


def test_input_is_answered_in_the_page(nb: Notebook) -> None:
    from playwright.sync_api import expect

    cell = nb.run("name = input('who? ')\nprint('hello', name)", wait=False)
    box = cell.locator(".jp-Stdin-input")
    expect(box).to_be_visible(timeout=CELL_TIMEOUT_MS)
    box.fill("ada")
    box.press("Enter")
    nb.wait_done(cell)
    assert "hello ada" in nb.output_text(cell)


def test_completion_from_the_live_namespace(nb: Notebook) -> None:
    from playwright.sync_api import expect

    nb.run("kb_completion_target = 1\nkb_completion_other = 2")
    # a prefix of two names, so JupyterLab lists them (a single match is inserted at once)
    # JupyterLab drops an answer slower than 1 s, so this fails if the kernel did not
    # warm jedi up before the first completion (the server gives kernels an empty cache)
    cell = nb.complete_and_pick(
        "kb_completion_", "kb_completion_target", also="kb_completion_other"
    )
    expect(cell.locator(".cm-content")).to_have_text("kb_completion_target")
    nb.page.keyboard.press("Shift+Enter")
    nb.wait_done(cell)
    assert nb.output_text(cell).strip().endswith("1")


def test_slider_renders_and_follows_both_sides(nb: Notebook) -> None:
    slider_follows_both_sides(nb)


def test_tqdm_notebook_bar_reaches_100_percent(nb: Notebook) -> None:
    tqdm_bar_reaches_100_percent(nb)


def test_restart_from_the_toolbar_clears_state(nb: Notebook) -> None:
    restart_from_the_toolbar_clears_state(nb)
