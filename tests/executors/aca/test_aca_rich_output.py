"""Rich output, completion and inspection of the ACA executor, over real HTTP to the emulator.

The emulator's local backend runs IPython when it is importable (as the service does);
``KB_RUNTIME_NO_IPYTHON=1`` makes its runtime plain Python, where the shim wraps the
display builtins and the executor wraps the cell's last expression instead.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import time
from pathlib import Path
from typing import Any

import pytest

from kernel_bridge.emulator import Emulator
from kernel_bridge.events import ClearOutput, Display, Error, Event, Finished, Result, Stream
from kernel_bridge.executors.aca import ACADynamicSessionsCodeExecutor
from kernel_bridge.executors.aca._shim import session_payload

from .conftest import CountingCredential

# The smallest valid PNG (1x1 transparent pixel).
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="
)
HTML_CLASS = "class H:\n    def _repr_html_(self):\n        return '<b>bridge</b>'\n"


@pytest.fixture(params=["ipython", "plain"])
def mode(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Which runtime the emulated session uses (the session inherits this environment)."""
    if request.param == "plain":
        monkeypatch.setenv("KB_RUNTIME_NO_IPYTHON", "1")
    else:
        monkeypatch.delenv("KB_RUNTIME_NO_IPYTHON", raising=False)
    return str(request.param)


def make(emulator: Emulator, **kwargs: Any) -> ACADynamicSessionsCodeExecutor:
    kwargs.setdefault("credential", CountingCredential())
    return ACADynamicSessionsCodeExecutor(emulator.endpoint, **kwargs)


async def run(executor: ACADynamicSessionsCodeExecutor, code: str) -> list[Event]:
    events = [event async for event in executor.execute(code)]
    assert isinstance(events[-1], Finished), events
    return events


def outputs(events: list[Event]) -> list[Event]:
    return [e for e in events if not isinstance(e, Finished)]


def test_html_display_result_and_interleaving(emulator: Emulator, mode: str) -> None:
    async def main() -> None:
        async with make(emulator) as ex:
            assert ex._shim_mode == mode  # the session says which hooks it installed
            events = await run(
                ex,
                HTML_CLASS + "print('a')\ndisplay(H())\nprint('b')\n"
                "display({'text/plain': 'raw'}, raw=True)\nprint('c', end='')\nH()",
            )
            kinds = [
                (type(e).__name__, e.text if isinstance(e, Stream) else None)
                for e in outputs(events)
            ]
            assert kinds == [
                ("Stream", "a\n"),
                ("Display", None),
                ("Stream", "b\n"),
                ("Display", None),
                ("Stream", "c"),
                ("Result", None),
            ]
            shown = [e for e in events if isinstance(e, Display)]
            assert shown[0].data["text/html"] == "<b>bridge</b>"
            assert shown[1].data == {"text/plain": "raw"}
            result = next(e for e in events if isinstance(e, Result))
            assert result.data["text/html"] == "<b>bridge</b>"
            assert "H" in result.data["text/plain"]
            assert events[-1] == Finished(0)
            # primitive values keep their JSON value, and `_` is the last value
            events = await run(ex, "6 * 7")
            assert [e for e in events if isinstance(e, Result)] == [
                Result({"text/plain": "42"}, {}, 42)
            ]
            events = await run(ex, "_ + 1")
            assert [e.data["text/plain"] for e in events if isinstance(e, Result)] == ["43"]

    asyncio.run(main())


def test_update_display_and_clear_output(emulator: Emulator, mode: str) -> None:
    async def main() -> None:
        async with make(emulator) as ex:
            events = await run(
                ex,
                "h = display('one', display_id='progress')\n"
                "update_display('two', display_id='progress')\n"
                "h.update('three')\n"
                "clear_output(wait=True)\n"
                "print('after')",
            )
            assert outputs(events) == [
                Display({"text/plain": "'one'"}, {}, "progress", False),
                Display({"text/plain": "'two'"}, {}, "progress", True),
                Display({"text/plain": "'three'"}, {}, "progress", True),
                ClearOutput(wait=True),
                Stream("stdout", "after\n"),
            ]
            events = await run(ex, "clear_output()")
            assert outputs(events) == [ClearOutput(wait=False)]

    asyncio.run(main())


def test_a_forged_frame_with_another_nonce_stays_text(emulator: Emulator, mode: str) -> None:
    async def main() -> None:
        async with make(emulator) as ex:
            forged = "\x1eKB-OUT " + "0" * 32 + ' {"t":"display","data":{"text/plain":"x"}}'
            events = await run(ex, f"print({forged!r})")
            assert outputs(events) == [Stream("stdout", forged + "\n")]

    asyncio.run(main())


def test_image_display_arrives_once(emulator: Emulator, mode: str) -> None:
    async def main() -> None:
        async with make(emulator) as ex:
            events = await run(
                ex,
                f"class P:\n    def _repr_png_(self):\n        return {PNG!r}\ndisplay(P())",
            )
            images = [e for e in events if isinstance(e, Display) and "image/png" in e.data]
            assert len(images) == 1, events
            assert base64.b64decode(images[0].data["image/png"]) == PNG

    asyncio.run(main())


def test_errors_keep_clean_tracebacks(emulator: Emulator, mode: str) -> None:
    async def main() -> None:
        async with make(emulator) as ex:
            events = await run(ex, "print('before')\n1 / 0")
            error = next(e for e in events if isinstance(e, Error))
            assert error.ename == "ZeroDivisionError"
            text = "\n".join(error.traceback)
            assert "1 / 0" in text
            assert "_kernel_bridge_output_shim" not in text and "_kb_alive_" not in text
            assert outputs(events)[0] == Stream("stdout", "before\n")
            assert events[-1] == Finished(1)

    asyncio.run(main())


