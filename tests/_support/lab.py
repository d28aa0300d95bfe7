"""A JupyterLab notebook page driven by Playwright, for the browser tests.

``open_notebook`` makes a notebook from the launcher's card of a test kernelspec and
waits until its kernel is idle; ``Notebook`` runs cells from the end of it and reads
their output, as a person would.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from _support.specs import BridgeSpec

CELL_TIMEOUT_MS = 120_000
DONE_PROMPT = re.compile(r"^\[\d+\]:$")


class Notebook:
    """One open notebook page with a running kernel; cells are run from its end."""

    def __init__(self, page: Any, spec: BridgeSpec) -> None:
        self.page = page
        self.spec = spec
        # what the page printed as errors and warnings, shown with a failed test: the
        # frontend's reasons (e.g. "Could not toggle the debugger: ...") are only there
        self.console: list[str] = []
        page.on("console", self._on_console)
        page.on("pageerror", lambda error: self.console.append(f"pageerror: {error}"))

    def _on_console(self, message: Any) -> None:
        if message.type in ("error", "warning"):
            self.console.append(f"{message.type}: {message.text}")

    @property
    def cells(self) -> Any:
        return self.page.locator(".jp-NotebookPanel:visible .jp-Notebook .jp-Cell")

    def type_in_last_cell(self, code: str) -> Any:
        """Put code into the last cell, emptied first; return that cell.

        A test that failed half-way may have left text there; typed after it, the next
        test's code would fail for that reason instead of its own.
        """
        cell = self.cells.nth(self.cells.count() - 1)
        editor = cell.locator(".cm-content")
        editor.click()
        if editor.inner_text().strip():
            self.page.keyboard.press("Control+a")
            self.page.keyboard.press("Delete")
        # insert_text: no key events, so no auto-indent or auto-closed brackets
        self.page.keyboard.insert_text(code)
        return cell

    def complete_and_pick(self, prefix: str, pick: str, also: str) -> Any:
        """Type ``prefix`` in the last cell, press Tab, check the completer lists ``pick``
        and ``also``, click ``pick``; return the cell.

        JupyterLab sometimes closes its completer list a moment after showing it (a
        focus or layout change of the page); then Escape and Tab ask again, as a person
        would. Each attempt still needs the kernel's answer within JupyterLab's 1 s
        provider timeout, so a slow first completion still fails.
        """
        from playwright.sync_api import Error, expect

        cell = self.type_in_last_cell(prefix)
        item = self.page.locator(".jp-Completer-item").filter(has_text=pick)
        other = self.page.locator(".jp-Completer-item").filter(has_text=also)
        for attempt in range(3):
            self.page.keyboard.press("Tab")
            # JupyterLab renders no item from an answer later than 1 s: one in the page
            # means the kernel answered in time, whether or not the list is still shown
            expect(item).to_be_attached()
            try:
                # the list may be hidden again by now (both items still in the page)
                expect(item).to_be_visible(timeout=5_000)
                expect(other).to_be_visible(timeout=5_000)
                item.click(timeout=5_000)
                break
            except (Error, AssertionError):
                if attempt == 2:
                    raise
                self.page.keyboard.press("Escape")
                cell.locator(".cm-content").click()
                self.page.keyboard.press("End")
        return cell

    def run(self, code: str, *, wait: bool = True) -> Any:
        """Run code in a new cell at the end (Shift+Enter); wait until it finished."""
        cell = self.type_in_last_cell(code)
        self.page.keyboard.press("Shift+Enter")
        if wait:
            self.wait_done(cell)
        return cell

    def wait_done(self, cell: Any) -> None:
        from playwright.sync_api import expect

        expect(cell.locator(".jp-InputPrompt")).to_have_text(DONE_PROMPT, timeout=CELL_TIMEOUT_MS)

    def output_text(self, cell: Any) -> str:
        return str(cell.locator(".jp-OutputArea").inner_text())

    def toolbar(self, command: str) -> Any:
        return self.page.locator(f".jp-NotebookPanel:visible [data-command='{command}']").first

    def menu(self, menu: str, item: str) -> None:
        """Click an item of the main menu bar (e.g. "Kernel", "Interrupt Kernel")."""
        self.page.get_by_role("menuitem", name=menu, exact=True).click()
        label = re.compile(rf"^{re.escape(item)}…?$")  # "Restart Kernel…" opens a dialog
        self.page.locator(".lm-Menu-itemLabel").filter(has_text=label).click()


@contextmanager
def open_notebook(
    spec: BridgeSpec, lab_server: Any, browser: Any, workspace: str = ""
) -> Iterator[Notebook]:
    """A notebook made from the launcher's card for the spec's kernel, kernel idle.

    Each test module names its own ``workspace`` (default: the spec's): JupyterLab
    restores a workspace's open notebooks, and a restored layout shows no launcher.
    """
    from playwright.sync_api import expect

    spec.ready()
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(60_000)
    # a workspace of its own: a fresh layout showing the launcher
    page.goto(lab_server.lab_url(f"lab/workspaces/kb-{workspace or spec.name}"))
    card = page.locator(
        f".jp-LauncherCard[data-category='Notebook'][title='kernel_bridge test ({spec.name})']"
    )
    expect(card).to_be_visible(timeout=90_000)
    card.click()
    expect(page.locator(".jp-NotebookPanel:visible .jp-Notebook .jp-Cell")).to_have_count(1)
    # the status bar names the kernel and its state only once the session has a kernel
    kernel_status = page.locator(".jp-StatusBar-Widget").filter(
        has_text=re.compile(rf"kernel_bridge test \({re.escape(spec.name)}\) \| Idle")
    )
    expect(kernel_status).to_be_visible(timeout=CELL_TIMEOUT_MS)
    try:
        yield Notebook(page, spec)
    finally:
        context.close()
