"""Comms end to end through jupyter_client, as JupyterLab's widget manager drives them.

Real kernels (local subprocess, Docker on the rich image with ipywidgets 8): widget
comms are opened before their views, comm_info lists them, a frontend comm_msg changes
the value where the code runs, the control comm answers request_states, binary buffers
travel both ways, and a background thread's update reaches the client after the cell.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from _support.kernel_client import CellRun, run_cell, start_kernel
from _support.specs import ACA_LOCAL, ACA_LOCAL_NEWEST, DOCKER, DOCKER_RICH, LOCAL, BridgeSpec
from jupyter_client.blocking.client import BlockingKernelClient
from jupyter_client.manager import KernelManager

WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"

Kernel = tuple[KernelManager, BlockingKernelClient]


@pytest.fixture(scope="module", params=[LOCAL, DOCKER_RICH], ids=lambda s: s.name)
def widget_kernel(request: pytest.FixtureRequest) -> Iterator[Kernel]:
    """One kernel per executor for the module (widgets keep state across tests)."""
    spec: BridgeSpec = request.param
    km, kc = start_kernel(spec.ready())
    yield km, kc
    kc.stop_channels()
    km.shutdown_kernel()


def _send_shell(
    kc: BlockingKernelClient,
    msg_type: str,
    content: dict[str, Any],
    buffers: list[bytes] | None = None,
    metadata: dict[str, Any] | None = None,
) -> str:
    msg = kc.session.msg(msg_type, content, metadata=metadata)
    kc.session.send(kc.shell_channel.socket, msg, buffers=buffers)
    return str(msg["header"]["msg_id"])


def _collect(
    kc: BlockingKernelClient,
    until: Callable[[dict[str, Any]], bool],
    timeout: float = 30.0,
) -> list[dict[str, Any]]:
    """Read IOPub until a message satisfies ``until``; return everything read."""
    seen: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise AssertionError(f"no matching IOPub message within {timeout} s: {seen[-10:]}")
        try:
            msg = kc.get_iopub_msg(timeout=remaining)
        except Exception:
            continue
        seen.append(msg)
        if until(msg):
            return seen


def _idle_for(msg_id: str) -> Callable[[dict[str, Any]], bool]:
    return lambda m: (
        m["msg_type"] == "status"
        and m["content"]["execution_state"] == "idle"
        and m["parent_header"].get("msg_id") == msg_id
    )


def _comm_msgs(msgs: list[dict[str, Any]], comm_id: str) -> list[dict[str, Any]]:
    return [
        m for m in msgs if m["msg_type"] == "comm_msg" and m["content"].get("comm_id") == comm_id
    ]


def _slider(kc: BlockingKernelClient, name: str, value: int) -> tuple[CellRun, str]:
    run = run_cell(kc, f"import ipywidgets as w\n{name} = w.IntSlider({value})\n{name}")
    assert run.status == "ok", run.reply["content"]
    opens = run.of_type("comm_open")
    assert opens, run.outputs
    comm_id = opens[-1]["content"]["comm_id"]
    return run, comm_id


def test_widget_comm_opens_before_its_view(widget_kernel: Kernel) -> None:
    _, kc = widget_kernel
    run, comm_id = _slider(kc, "s0", 3)
    kinds = [m["msg_type"] for m in run.outputs]
    opened = run.of_type("comm_open")[-1]
    assert opened["content"]["target_name"] == "jupyter.widget"
    assert opened["metadata"]["version"].startswith("2.")
    assert opened["content"]["data"]["state"]["value"] == 3
    result = run.of_type("execute_result")[0]
    assert result["content"]["data"][WIDGET_VIEW]["model_id"] == comm_id
    assert kinds.index("comm_open") < kinds.index("execute_result")


def test_comm_info_lists_open_widget_comm(widget_kernel: Kernel) -> None:
    _, kc = widget_kernel
    _, comm_id = _slider(kc, "s1", 1)
    msg_id = kc.comm_info(target_name="jupyter.widget")
    reply = kc.get_shell_msg(timeout=30)
    assert reply["parent_header"]["msg_id"] == msg_id
    comms = reply["content"]["comms"]
    assert comms[comm_id] == {"target_name": "jupyter.widget"}


def test_frontend_update_changes_value_and_is_echoed(widget_kernel: Kernel) -> None:
    _, kc = widget_kernel
    _, comm_id = _slider(kc, "s2", 5)
    run_cell(kc, "seen = []\ns2.observe(lambda ch: seen.append(ch['new']), 'value')")
    content = {
        "comm_id": comm_id,
        "data": {"method": "update", "state": {"value": 7}, "buffer_paths": []},
    }
    msg_id = _send_shell(kc, "comm_msg", content)
    msgs = _collect(kc, _idle_for(msg_id))
    echoes = _comm_msgs(msgs, comm_id)
    assert echoes, msgs
    assert echoes[0]["content"]["data"]["method"] == "echo_update"
    assert echoes[0]["parent_header"]["msg_id"] == msg_id
    check = run_cell(kc, "s2.value, seen")
    assert check.of_type("execute_result")[0]["content"]["data"]["text/plain"] == "(7, [7])"
    # and the other way: a value set by code arrives as an update
    moved = run_cell(kc, "s2.value = 9")
    updates = _comm_msgs(moved.outputs, comm_id)
    assert updates[0]["content"]["data"] == {
        "method": "update",
        "state": {"value": 9},
        "buffer_paths": [],
    }


def test_control_comm_answers_request_states(widget_kernel: Kernel) -> None:
    _, kc = widget_kernel
    _, comm_id = _slider(kc, "s3", 4)
    control = uuid.uuid4().hex
    open_id = _send_shell(
        kc,
        "comm_open",
        {"comm_id": control, "target_name": "jupyter.widget.control", "data": {}},
        metadata={"version": "1.0.0"},  # as JupyterLab sends it
    )
    _collect(kc, _idle_for(open_id))
    msg_id = _send_shell(kc, "comm_msg", {"comm_id": control, "data": {"method": "request_states"}})
    msgs = _collect(kc, _idle_for(msg_id))
    answers = _comm_msgs(msgs, control)
    assert answers, msgs
    data = answers[0]["content"]["data"]
    assert data["method"] == "update_states"
    assert data["states"][comm_id]["state"]["value"] == 4


def test_background_thread_update_reaches_client_after_the_cell(widget_kernel: Kernel) -> None:
    _, kc = widget_kernel
    created, comm_id = _slider(kc, "s4", 0)
    creator = created.reply["parent_header"]["msg_id"]
    run = run_cell(
        kc,
        "import threading, time\n"
        "def later():\n"
        "    time.sleep(1.0)  # a background task: it outlives the cell\n"
        "    s4.value = 42\n"
        "threading.Thread(target=later, daemon=True).start()",
    )
    assert run.status == "ok"
    # run_cell returned at the cell's idle: nothing is running when the update comes.
    msgs = _collect(
        kc,
        lambda m: (
            bool(_comm_msgs([m], comm_id))
            and m["content"]["data"].get("state", {}).get("value") == 42
        ),
    )
    update = msgs[-1]
    assert not [m for m in msgs if m["msg_type"] == "status"], "no request should be running"
    assert update["parent_header"]["msg_id"] == creator
    check = run_cell(kc, "s4.value")
    assert check.of_type("execute_result")[0]["content"]["data"]["text/plain"] == "42"


def test_binary_buffers_travel_both_ways(widget_kernel: Kernel) -> None:
    _, kc = widget_kernel
    payload = bytes(range(256)) * 4
    run = run_cell(kc, f"import ipywidgets as w\nimg = w.Image(value={payload!r}, format='png')")
    opened = run.of_type("comm_open")[-1]
    assert opened["content"]["data"]["buffer_paths"] == [["value"]]
    assert bytes(opened["buffers"][0]) == payload
    made = run_cell(
        kc,
        "import comm\n"
        "got = []\n"
        "c = comm.create_comm(target_name='kb-bytes', data={'hello': 1})\n"
        "c.on_msg(lambda m: got.append([bytes(b) for b in m['buffers']]))",
    )
    comm_id = made.of_type("comm_open")[0]["content"]["comm_id"]
    assert made.of_type("comm_open")[0]["content"]["target_name"] == "kb-bytes"
    msg_id = _send_shell(kc, "comm_msg", {"comm_id": comm_id, "data": {}}, [b"\x00\x01\xff"])
    _collect(kc, _idle_for(msg_id))
    check = run_cell(kc, "got")
    assert check.of_type("execute_result")[0]["content"]["data"]["text/plain"] == (
        "[[b'\\x00\\x01\\xff']]"
    )


def test_frontend_comm_close_closes_the_code_side(widget_kernel: Kernel) -> None:
    _, kc = widget_kernel
    _, comm_id = _slider(kc, "s5", 2)
    msg_id = _send_shell(kc, "comm_close", {"comm_id": comm_id, "data": {}})
    _collect(kc, _idle_for(msg_id))
    kc.comm_info(target_name="jupyter.widget")
    reply = kc.get_shell_msg(timeout=30)
    assert comm_id not in reply["content"]["comms"]


def test_output_widget_brackets_its_prints_with_the_cell_msg_id(widget_kernel: Kernel) -> None:
    _, kc = widget_kernel
    run = run_cell(
        kc,
        "import ipywidgets as w\n"
        "out = w.Output()\n"
        "display(out)\n"
        "with out:\n"
        "    print('inside')\n"
        "    raise ValueError('caught by out')\n"
        "print('after')",
    )
    assert run.status == "ok", run.reply["content"]
    cell_id = run.reply["parent_header"]["msg_id"]
    out_id = run.of_type("comm_open")[-1]["content"]["comm_id"]
    marks = []
    for m in run.outputs:
        if m["msg_type"] == "comm_msg" and m["content"]["comm_id"] == out_id:
            state = m["content"]["data"].get("state", {})
            if "msg_id" in state:
                marks.append(("msg_id", state["msg_id"]))
        elif m["msg_type"] in ("stream", "error"):
            marks.append((m["msg_type"], m["content"].get("text", m["content"].get("ename"))))
    assert marks == [
        ("msg_id", cell_id),
        ("stream", "inside\n"),
        ("error", "ValueError"),
        ("msg_id", ""),
        ("stream", "after\n"),
    ], marks


def test_kernel_session_send_reaches_iopub(widget_kernel: Kernel) -> None:
    _, kc = widget_kernel
    run = run_cell(
        kc,
        "ip = get_ipython()\n"
        "ip.kernel.session.send(ip.kernel.iopub_socket, 'display_data',\n"
        "    {'data': {'text/plain': 'sent by session'}, 'metadata': {}},\n"
        "    parent=ip.kernel.get_parent())\n"
        "assert ip.kernel.shell is ip and ip.kernel.comm_manager is not None",
    )
    assert run.status == "ok", run.reply["content"]
    shown = run.of_type("display_data")
    assert shown[0]["content"]["data"]["text/plain"] == "sent by session"


def test_tqdm_notebook_bar_reaches_100_percent(widget_kernel: Kernel) -> None:
    _, kc = widget_kernel
    run = run_cell(kc, "from tqdm.notebook import tqdm\nfor i in tqdm(range(5)):\n    pass")
    assert run.status == "ok", run.reply["content"]
    opens = {m["content"]["comm_id"]: m for m in run.of_type("comm_open")}
    progress = [
        cid
        for cid, m in opens.items()
        if m["content"]["data"]["state"].get("_model_name") == "FloatProgressModel"
    ]
    assert progress, opens
    values = [
        m["content"]["data"]["state"]["value"]
        for m in _comm_msgs(run.outputs, progress[0])
        if "value" in m["content"]["data"].get("state", {})
    ]
    assert values and values[-1] == 5
    html = [
        m["content"]["data"]["state"]["value"]
        for m in run.of_type("comm_msg")
        if "100%" in str(m["content"]["data"].get("state", {}).get("value", ""))
    ]
    assert html, "no '100%' text was sent"


def test_widget_view_degrades_to_text_without_comm() -> None:
    """The minimal image has neither IPython nor comm: the view's text is shown instead."""
    km, kc = start_kernel(DOCKER.ready())
    try:
        run = run_cell(
            kc,
            "class FakeWidget:\n"
            "    def _repr_mimebundle_(self, **kw):\n"
            "        return {'text/plain': 'IntSlider(value=5)', '" + WIDGET_VIEW + "':\n"
            "                {'version_major': 2, 'version_minor': 0, 'model_id': 'abc'}}\n"
            "FakeWidget()",
            timeout=120,
        )
        assert run.status == "ok", run.reply["content"]
        data = run.of_type("execute_result")[0]["content"]["data"]
        assert data == {"text/plain": "IntSlider(value=5)"}
        # comm.create_comm-less code still runs; a comm_open from the frontend is closed
        control = uuid.uuid4().hex
        msg_id = _send_shell(
            kc, "comm_open", {"comm_id": control, "target_name": "jupyter.widget.control"}
        )
        msgs = _collect(kc, _idle_for(msg_id))
        closes = [m for m in msgs if m["msg_type"] == "comm_close"]
        assert closes and closes[0]["content"]["comm_id"] == control
    finally:
        kc.stop_channels()
        km.shutdown_kernel()


