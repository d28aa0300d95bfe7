"""The runtime's debugger section, driven over the NDJSON protocol of a real runtime process:
debugpy hosted in the runtime, DAP relayed as ``debug_dap`` messages while the main thread
is stopped at a breakpoint, on the IPython and the plain-Python paths."""

from __future__ import annotations

import json
import os
import queue
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from ipykernel.compiler import murmur2_x86

from kernel_bridge.runtime import RUNTIME_PATH

Message = dict[str, Any]
CELL = "x = 5\ny = x * 2\nprint('y is', y)\n"


class Runtime:
    """A runtime subprocess spoken to over its NDJSON protocol (messages read by a thread)."""

    def __init__(self, *, ipython: bool) -> None:
        env = dict(os.environ)
        env.pop("KB_RUNTIME_NO_IPYTHON", None)
        if not ipython:
            env["KB_RUNTIME_NO_IPYTHON"] = "1"
        self.proc = subprocess.Popen(
            [sys.executable, "-u", str(RUNTIME_PATH)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=env,
            start_new_session=True,
        )
        self.messages: queue.Queue[Message | None] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()
        self.ready = self.recv()
        assert self.ready["type"] == "ready", self.ready
        self._ids = 0

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.messages.put(json.loads(line))
        self.messages.put(None)

    def send(self, msg: Message) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write((json.dumps(msg) + "\n").encode())
        self.proc.stdin.flush()

    def recv(self, timeout: float = 30) -> Message:
        msg = self.messages.get(timeout=timeout)
        if msg is None:
            raise EOFError("runtime closed its output")
        return msg

    def request(self, msg: Message) -> Message:
        self._ids += 1
        self.send(dict(msg, id=f"r{self._ids}"))
        while True:
            reply = self.recv()
            if reply["type"] == "reply":
                assert reply["id"] == f"r{self._ids}", reply
                return reply

    def start(self, code: str) -> str:
        self._ids += 1
        rid = f"e{self._ids}"
        self.send({"type": "execute", "id": rid, "code": code, "language": "python",
                   "silent": False, "store_history": True})  # fmt: skip
        return rid

    def until_done(self, rid: str) -> list[Message]:
        out: list[Message] = []
        while True:
            out.append(self.recv(timeout=60))
            if out[-1]["type"] == "done":
                assert out[-1]["id"] == rid, out[-1]
                return out

    def run(self, code: str) -> list[Message]:
        return self.until_done(self.start(code))

    def close(self) -> None:
        if self.proc.poll() is None:
            assert self.proc.stdin is not None
            self.proc.stdin.close()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def stdout_text(messages: list[Message]) -> str:
    return "".join(m["text"] for m in messages if m["type"] == "stream" and m["name"] == "stdout")


def done(messages: list[Message]) -> Message:
    assert messages[-1]["type"] == "done", messages[-1]
    return messages[-1]


class DapOverRuntime:
    """A DAP client whose messages travel as the runtime's ``debug_dap`` messages."""

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        self.seq = 0
        self.kept: list[Message] = []

    def send(self, command: str, arguments: dict[str, Any] | None = None) -> int:
        self.seq += 1
        message = {"type": "request", "seq": self.seq, "command": command}
        message["arguments"] = arguments or {}
        self.rt.send({"type": "debug_dap", "message": message})
        return self.seq

    def wait(self, match: Any, timeout: float = 60) -> Message:
        """The next runtime message for which match(msg) holds (others are kept)."""
        for i, msg in enumerate(self.kept):
            if match(msg):
                return self.kept.pop(i)
        deadline = time.monotonic() + timeout
        while True:
            msg = self.rt.recv(timeout=max(0.01, deadline - time.monotonic()))
            if match(msg):
                return msg
            self.kept.append(msg)

    def response(self, seq: int) -> Message:
        msg = self.wait(
            lambda m: (
                m["type"] == "debug_dap"
                and m["message"]["type"] == "response"
                and m["message"]["request_seq"] == seq
            )
        )
        return dict(msg["message"])

    def event(self, name: str) -> Message:
        msg = self.wait(
            lambda m: (
                m["type"] == "debug_dap"
                and m["message"]["type"] == "event"
                and m["message"]["event"] == name
            )
        )
        return dict(msg["message"])

    def request(self, command: str, arguments: dict[str, Any] | None = None) -> Message:
        return self.response(self.send(command, arguments))


@pytest.fixture(params=["ipython", "plain"])
def fresh(request: pytest.FixtureRequest) -> Iterator[Runtime]:
    """A runtime of its own (debugpy.listen can happen once per process)."""
    runtime = Runtime(ipython=request.param == "ipython")
    yield runtime
    runtime.close()
    if runtime.proc.poll() is None:
        runtime.proc.kill()


def test_breakpoint_stops_the_cell_and_dap_flows_while_it_is_stopped(fresh: Runtime) -> None:
    rt = fresh
    assert rt.ready["debugpy"] is True
    started = rt.request({"type": "debug_start"})
    assert "error" not in started, started
    prefix = started["tmp_prefix"]
    assert started["hash_seed"] == 0xC70F6907 and started["tmp_suffix"] == ".py"
    mode = os.stat(prefix).st_mode
    assert stat.S_ISDIR(mode) and stat.S_IMODE(mode) == 0o700

    dumped = rt.request({"type": "debug_dump_cell", "code": CELL})
    path = dumped["path"]
    assert path == f"{prefix}{murmur2_x86(CELL, 0xC70F6907)}.py"  # ipykernel's naming
    assert Path(path).read_text(encoding="utf-8") == CELL

    dap = DapOverRuntime(rt)
    assert dap.request("initialize", {"adapterID": "python"})["success"]
    attach = dap.send("attach", {"connect": {"host": started["host"], "port": started["port"]}})
    dap.event("initialized")
    bp = dap.request("setBreakpoints", {"source": {"path": path}, "breakpoints": [{"line": 2}]})
    assert bp["body"]["breakpoints"][0]["verified"], bp
    assert dap.request("configurationDone")["success"]
    assert dap.response(attach)["success"]

    rid = rt.start(CELL)
    stopped = dap.event("stopped")
    thread = stopped["body"]["threadId"]
    # the main thread is stopped in the cell: the reader thread still serves requests
    frames = dap.request("stackTrace", {"threadId": thread})["body"]["stackFrames"]
    assert (frames[0]["source"]["path"], frames[0]["line"]) == (path, 2)
    variables = rt.request({"type": "debug_variables"})["variables"]
    assert {"name": "x", "value": "5", "type": "int"} in [
        {k: v[k] for k in ("name", "value", "type")} for v in variables
    ]
    rich = dap.request(
        "evaluate",
        {
            "expression": "__import__('_kb_debug').format(x)",
            "frameId": frames[0]["id"],
            "context": "clipboard",
        },
    )
    assert "'text/plain': '5'" in rich["body"]["result"]
    assert dap.request("continue", {"threadId": thread})["success"]
    messages = list(dap.kept)  # the continue response may come after the cell's done
    if not any(m["type"] == "done" for m in messages):
        messages += rt.until_done(rid)
    assert stdout_text(messages) == "y is 10\n"
    assert done(messages)["status"] == "ok"

    assert "error" not in rt.request({"type": "debug_stop"})
    assert stdout_text(rt.run("print(y + 1)")) == "11\n"


def test_without_debugpy_debug_start_says_what_to_install() -> None:
    # -S: no site-packages, so neither debugpy nor IPython (the runtime is stdlib-only)
    proc = subprocess.Popen(
        [sys.executable, "-S", "-u", str(RUNTIME_PATH)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        start_new_session=True,
    )
    assert proc.stdin is not None and proc.stdout is not None
    try:
        ready = json.loads(proc.stdout.readline())
        assert ready["type"] == "ready" and ready["debugpy"] is False
        proc.stdin.write(b'{"type": "debug_start", "id": 1}\n')
        proc.stdin.flush()
        reply = json.loads(proc.stdout.readline())
        assert reply["id"] == 1
        assert "debugpy is not importable" in reply["error"]
        assert "pip install debugpy" in reply["error"]
        proc.stdin.write(b'{"type": "debug_dump_cell", "id": 2, "code": "1"}\n')
        proc.stdin.flush()
        assert "has not started" in json.loads(proc.stdout.readline())["error"]
    finally:
        proc.stdin.close()
        proc.wait(10)
    assert proc.returncode == 0
