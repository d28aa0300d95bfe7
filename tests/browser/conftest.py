"""A JupyterLab 4 server and a headless Chromium for the browser tests.

One Lab server per test session, on 127.0.0.1 with a random token (passed in the
environment, never on a command line), serving a temporary folder with the test
kernelspecs on its JUPYTER_PATH. Chromium is Debian's (.ci/browser-setup.sh installs it;
Playwright's own browser downloads are not used): the tests fail, never skip, without it.
A failing test's screenshot is kept under the pytest base temp dir and its path printed.
"""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from _support.lab import Notebook
from _support.specs import REPO

CHROMIUM = Path("/usr/bin/chromium")
BROWSER_SETUP = REPO / ".ci" / "browser-setup.sh"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]
LAB_START_TIMEOUT_S = 90.0


@dataclass(frozen=True)
class LabServer:
    """A running JupyterLab: where it listens and how to authenticate."""

    url: str
    token: str
    root: Path
    log: Path

    def lab_url(self, path: str = "lab") -> str:
        """A page URL carrying the token."""
        return f"{self.url}/{path}?token={self.token}"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _answers(url: str, token: str) -> bool:
    request = urllib.request.Request(
        f"{url}/api/status", headers={"Authorization": f"token {token}"}
    )
    try:
        with urllib.request.urlopen(request, timeout=2) as response:
            return bool(response.status == 200)
    except OSError:
        return False


def _quiet_settings(directory: Path) -> Path:
    """User settings without the "get notified about Jupyter news?" toast.

    The toast sits over the lower right of the page and can cover what a test clicks.
    """
    target = directory / "@jupyterlab" / "apputils-extension" / "notification.jupyterlab-settings"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text('{"fetchNews": "false"}')
    return directory


@pytest.fixture(scope="session")
def lab_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabServer]:
    """Start ``jupyter lab`` once for the session; stop it at the end."""
    root = tmp_path_factory.mktemp("lab-root")
    log = root.parent / "jupyterlab.log"
    token = secrets.token_hex(24)
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "JUPYTER_TOKEN": token,
        # nothing from the machine's own Jupyter config or runtime dir
        "JUPYTER_CONFIG_DIR": str(root.parent / "jupyter-config"),
        "JUPYTER_RUNTIME_DIR": str(root.parent / "jupyter-runtime"),
        # kernels start with jedi's caches empty, as in an environment nobody has used:
        # the first completion then only appears if the kernel warmed them up in time
        "XDG_CACHE_HOME": str(root.parent / "cache"),
    }
    command = [
        sys.executable,
        "-m",
        "jupyterlab",
        "--no-browser",
        "--ServerApp.ip=127.0.0.1",
        f"--ServerApp.port={port}",
        "--ServerApp.port_retries=0",
        f"--ServerApp.root_dir={root}",
        "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
        "--LabApp.news_url=None",
        f"--LabApp.user_settings_dir={_quiet_settings(root.parent / 'lab-settings')}",
    ]
    if os.geteuid() == 0:  # CI and this machine run as root
        command.append("--allow-root")
    with log.open("wb") as log_file:
        proc = subprocess.Popen(
            command, env=env, stdout=log_file, stderr=subprocess.STDOUT, cwd=root
        )
    try:
        deadline = time.monotonic() + LAB_START_TIMEOUT_S
        while not _answers(url, token):
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(
                    f"JupyterLab did not start (exit {proc.poll()}); log {log}:\n"
                    + log.read_text(errors="replace")[-3000:]
                )
            time.sleep(0.2)
        yield LabServer(url, token, root, log)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Debian's headless Chromium under Playwright (installed on demand, never skipped).

    Module-scoped: Playwright's sync API keeps an asyncio loop running in this thread
    while it is open, which would break every later test that calls asyncio.run().
    """
    if not CHROMIUM.exists():
        subprocess.run(["bash", str(BROWSER_SETUP)], check=False)
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: run {BROWSER_SETUP} (apt-get install chromium)")
    from playwright.sync_api import expect, sync_playwright

    # Assertions wait for the page as a person would on a loaded 2-core CI machine; the
    # kernel's own promises are asserted by the jupyter_client-level tests.
    expect.set_options(timeout=30_000)
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
        )
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """Remember each phase's report on the item, for the screenshot-on-failure fixture."""
    report = yield
    setattr(item, f"report_{report.when}", report)
    if report.failed:
        _add_page_and_server_logs(item, report)
    return report


def _add_page_and_server_logs(item: pytest.Item, report: pytest.TestReport) -> None:
    """Attach the page's console errors and the end of JupyterLab's log (kernels' stderr
    included) to a failed phase's report: a failure on a CI machine is often only
    understood from them."""
    funcargs = getattr(item, "funcargs", {})
    notebook = funcargs.get("notebook_page")
    if isinstance(notebook, Notebook) and notebook.console:
        report.sections.append(("browser console", "\n".join(notebook.console[-60:])))
    server = funcargs.get("lab_server")
    if isinstance(server, LabServer) and server.log.exists():
        lines = server.log.read_text(errors="replace").splitlines()
        report.sections.append(("JupyterLab log (last 120 lines)", "\n".join(lines[-120:])))


@pytest.fixture(scope="session")
def failure_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where screenshots of failed browser tests are kept."""
    return tmp_path_factory.mktemp("browser-failures")


@pytest.fixture
def nb(
    notebook_page: Notebook, request: pytest.FixtureRequest, failure_dir: Path
) -> Iterator[Notebook]:
    """The module's notebook; a screenshot is kept when the test fails."""
    yield notebook_page
    report = getattr(request.node, "report_call", None)
    if report is not None and report.failed:
        shot = failure_dir / f"{request.node.name.replace('/', '_')}.png"
        notebook_page.page.screenshot(path=str(shot), full_page=True)
        print(f"screenshot of the failure: {shot}")