def test_comms_sent_back_to_back_with_a_cell_keep_its_parent(widget_kernel: Kernel) -> None:
    """JupyterLab opens the control comm, asks for states and runs a cell at once."""
    _, kc = widget_kernel
    control = uuid.uuid4().hex
    _send_shell(
        kc,
        "comm_open",
        {"comm_id": control, "target_name": "jupyter.widget.control", "data": {}},
        metadata={"version": "1.0.0"},
    )
    _send_shell(kc, "comm_msg", {"comm_id": control, "data": {"method": "request_states"}})
    cell = kc.execute("6 * 7")
    msgs = _collect(kc, _idle_for(cell))
    results = [m for m in msgs if m["msg_type"] == "execute_result"]
    assert results and results[0]["parent_header"]["msg_id"] == cell


@pytest.fixture(scope="module", params=[ACA_LOCAL, ACA_LOCAL_NEWEST], ids=lambda s: s.name)
def aca_widget_kernel(request: pytest.FixtureRequest) -> Iterator[Kernel]:
    """An ACA kernel through the emulator (session with ipywidgets), both API versions."""
    spec: BridgeSpec = request.param
    km, kc = start_kernel(spec.ready())
    yield km, kc
    kc.stop_channels()
    km.shutdown_kernel()


def test_aca_widget_comm_opens_before_its_view(aca_widget_kernel: Kernel) -> None:
    """The cell's comm traffic comes back in its output, the comm_open first."""
    _, kc = aca_widget_kernel
    run, comm_id = _slider(kc, "a0", 3)
    kinds = [m["msg_type"] for m in run.outputs]
    opened = run.of_type("comm_open")[-1]
    assert opened["content"]["target_name"] == "jupyter.widget"
    assert opened["content"]["data"]["state"]["value"] == 3
    assert opened["parent_header"]["msg_id"] == run.reply["parent_header"]["msg_id"]
    result = run.of_type("execute_result")[0]
    assert result["content"]["data"][WIDGET_VIEW]["model_id"] == comm_id
    assert "not interactive" not in result["content"]["data"]["text/plain"]
    assert kinds.index("comm_open") < kinds.index("execute_result")


