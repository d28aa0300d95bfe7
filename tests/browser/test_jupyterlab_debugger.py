"""JupyterLab's visual debugger in headless Chromium, on the local and Docker (rich) kernels.

What a person does: switch the debugger on with the bug icon, click the gutter of a
cell's line to set a breakpoint, run the cell and see it stop there (the cell's line
highlighted in the notebook, "Cell [*]:2" in the call stack, the cell's variables in the
variables panel), continue and see the cell finish; and, while stopped, interrupt or
restart the kernel and keep using it. Each test leaves the debugger switched off.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from _support.lab import CELL_TIMEOUT_MS, Notebook, open_notebook
from _support.specs import DOCKER_RICH, LOCAL

pytestmark = pytest.mark.slow

# line 2 is where the breakpoint goes; kb_dbg_first is set by then, kb_dbg_second is not
CELL = "kb_dbg_first = 21\nkb_dbg_second = kb_dbg_first * 2\nprint('kb_dbg_done', kb_dbg_second)"
BREAK_LINE = 2


@pytest.fixture(params=[LOCAL, DOCKER_RICH], ids=lambda s: s.name)
def notebook_page(
    request: pytest.FixtureRequest, lab_server: Any, browser: Any
) -> Iterator[Notebook]:
    """A new page and notebook (and kernel) for each test, kernel idle.

    Not one page for the module: with a third debugging session in one page, JupyterLab
    itself sometimes lost its notebook toolbar's buttons or never showed the breakpoint
    gutter on a loaded machine while the kernel had answered every request; each case
    here is what a person sees in a notebook they just opened.
    """
    test = re.sub(r"[^a-z0-9]+", "-", request.node.originalname)
    workspace = f"debugger-{request.param.name}-{test}"  # a fresh layout
    with open_notebook(request.param, lab_server, browser, workspace) as notebook:
        yield notebook


class Debugger:
    """The debugger's parts of the page: the bug icon and the sidebar's panels."""

    def __init__(self, nb: Notebook) -> None:
        self.nb = nb
        self.page = nb.page
        self.bug = self.page.locator(".jp-NotebookPanel:visible .jp-DebuggerBugButton").first
        self.breakpoints = self.page.locator(".jp-DebuggerBreakpoints-body")
        self.callstack = self.page.locator(".jp-DebuggerCallstack-body")
        self.variables = self.page.locator(
            ".jp-DebuggerVariables-body:visible .jp-DebuggerVariables-name"
        )
        self.continue_button = self.page.locator("jp-button[title^='Continue']")

    def switch(self, on: bool) -> None:
        """Click the bug icon if the debugger is not already in the wanted state."""
        from playwright.sync_api import expect

        wanted = "true" if on else "false"
        expect(self.bug).to_be_enabled()
        if self.bug.get_attribute("aria-pressed") != wanted:
            self.bug.click()
        expect(self.bug).to_have_attribute("aria-pressed", wanted)
        # the button shows the new state at once; the cells get (or lose) their
        # breakpoint gutter only when the debugger has really started (or stopped)
        gutters = self.page.locator(".jp-NotebookPanel:visible .cm-breakpoint-gutter")
        if on:
            # starting debugpy in a container just restarted took over 30 s once on a
            # loaded CI machine; no promise is made about it
            expect(gutters.first).to_be_visible(timeout=CELL_TIMEOUT_MS)
        else:
            expect(gutters).to_have_count(0)

    def cell_with_breakpoint(self, code: str, line: int) -> Any:
        """Type code into a new cell (not run) and set a breakpoint on a line's gutter."""
        from playwright.sync_api import expect

        cell = self.nb.type_in_last_cell(code)
        gutter = cell.locator(".cm-breakpoint-gutter .cm-gutterElement")
        # the gutter's first element is CodeMirror's spacer: line n is element n
        gutter.nth(line).click()
        expect(self.breakpoints).to_contain_text(re.compile(rf"Cell \[.*\]\s*{line}"))
        return cell

    def run_until_stopped(self, cell: Any) -> None:
        """Run the cell (Shift+Enter) and wait until it is stopped at the breakpoint."""
        from playwright.sync_api import expect

        cell.locator(".cm-content").click()
        self.nb.page.keyboard.press("Shift+Enter")
        expect(self.callstack).to_contain_text(
            re.compile(rf"Cell \[\*\]:\s*{BREAK_LINE}"), timeout=CELL_TIMEOUT_MS
        )
        expect(cell.locator(".jp-InputPrompt")).to_have_text("[*]:")


