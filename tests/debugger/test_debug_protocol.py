"""JupyterLab's debugger sequence against our local and Docker kernels and a stock ipykernel.

The same DAP requests JupyterLab sends (initialize, attach, debugInfo, dumpCell,
setBreakpoints, configurationDone, execute, stopped, stackTrace, scopes, variables,
continue, disconnect), through jupyter_client, with real kernels and real debugpy.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from _support.debug_client import DebugClient, stream_text
from _support.kernel_client import start_kernel
from _support.specs import DOCKER_RICH, LOCAL
from ipykernel.compiler import murmur2_x86
from jupyter_client.blocking.client import BlockingKernelClient
from jupyter_client.manager import KernelManager

CELL = "a = 1\nb = a + 41\nprint('sum', a + b)\n"
BREAK_LINE = 2

REFERENCE = "python3"  # ipykernel's own kernelspec: the behaviour to match


@pytest.fixture(params=[REFERENCE, LOCAL.name, DOCKER_RICH.name])
def kernel(request: pytest.FixtureRequest) -> Iterator[tuple[KernelManager, BlockingKernelClient]]:
    """A fresh kernel: the stock ipykernel, our local one, our Docker one (rich image)."""
    name = request.param
    if name == LOCAL.name:
        name = LOCAL.ready()
    elif name == DOCKER_RICH.name:
        name = DOCKER_RICH.ready()
    km, kc = start_kernel(name)
    yield km, kc
    kc.stop_channels()
    km.shutdown_kernel()


def _info(kc: BlockingKernelClient) -> dict[str, Any]:
    kc.kernel_info()
    reply = kc.get_shell_msg(timeout=30)
    return dict(reply["content"])


def test_jupyterlab_sequence_stops_at_breakpoint_and_continues(kernel: tuple) -> None:
    km, kc = kernel
    assert "debugger" in _info(kc).get("supported_features", [])
    dbg = DebugClient(kc)
    info = dbg.start()
    assert info["isStarted"] is True
    assert info["hashMethod"] == "Murmur2"

    dumped = dbg.request("dumpCell", {"code": CELL})
    assert dumped["success"], dumped
    path = dumped["body"]["sourcePath"]
    # JupyterLab finds the cell of a frame by recomputing this name: it must match exactly
    expected = info["tmpFilePrefix"] + str(murmur2_x86(CELL, info["hashSeed"]))
    assert path == expected + info["tmpFileSuffix"]

    points = dbg.request(
        "setBreakpoints",
        {
            "source": {"path": path},
            "breakpoints": [{"line": BREAK_LINE}],
            "lines": [BREAK_LINE],
            "sourceModified": False,
        },
    )
    assert points["success"], points
    assert points["body"]["breakpoints"][0]["verified"] is True
    assert dbg.request("configurationDone")["success"]
    info = dbg.request("debugInfo")["body"]
    assert info["breakpoints"] == [{"source": path, "breakpoints": [{"line": BREAK_LINE}]}]

    msg_id = kc.execute(CELL)
    stopped = dbg.wait_event("stopped")
    assert stopped["body"]["reason"] == "breakpoint"
    thread_id = stopped["body"]["threadId"]
    assert thread_id in dbg.request("debugInfo")["body"]["stoppedThreads"]

    trace = dbg.request("stackTrace", {"threadId": thread_id})
    assert trace["success"], trace
    top = trace["body"]["stackFrames"][0]
    assert top["source"]["path"] == path
    assert top["line"] == BREAK_LINE
    # only the cell: what runs it (ipykernel's, our runtime's) is not the user's code
    assert len(trace["body"]["stackFrames"]) == 1, trace["body"]["stackFrames"]

    scopes = dbg.request("scopes", {"frameId": top["id"]})
    assert scopes["success"], scopes
    ref = scopes["body"]["scopes"][0]["variablesReference"]
    variables = dbg.request("variables", {"variablesReference": ref})
    assert variables["success"], variables
    values = {v["name"]: v["value"] for v in variables["body"]["variables"]}
    assert values.get("a") == "1"
    assert "b" not in values  # line 2 has not run yet

    rich = dbg.request("richInspectVariables", {"variableName": "a", "frameId": top["id"]})
    assert rich["success"], rich
    assert rich["body"]["data"]["text/plain"] == "1"

    assert dbg.request("continue", {"threadId": thread_id})["success"]
    outputs = dbg.wait_idle(msg_id)
    assert stream_text(outputs) == "sum 43\n"
    reply = kc.get_shell_msg(timeout=60)
    assert reply["content"]["status"] == "ok"

    # not stopped any more: the variable explorer reads the namespace
    inspected = dbg.request("inspectVariables")
    assert inspected["success"], inspected
    names = {v["name"]: v["value"] for v in inspected["body"]["variables"]}
    assert names.get("b") == "42"

    bye = dbg.request("disconnect", {"restart": False, "terminateDebuggee": False})
    assert bye["success"], bye
    assert dbg.request("debugInfo")["body"]["isStarted"] is False
    assert km.is_alive()


def test_cell_file_names_are_known_before_the_debugger_starts(kernel: tuple) -> None:
    _km, kc = kernel
    dbg = DebugClient(kc)
    # JupyterLab builds every cell's path from the debugInfo it sends before initialize
    before = dbg.request("debugInfo")["body"]
    assert before["isStarted"] is False
    # and shows a path as "Cell [n]" only if it contains "ipykernel_"
    assert "ipykernel_" in before["tmpFilePrefix"]
    after = dbg.start()
    for key in ("hashMethod", "hashSeed", "tmpFilePrefix", "tmpFileSuffix"):
        assert after[key] == before[key], key
    dumped = dbg.request("dumpCell", {"code": CELL})["body"]["sourcePath"]
    assert dumped.startswith(before["tmpFilePrefix"])


def test_modules_lists_the_kernel_sources(kernel: tuple) -> None:
    _km, kc = kernel
    dbg = DebugClient(kc)
    dbg.start()
    modules = dbg.request("modules", {"startModule": 0})
    assert modules.get("success", True), modules  # ipykernel's reply has no "success"
    body = modules["body"]
    by_name = {m["name"]: m["path"] for m in body["modules"]}
    # JupyterLab's kernel sources panel: importable .py files where the code runs
    assert by_name["IPython.core.interactiveshell"].endswith("interactiveshell.py")
    assert body["totalModules"] >= len(body["modules"])