def test_aca_frontend_update_changes_value_and_is_echoed(aca_widget_kernel: Kernel) -> None:
    """A frontend comm_msg runs as a short execution: the value changes, the echo returns."""
    _, kc = aca_widget_kernel
    _, comm_id = _slider(kc, "a1", 5)
    run_cell(kc, "seen = []\na1.observe(lambda ch: seen.append(ch['new']), 'value')")
    content = {
        "comm_id": comm_id,
        "data": {"method": "update", "state": {"value": 7}, "buffer_paths": []},
    }
    msg_id = _send_shell(kc, "comm_msg", content)
    msgs = _collect(kc, _idle_for(msg_id), timeout=60)
    echoes = _comm_msgs(msgs, comm_id)
    assert echoes, msgs
    assert echoes[0]["content"]["data"]["method"] == "echo_update"
    assert echoes[0]["content"]["data"]["state"] == {"value": 7}
    assert echoes[0]["parent_header"]["msg_id"] == msg_id
    check = run_cell(kc, "a1.value, seen")
    assert check.of_type("execute_result")[0]["content"]["data"]["text/plain"] == "(7, [7])"
    moved = run_cell(kc, "a1.value = 9")
    updates = _comm_msgs(moved.outputs, comm_id)
    assert updates and updates[0]["content"]["data"]["state"] == {"value": 9}