@pytest.fixture
def dbg(nb: Notebook) -> Iterator[Debugger]:
    """The page's debugger, switched on; switched off again afterwards."""
    debugger = Debugger(nb)
    debugger.switch(True)
    yield debugger
    debugger.switch(False)


def test_bug_icon_is_enabled_and_toggles(nb: Notebook) -> None:
    from playwright.sync_api import expect

    debugger = Debugger(nb)
    expect(debugger.bug).to_be_enabled()
    expect(debugger.bug).to_have_attribute("aria-pressed", "false")
    debugger.switch(True)
    debugger.switch(False)


def test_breakpoint_in_a_cell_stops_shows_variables_and_continues(
    nb: Notebook, dbg: Debugger
) -> None:
    from playwright.sync_api import expect

    cell = dbg.cell_with_breakpoint(CELL, BREAK_LINE)
    # JupyterLab names a cell's file "Cell [n]" only when it recognises the kernel's path
    expect(dbg.breakpoints).to_contain_text("Cell [ ]")
    expect(dbg.breakpoints).not_to_contain_text("/tmp/")
    dbg.run_until_stopped(cell)
    # the stopped line is highlighted in the notebook's own cell, not in a copy of it
    expect(cell.locator(".jp-DebuggerEditor-highlight")).to_have_count(1)
    expect(cell.locator(".jp-DebuggerEditor-highlight")).to_contain_text("kb_dbg_second =")
    expect(nb.page.locator(".lm-TabBar-tab").filter(has_text=re.compile(r"\.py$"))).to_have_count(0)
    expect(dbg.variables.filter(has_text="kb_dbg_first")).to_have_count(1)
    expect(dbg.variables.filter(has_text="kb_dbg_second")).to_have_count(0)
    assert "kb_dbg_done" not in nb.output_text(cell)
    dbg.continue_button.click()
    nb.wait_done(cell)
    # nothing else: no debugger warning (pydevd's "frozen modules") among the output
    assert nb.output_text(cell).strip() == "kb_dbg_done 42"
    expect(dbg.callstack).not_to_contain_text("Cell [")


def test_interrupt_while_stopped_ends_the_cell_and_the_kernel_runs_on(
    nb: Notebook, dbg: Debugger
) -> None:
    cell = dbg.cell_with_breakpoint(CELL.replace("kb_dbg", "kb_int"), BREAK_LINE)
    dbg.run_until_stopped(cell)
    nb.menu("Kernel", "Interrupt Kernel")
    nb.wait_done(cell)
    output = nb.output_text(cell)
    assert "KeyboardInterrupt" in output
    assert "kb_int_done 42" not in output  # stopped before the print
    after = nb.run("print('after', 6 * 7)")
    assert nb.output_text(after).strip() == "after 42"


def test_restart_while_stopped_gives_a_fresh_usable_kernel(nb: Notebook, dbg: Debugger) -> None:
    from playwright.sync_api import expect

    cell = dbg.cell_with_breakpoint(CELL.replace("kb_dbg", "kb_rst"), BREAK_LINE)
    dbg.run_until_stopped(cell)
    nb.menu("Kernel", "Restart Kernel")
    nb.page.locator(".jp-Dialog .jp-mod-accept").click()
    idle = nb.page.locator(".jp-StatusBar-Widget").filter(has_text=re.compile(r"\| Idle"))
    expect(idle.first).to_be_visible(timeout=CELL_TIMEOUT_MS)
    after = nb.run("print('kb_rst_first' in globals(), 6 * 7)")
    assert nb.output_text(after).strip() == "False 42"