def test_complete_and_inspect_before_any_cell(emulator: Emulator, mode: str) -> None:
    async def main() -> None:
        async with make(emulator) as ex:
            completion = await ex.complete("zi", 2)
            assert {"zip"} <= set(completion.matches)
            assert (completion.cursor_start, completion.cursor_end) == (0, 2)
            inspection = await ex.inspect("zip", 3)
            assert inspection.found and "zip" in inspection.data["text/plain"]
            missing = await ex.inspect("no_such_name_xyz", 16)
            assert not missing.found
            await run(ex, "alpha_value = 1")
            completion = await ex.complete("x = alpha_v", 11)
            assert completion.matches == ["alpha_value"]

    asyncio.run(main())


def test_completion_does_not_change_the_user_namespace(emulator: Emulator, mode: str) -> None:
    async def main() -> None:
        async with make(emulator) as ex:
            await run(ex, "x = 41\nx + 1")
            await run(ex, "snap = set(globals()); n_out = len(globals().get('Out', ()))")
            for _ in range(2):
                await ex.complete("x.bit", 5)
                await ex.inspect("x", 1, 1)
            events = await run(
                ex,
                "import re\n"
                "history = re.compile(r'^(_i+\\d*|_ih|In)$')\n"
                "new = sorted(k for k in set(globals()) - snap - {'snap', 'n_out', 're',"
                " 'history'} if not history.match(k))\n"
                "print(new, _, len(globals().get('Out', ())) - n_out)",
            )
            assert outputs(events) == [Stream("stdout", "[] 42 0\n")]
            events = await run(
                ex, "print(sorted(k for k in globals() if 'shim' in k or 'kb' in k.lower()))"
            )
            names = eval(next(e.text for e in events if isinstance(e, Stream)))
            assert [n for n in names if not n.startswith("_kb_alive_")] == []

    asyncio.run(main())


def test_reinstalling_on_the_same_session_does_not_duplicate(emulator: Emulator) -> None:
    async def main() -> None:
        first = make(emulator)
        await first.start()
        await run(first, HTML_CLASS)
        second = make(emulator, session_id=first._session_id)
        try:
            events = await run(second, "display(H())")
            assert [type(e) for e in outputs(events)] == [Display]
        finally:
            await second.stop()
            await first.stop()

    asyncio.run(main())


def test_a_shim_that_cannot_install_falls_back_silently(
    emulator: Emulator, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Plain Python: the first executor's display-hook wrappers (IPython) would stay
    # installed with its own nonce; the broken module only stops the next install.
    monkeypatch.setenv("KB_RUNTIME_NO_IPYTHON", "1")

    async def main() -> None:
        first = make(emulator, delete_sessions=False)
        await first.start()
        await run(
            first,
            "import sys, types\n"
            "broken = types.ModuleType('_kernel_bridge_output_shim')\n"
            f"broken.VERSION = {session_payload()[0]!r}\n"
            "def install(nonce):\n    raise RuntimeError('no')\n"
            "broken.install = install\n"
            "sys.modules['_kernel_bridge_output_shim'] = broken\n",
        )
        await first.stop()
        second = make(emulator, session_id=first._session_id)
        try:
            with caplog.at_level(logging.DEBUG):
                events = await run(second, "print('still works')\n40 + 2")
            assert Stream("stdout", "still works\n") in events
            assert [e.data["text/plain"] for e in events if isinstance(e, Result)] == ["42"]
            assert events[-1] == Finished(0)
            assert "output shim not installed" in caplog.text
        finally:
            await second.stop()

    asyncio.run(main())


def test_completion_answers_empty_while_an_interrupted_cell_still_runs(
    emulator: Emulator, tmp_path: Path
) -> None:
    # The abandoned cell runs until the test lets it go (the emulator's local backend
    # shares this machine's /tmp), so a slow machine cannot let it finish early.
    release = tmp_path / "release"

    async def main() -> None:
        async with make(emulator) as ex:
            await run(ex, "import os, time")
            executions = emulator.stats()["executions"]
            cell = asyncio.ensure_future(
                run(ex, f"while not os.path.exists({str(release)!r}): time.sleep(0.01)\nz_late = 1")
            )
            deadline = time.monotonic() + 30
            while emulator.stats()["executions"] <= executions:
                assert time.monotonic() < deadline, "the cell never reached the emulator"
                await asyncio.sleep(0.02)
            await ex.interrupt()
            await asyncio.wait_for(cell, 5)
            completion = await asyncio.wait_for(ex.complete("z_l", 3), 30)
            assert completion.matches == []
            release.touch()
            after = await run(ex, "z_late")  # waits for the abandoned cell first
            assert [e.data["text/plain"] for e in after if isinstance(e, Result)] == ["1"]
            completion = await ex.complete("z_l", 3)
            assert completion.matches == ["z_late"]

    asyncio.run(main())


@pytest.mark.docker
def test_matplotlib_figures_arrive_once_as_png(make_emulator: Any) -> None:
    """plt.show() in an IPython session (the rich image) goes through the display publisher."""
    from _support.environments import RICH_IMAGE, require_docker

    require_docker()
    emulator = make_emulator(backend="docker", image=RICH_IMAGE)

    async def main() -> None:
        async with make(emulator) as ex:
            events = await run(
                ex,
                "import matplotlib.pyplot as plt\n"
                "print('before')\nplt.plot([1, 2, 3])\nplt.show()\nprint('after')",
            )
            kinds = [type(e).__name__ for e in outputs(events)]
            assert kinds == ["Stream", "Display", "Stream"], events
            png = next(e for e in events if isinstance(e, Display)).data["image/png"]
            assert base64.b64decode(png).startswith(b"\x89PNG")

    asyncio.run(main())
