"""Browser cases that read the same on every kernel, called by each browser test module.

Each module (local/Docker, ACA) keeps its own test functions, so a report names the
kernel; the steps and assertions that do not depend on it live here once.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from _support.lab import CELL_TIMEOUT_MS, Notebook


def slider_follows_both_sides(
    nb: Notebook, forbidden: Sequence[str] = ("Error displaying widget",)
) -> None:
    """An IntSlider renders; moved in the page the code sees it, set by code the page follows."""
    from playwright.sync_api import expect

    cell = nb.run("import ipywidgets as w\ns = w.IntSlider(5)\ns")
    slider = cell.locator(".widget-slider")
    expect(slider).to_be_visible()
    readout = cell.locator(".widget-readout")
    expect(readout).to_have_text("5")
    text = nb.output_text(cell)
    assert not [word for word in forbidden if word in text], text
    # moved in the page: the value changes where the code runs
    cell.locator(".noUi-handle").first.focus()
    nb.page.keyboard.press("ArrowRight")
    expect(readout).to_have_text("6")
    check = nb.run("s.value")
    assert nb.output_text(check).strip().endswith("6")
    # moved by the code: the slider in the page follows
    nb.run("s.value = 7")
    expect(readout).to_have_text("7")


def tqdm_bar_reaches_100_percent(nb: Notebook) -> None:
    """tqdm.notebook's widget bar ends at 100% and 40/40."""
    from playwright.sync_api import expect

    cell = nb.run("from tqdm.notebook import tqdm\nfor i in tqdm(range(40)):\n    pass")
    expect(cell.locator(".widget-html-content").first).to_contain_text("100%")
    expect(cell.locator(".widget-html-content").last).to_contain_text("40/40")
    assert "Error displaying widget" not in nb.output_text(cell)


def restart_from_the_toolbar_clears_state(nb: Notebook) -> None:
    """The toolbar's restart (confirmed) gives an idle kernel without the old names."""
    from playwright.sync_api import expect

    nb.run("kb_marker = 1")
    nb.toolbar("notebook:restart-kernel").click()
    nb.page.locator(".jp-Dialog .jp-mod-accept").click()
    idle = nb.page.locator(".jp-StatusBar-Widget").filter(has_text=re.compile(r"\| Idle"))
    expect(idle.first).to_be_visible(timeout=CELL_TIMEOUT_MS)
    cell = nb.run("'kb_marker' in globals()")
    assert nb.output_text(cell).strip().endswith("False")