def test_aca_control_comm_answers_request_states(aca_widget_kernel: Kernel) -> None:
    _, kc = aca_widget_kernel
    _, comm_id = _slider(kc, "a2", 4)
    control = uuid.uuid4().hex
    open_id = _send_shell(
        kc,
        "comm_open",
        {"comm_id": control, "target_name": "jupyter.widget.control", "data": {}},
        metadata={"version": "1.0.0"},
    )
    opened = _collect(kc, _idle_for(open_id), timeout=60)
    assert not [m for m in opened if m["msg_type"] == "comm_close"], opened
    msg_id = _send_shell(kc, "comm_msg", {"comm_id": control, "data": {"method": "request_states"}})
    msgs = _collect(kc, _idle_for(msg_id), timeout=60)
    answers = _comm_msgs(msgs, control)
    assert answers, msgs
    data = answers[0]["content"]["data"]
    assert data["method"] == "update_states"
    assert data["states"][comm_id]["state"]["value"] == 4


def test_aca_comm_info_lists_open_widget_comm(aca_widget_kernel: Kernel) -> None:
    _, kc = aca_widget_kernel
    _, comm_id = _slider(kc, "a3", 1)
    msg_id = kc.comm_info(target_name="jupyter.widget")
    reply = kc.get_shell_msg(timeout=60)
    assert reply["parent_header"]["msg_id"] == msg_id
    assert reply["content"]["comms"][comm_id] == {"target_name": "jupyter.widget"}


