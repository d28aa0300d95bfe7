"""One table of rich-output cases, run through both paths that load the in-session library.

- ``local``: the runtime (``kb_runtime.py`` importing ``kb_library.py``) in a real
  subprocess, through the local executor;
- ``aca``: the ACA executor over real HTTP to the emulator, whose session loads the same
  library through the output shim (``kb_aca_session.py``) and frames its outputs;
- ``docker``: the runtime in a container (the bootstrap sends both sources on stdin).

Each runs with IPython (the formatters are IPython's, the shell hooks ours) and as plain
Python (the library formats), and every case expects the same outputs from both paths.
"""

from __future__ import annotations

import asyncio
import base64
import os
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from _support.environments import MINIMAL_IMAGE, RICH_IMAGE, require_docker

from kernel_bridge.emulator import Emulator, EmulatorConfig
from kernel_bridge.events import ClearOutput, Display, Error, Event, Finished, Result, Stream
from kernel_bridge.executors.aca import ACADynamicSessionsCodeExecutor
from kernel_bridge.executors.aca._credentials import StaticToken
from kernel_bridge.executors.base import RemoteExecutor
from kernel_bridge.executors.docker import DockerCommandLineCodeExecutor
from kernel_bridge.executors.local import LocalExecutor

TOKEN = "library-rich-output-token-0123456789"
# The smallest valid PNG (1x1 transparent pixel).
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="
)
PNG_B64 = base64.b64encode(PNG).decode()
SVG = '<svg xmlns="http://www.w3.org/2000/svg" width="1" height="1"/>'


def rich(name: str, **methods: str) -> str:
    """Source of a class ``name`` with a fixed repr and the given ``_repr_*_`` bodies."""
    body = "".join(
        f"    def _repr_{kind}_(self):\n        return {value}\n" for kind, value in methods.items()
    )
    return f"class {name}:\n    def __repr__(self):\n        return {name!r}\n{body}"


@dataclass(frozen=True)
class Case:
    """A cell and what it shows: outputs in order, stdout, and the problem it reports.

    ``reported`` must appear in what the cell reports (an error output, or stderr: the
    ACA data plane has no error output for a cell that goes on); nothing else may.
    """

    code: str
    outputs: list[Event]
    stdout: str = ""
    reported: str = ""


CASES: dict[str, Case] = {
    "text/plain value keeps its JSON": Case("6 * 7", [Result({"text/plain": "42"}, {}, 42)]),
    "None shows nothing": Case("None", []),
    "html display between prints": Case(
        rich("H", html="'<b>bridge</b>'") + "print('a')\ndisplay(H())\nprint('b')",
        [Display({"text/html": "<b>bridge</b>", "text/plain": "H"})],
        stdout="a\nb\n",
    ),
    "png from bytes, as base64": Case(
        rich("P", png=repr(PNG)) + "display(P())",
        [Display({"image/png": PNG_B64, "text/plain": "P"})],
    ),
    "png with metadata": Case(
        rich("PM", png=f"({PNG!r}, {{'width': 10}})") + "display(PM())",
        [Display({"image/png": PNG_B64, "text/plain": "PM"}, {"image/png": {"width": 10}})],
    ),
    "svg": Case(
        rich("S", svg=repr(SVG)) + "S()",
        [Result({"image/svg+xml": SVG, "text/plain": "S"})],
    ),
    "latex": Case(
        rich("L", latex="'$x^2$'") + "L()",
        [Result({"text/latex": "$x^2$", "text/plain": "L"})],
    ),
    "json": Case(
        rich("J", json="{'a': [1, 2]}") + "display(J())",
        [Display({"application/json": {"a": [1, 2]}, "text/plain": "J"})],
    ),
    "markdown": Case(
        rich("M", markdown="'# title'") + "M()",
        [Result({"text/markdown": "# title", "text/plain": "M"})],
    ),
    "mimebundle with text bytes (application/x-latex is text)": Case(
        "class B:\n"
        "    def _repr_mimebundle_(self, include=None, exclude=None):\n"
        "        return {'application/x-latex': b'$y$', 'text/plain': 'B'}\n"
        "display(B())",
        [Display({"application/x-latex": "$y$", "text/plain": "B"})],
    ),
    "raw display": Case(
        "display({'text/plain': 'raw', 'text/html': '<i>raw</i>'}, raw=True)",
        [Display({"text/plain": "raw", "text/html": "<i>raw</i>"})],
    ),
    "display updates": Case(
        "h = display('one', display_id='progress')\n"
        "update_display('two', display_id='progress')\n"
        "h.update('three')",
        [
            Display({"text/plain": "'one'"}, {}, "progress", False),
            Display({"text/plain": "'two'"}, {}, "progress", True),
            Display({"text/plain": "'three'"}, {}, "progress", True),
        ],
    ),
    "clear_output": Case(
        "print('gone')\nclear_output(wait=True)\nprint('after')\nclear_output()",
        [ClearOutput(wait=True), ClearOutput(wait=False)],
        stdout="gone\nafter\n",
    ),
    "a failing _repr_ is reported, the text stays": Case(
        "class F:\n"
        "    def __repr__(self):\n        return 'F'\n"
        "    def _repr_html_(self):\n        raise ValueError('bad html')\n"
        "F()",
        [Result({"text/plain": "F"})],
        reported="ValueError: bad html",
    ),
}


