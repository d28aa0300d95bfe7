"""The ACA comm adapter: its frames, and its in-session code run by a real interpreter."""

from __future__ import annotations

import ast
import base64
import json
import subprocess
import sys

from kernel_bridge.events import IOPubMessage, Stream
from kernel_bridge.executors._comm import CommRequest
from kernel_bridge.executors.aca._comms import (
    comm_delivery_code,
    comm_info_code,
    comm_info_from_frames,
    comms_ready,
    comms_setup_code,
)
from kernel_bridge.executors.aca._shim import shim_setup_code, split_stdout

NONCE = "0123456789abcdef0123456789abcdef"


def frame(payload: dict[str, object]) -> str:
    return f"\x1eKB-OUT {NONCE} {json.dumps(payload)}\n"


def test_iopub_frames_become_checked_iopub_events_in_order() -> None:
    opened = {"t": "iopub", "msg_type": "comm_open", "content": {"comm_id": "c"}}
    with_buffer = {
        "t": "iopub",
        "msg_type": "comm_msg",
        "content": {"comm_id": "c", "data": {}},
        "buffers": [base64.b64encode(b"\x00\x01").decode()],
    }
    refused = [
        {"t": "iopub", "msg_type": "status", "content": {}},  # the kernel's, never the code's
        {"t": "iopub", "msg_type": "comm_msg", "content": {}, "buffers": ["not base64!"]},
    ]
    stdout = "a\n" + frame(opened) + "".join(frame(f) for f in refused) + frame(with_buffer)
    events, others = split_stdout(stdout, NONCE)
    assert events == [
        Stream("stdout", "a\n"),
        IOPubMessage("comm_open", {"comm_id": "c"}),
        IOPubMessage("comm_msg", {"comm_id": "c", "data": {}}, {}, (b"\x00\x01",)),
    ]
    assert others == []


def test_comm_info_frames() -> None:
    frames: list[dict[str, object]] = [
        {"t": "comm_info", "id": "other", "comms": {"x": {"target_name": "t"}}},
        {"t": "comm_info", "id": "r1", "comms": {"c": {"target_name": "jupyter.widget"}, "d": 1}},
    ]
    assert comm_info_from_frames(frames, "r1") == {"c": {"target_name": "jupyter.widget"}}
    assert comm_info_from_frames(frames, "r2") is None
    assert comms_ready([{"t": "comms", "ok": True}])
    assert not comms_ready([{"t": "comms", "ok": False}, {"t": "hello"}])


def _run_in_session(script: str) -> tuple[list[IOPubMessage], list[dict[str, object]], str]:
    done = subprocess.run(
        [sys.executable, "-I", "-c", script], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    events, others = split_stdout(done.stdout, NONCE)
    text = "".join(e.text for e in events if isinstance(e, Stream))
    return [e for e in events if isinstance(e, IOPubMessage)], others, text


def test_session_side_sends_delivers_and_lists_comms() -> None:
    """A plain interpreter with the comm package: what a session does, frame by frame."""
    ast.parse(comms_setup_code(), feature_version=(3, 8))
    hostile = "'); raise SystemExit(3) #"
    deliver_open = comm_delivery_code(
        CommRequest("comm_open", {"comm_id": "f1", "target_name": "echo", "data": {"x": hostile}})
    )
    deliver_msg = comm_delivery_code(
        CommRequest("comm_msg", {"comm_id": "f1", "data": {"n": 1}}, buffers=(b"\xff\x00",))
    )
    request_id, info = comm_info_code("echo")
    script = (
        "before = set(globals())\n"
        + shim_setup_code(NONCE)
        + comms_setup_code()
        + comms_setup_code()  # idempotent
        + "import comm\n"
        "def opened(c, msg):\n"
        "    c.on_msg(lambda m: c.send({'got': m['content']['data'], 'x': msg['content']['data']},"
        " buffers=m['buffers']))\n"
        "comm.get_comm_manager().register_target('echo', opened)\n"
        "mine = comm.create_comm(target_name='mine', data={'v': 1})\n"
        + deliver_open
        + deliver_msg
        + info
        + "assert set(globals()) - before == {'before', 'comm', 'opened', 'mine'}, globals()\n"
        # a session ends by being stopped, never by finalizing its comms at exit
        "import os, sys\nsys.stdout.flush()\nos._exit(0)\n"
    )
    messages, others, text = _run_in_session(script)
    assert text == ""
    assert [f for f in others if f.get("t") == "comms"] == [{"t": "comms", "ok": True}] * 2
    kinds = [(m.msg_type, m.content.get("comm_id")) for m in messages]
    mine = messages[0]
    assert kinds == [("comm_open", mine.content["comm_id"]), ("comm_msg", "f1")]
    assert mine.content["target_name"] == "mine" and mine.content["data"] == {"v": 1}
    echo = messages[1]
    assert echo.content["data"] == {"got": {"n": 1}, "x": {"x": hostile}}
    assert echo.buffers == (b"\xff\x00",)
    assert comm_info_from_frames(others, request_id) == {"f1": {"target_name": "echo"}}


def test_session_without_the_comm_package_says_so_and_closes_frontend_comms() -> None:
    script = (
        "import sys\nsys.modules['comm'] = None  # not importable\n"
        + shim_setup_code(NONCE)
        + comms_setup_code()
        + comm_delivery_code(CommRequest("comm_open", {"comm_id": "f2", "target_name": "t"}))
    )
    messages, others, _ = _run_in_session(script)
    assert not comms_ready(others)
    assert [(m.msg_type, m.content) for m in messages] == [
        ("comm_close", {"comm_id": "f2", "data": {}})
    ]