def test_aca_frontend_comm_close_closes_the_session_side(aca_widget_kernel: Kernel) -> None:
    _, kc = aca_widget_kernel
    _, comm_id = _slider(kc, "a4", 2)
    msg_id = _send_shell(kc, "comm_close", {"comm_id": comm_id, "data": {}})
    _collect(kc, _idle_for(msg_id), timeout=60)
    check = run_cell(kc, f"import comm\n{comm_id!r} in comm.get_comm_manager().comms")
    assert check.of_type("execute_result")[0]["content"]["data"]["text/plain"] == "False"


def test_aca_background_update_arrives_with_the_next_execution(aca_widget_kernel: Kernel) -> None:
    """No channel back between cells: a thread's update is held for the next execution."""
    _, kc = aca_widget_kernel
    _, comm_id = _slider(kc, "a5", 0)
    run = run_cell(
        kc,
        "import sys, threading, time\n"
        "a5_sent = threading.Event()\n"
        "def later():\n"
        "    state = sys.modules['_kernel_bridge_output_shim']._comms\n"
        "    while not state['between']:  # wait until no execution runs\n"
        "        time.sleep(0.01)\n"
        "    a5.value = 42\n"
        "    a5_sent.set()\n"
        "threading.Thread(target=later, daemon=True).start()",
    )
    assert run.status == "ok"
    assert not [m for m in _comm_msgs(run.outputs, comm_id) if m["content"]["data"].get("state")]
    deadline = time.monotonic() + 30
    updates: list[dict[str, Any]] = []
    sent = ""
    while not updates and time.monotonic() < deadline:
        check = run_cell(kc, "a5_sent.is_set()")
        sent = check.of_type("execute_result")[0]["content"]["data"]["text/plain"]
        updates = [
            m for m in _comm_msgs(check.outputs, comm_id) if m["content"]["data"].get("state")
        ]
    assert updates, f"the background update never arrived (sent: {sent})"
    assert updates[0]["content"]["data"]["state"] == {"value": 42}