class Token:
    """A credential the emulator accepts."""

    def get_token(self, *scopes: str, **kwargs: Any) -> StaticToken:
        return StaticToken(TOKEN, int(time.time()) + 3600)


@pytest.fixture(scope="module")
def emulator() -> Iterator[Emulator]:
    emulator = Emulator(EmulatorConfig(token=TOKEN)).start()
    yield emulator
    emulator.stop()


class Running:
    """A started executor and the event loop it lives on (one per path and mode)."""

    def __init__(self, executor: RemoteExecutor) -> None:
        self.executor = executor
        self.loop = asyncio.new_event_loop()

    def run(self, code: str) -> list[Event]:
        async def collect() -> list[Event]:
            return [event async for event in self.executor.execute(code)]

        return self.loop.run_until_complete(asyncio.wait_for(collect(), 120))


@pytest.fixture(
    scope="module",
    params=[
        "local-ipython",
        "aca-ipython",
        "local-plain",
        "aca-plain",
        pytest.param("docker-ipython", marks=pytest.mark.docker),
        pytest.param("docker-plain", marks=pytest.mark.docker),
    ],
)
def path(request: pytest.FixtureRequest, emulator: Emulator) -> Iterator[tuple[str, Running]]:
    kind, mode = str(request.param).split("-")
    executor: RemoteExecutor
    if kind == "local":
        executor = LocalExecutor()
    elif kind == "aca":
        executor = ACADynamicSessionsCodeExecutor(emulator.endpoint, credential=Token())
    else:
        require_docker()
        executor = DockerCommandLineCodeExecutor(
            image=RICH_IMAGE if mode == "ipython" else MINIMAL_IMAGE
        )
    running = Running(executor)
    # The runtime (local, or the emulator's session) reads this as it starts.
    with pytest.MonkeyPatch.context() as env:
        if mode == "plain":
            env.setenv("KB_RUNTIME_NO_IPYTHON", "1")
        else:
            env.delenv("KB_RUNTIME_NO_IPYTHON", raising=False)
        running.loop.run_until_complete(executor.start())
        if isinstance(executor, ACADynamicSessionsCodeExecutor):
            assert executor._shim_mode == mode
    # each path really runs the mode it is named after
    events = running.run("print('get_ipython' in globals())")
    assert Stream("stdout", f"{mode == 'ipython'}\n") in events
    assert "KB_RUNTIME_NO_IPYTHON" not in os.environ or mode == "plain"
    yield mode, running
    running.loop.run_until_complete(executor.stop())
    running.loop.close()


@pytest.mark.parametrize("name", list(CASES))
def test_rich_output_is_the_same_on_every_path(name: str, path: tuple[str, Running]) -> None:
    mode, running = path
    case = CASES[name]
    events = running.run(case.code)
    assert events[-1] == Finished(0), events
    stdout = "".join(e.text for e in events if isinstance(e, Stream) and e.name == "stdout")
    stderr = "".join(e.text for e in events if isinstance(e, Stream) and e.name == "stderr")
    errors = "".join(f"{e.ename}: {e.evalue}\n" for e in events if isinstance(e, Error))
    assert [e for e in events[:-1] if not isinstance(e, Stream | Error)] == case.outputs
    assert stdout == case.stdout
    if case.reported:
        assert case.reported in stderr + errors
    else:
        assert stderr + errors == ""
    if case.reported and mode == "plain":
        # The library reports a failing _repr_*_ on stderr, naming the method.
        assert stderr.startswith("Exception in _repr_html_:\nTraceback")


def test_completion_and_inspection_are_the_same_on_every_path(path: tuple[str, Running]) -> None:
    mode, running = path
    executor, loop = running.executor, running.loop
    assert running.run("alpha_value = 1\ndef beta(x, y=2):\n    'Beta help.'\n")[-1] == Finished(0)
    completion = loop.run_until_complete(executor.complete("x = alpha_v", 11))
    assert (completion.matches, completion.cursor_start, completion.cursor_end) == (
        ["alpha_value"],
        4,
        11,
    )
    # callables complete without the "(" rlcompleter adds
    completion = loop.run_until_complete(executor.complete("bet", 3))
    assert completion.matches == ["beta"]
    # the cursor after a closed inner call still names the outer call
    code = "beta(len([1]), "
    inspection = loop.run_until_complete(executor.inspect(code, len(code)))
    assert inspection.found
    text = re.sub(r"\x1b\[[0-9;]*m", "", inspection.data["text/plain"])  # IPython's colours
    assert "Beta help." in text and "y=2" in text
    if mode == "plain":
        assert text.startswith("Name:      beta\nType:      function\nString form: <function beta")
    missing = loop.run_until_complete(executor.inspect("no_such_name_xyz", 16))
    assert not missing.found
