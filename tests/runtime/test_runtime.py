"""Tests of the runtime (kernel_bridge/runtime/kb_runtime.py), driven as a real subprocess.

Each test talks the NDJSON protocol of docs/runtime-protocol.md to a real runtime
process, on the IPython path and on the plain-Python path (KB_RUNTIME_NO_IPYTHON=1).
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import queue
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kernel_bridge.runtime import (
    BOOTSTRAP_CODE,
    LIBRARY_PATH,
    PROTOCOL_VERSION,
    RUNTIME_PATH,
    bootstrap_argv,
    bootstrap_payload,
    library_source,
    runtime_source,
)

Message = dict[str, Any]


class Runtime:
    """A runtime subprocess; messages are read by a thread into a queue."""

    def __init__(
        self, *, ipython: bool = True, bootstrap: bool = False, options: tuple[str, ...] = ()
    ) -> None:
        env = dict(os.environ)
        env.pop("KB_RUNTIME_NO_IPYTHON", None)
        if not ipython:
            env["KB_RUNTIME_NO_IPYTHON"] = "1"
        if bootstrap:
            argv = bootstrap_argv(sys.executable, *options)
        else:
            argv = [sys.executable, "-u", str(RUNTIME_PATH), *options]
        self.proc = subprocess.Popen(
            argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env, start_new_session=True
        )
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.stdin = self.proc.stdin
        self.messages: queue.Queue[tuple[float, Message | None]] = queue.Queue()
        self.raw_lines: list[bytes] = []
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()
        if bootstrap:
            self.stdin.write(bootstrap_payload())
            self.stdin.flush()
        self.ready = self.recv(timeout=30)
        assert self.ready["type"] == "ready", self.ready
        self._ids = 0

    def _read(self) -> None:
        assert self.proc.stdout is not None
        lines = iter(self.proc.stdout)
        for line in lines:
            msg = json.loads(line)
            # large base64 values follow their message as raw lines (see the protocol)
            for key, size in msg.get("attachments", []):
                raw = next(lines)
                assert raw.endswith(b"\n") and len(raw) == size + 1, (key, size, raw[:80])
                msg["data"][key] = raw[:-1].decode("ascii")
            self.messages.put((time.monotonic(), msg))
        self.messages.put((time.monotonic(), None))

    def send(self, msg: Message) -> None:
        self.stdin.write((json.dumps(msg) + "\n").encode())
        self.stdin.flush()

    def recv_timed(self, timeout: float = 30) -> tuple[float, Message]:
        at, msg = self.messages.get(timeout=timeout)
        if msg is None:
            raise EOFError("runtime closed its output")
        return at, msg

    def recv(self, timeout: float = 30) -> Message:
        return self.recv_timed(timeout)[1]

    def start(self, code: str, language: str = "python", silent: bool = False) -> str:
        self._ids += 1
        rid = f"e{self._ids}"
        self.send(
            {
                "type": "execute",
                "id": rid,
                "code": code,
                "language": language,
                "silent": silent,
                "store_history": True,
            }
        )
        return rid

    def until_done(self, rid: str, timeout: float = 60) -> list[Message]:
        out: list[Message] = []
        deadline = time.monotonic() + timeout
        while True:
            msg = self.recv(timeout=max(0.01, deadline - time.monotonic()))
            out.append(msg)
            if msg["type"] == "done":
                assert msg["id"] == rid, msg
                return out

    def run(self, code: str, language: str = "python", **kw: Any) -> list[Message]:
        return self.until_done(self.start(code, language, **kw))

    def request(self, msg: Message, timeout: float = 60) -> Message:
        self._ids += 1
        msg = dict(msg, id=f"r{self._ids}")
        self.send(msg)
        while True:
            reply = self.recv(timeout=timeout)
            if reply["type"] == "reply":
                assert reply["id"] == msg["id"]
                return reply

    def close(self) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(OSError):
                self.stdin.close()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def of_type(messages: list[Message], kind: str) -> list[Message]:
    return [m for m in messages if m["type"] == kind]


def stdout_text(messages: list[Message], name: str = "stdout") -> str:
    return "".join(m["text"] for m in messages if m["type"] == "stream" and m["name"] == name)


def done(messages: list[Message]) -> Message:
    assert messages[-1]["type"] == "done"
    return messages[-1]


def result_value(rt: Runtime, expr: str) -> Any:
    """Evaluate expr in the runtime and return its text/plain."""
    msgs = rt.run(expr)
    results = of_type(msgs, "result")
    assert results, msgs
    return results[0]["data"]["text/plain"]


# ---------------------------------------------------------------------------------------
# fixtures

MODES = ["ipython", "plain"]


@pytest.fixture(params=MODES, scope="module")
def _shared_runtime(request: pytest.FixtureRequest) -> Iterator[dict[str, Runtime]]:
    """One runtime per mode, shared by the tests of this module (state persists)."""
    holder = {"runtime": Runtime(ipython=request.param == "ipython")}
    assert holder["runtime"].ready["ipython"] is (request.param == "ipython")
    yield holder
    holder["runtime"].close()


@pytest.fixture
def rt(_shared_runtime: dict[str, Runtime]) -> Iterator[Runtime]:
    """The shared runtime of this mode, replaced when a test left it busy or dead.

    A test that fails half-way (say, an interrupt that missed its deadline on a loaded
    machine) can leave a cell running or messages queued; the next test would read them
    as its own answers and fail for no fault of its own.
    """
    runtime = _shared_runtime["runtime"]
    yield runtime
    if runtime.proc.poll() is not None or not runtime.messages.empty():
        runtime.close()
        if runtime.proc.poll() is None:
            runtime.proc.kill()
        ipython = bool(runtime.ready["ipython"])
        _shared_runtime["runtime"] = Runtime(ipython=ipython)


@pytest.fixture(params=MODES)
def fresh(request: pytest.FixtureRequest) -> Iterator[Runtime]:
    """A runtime of its own, for tests that end or damage it."""
    runtime = Runtime(ipython=request.param == "ipython")
    yield runtime
    runtime.close()
    if runtime.proc.poll() is None:
        runtime.proc.kill()


# ---------------------------------------------------------------------------------------
# starting


def test_ready_message_fields() -> None:
    runtime = Runtime(ipython=False)
    try:
        ready = runtime.ready
        assert ready["protocol"] == PROTOCOL_VERSION == 1
        assert ready["pid"] == runtime.proc.pid
        assert ready["python"] == sys.version.split()[0]
        assert ready["cwd"] == os.getcwd()
    finally:
        runtime.close()


def test_bootstrap_with_cwd_and_early_request(tmp_path: Path) -> None:
    target = tmp_path / "made" / "here"
    env = dict(os.environ, KB_RUNTIME_NO_IPYTHON="1")
    proc = subprocess.Popen(
        bootstrap_argv(sys.executable, "--cwd", str(target)),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        env=env,
    )
    assert proc.stdin is not None and proc.stdout is not None
    request = {"type": "execute", "id": "x", "code": "import os\nos.getcwd()", "language": "python"}
    # The payload and the first request arrive in one write: the bootstrap's buffered
    # read must not swallow the request.
    proc.stdin.write(bootstrap_payload() + (json.dumps(request) + "\n").encode())
    proc.stdin.flush()
    ready = json.loads(proc.stdout.readline())
    assert ready["type"] == "ready"
    assert ready["cwd"] == str(target)
    result = json.loads(proc.stdout.readline())
    assert result["type"] == "result"
    assert result["data"]["text/plain"] == repr(str(target))
    assert json.loads(proc.stdout.readline())["type"] == "done"
    proc.stdin.close()
    assert proc.wait(10) == 0


def test_protocol_socket_carries_the_output_and_stdout_stays_empty(tmp_path: Path) -> None:
    path = tmp_path / "protocol.sock"
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(path))
    listener.listen(1)
    listener.settimeout(30)
    env = {**os.environ, "KB_RUNTIME_NO_IPYTHON": "1"}
    argv = [sys.executable, "-u", str(RUNTIME_PATH), "--protocol-socket", str(path)]
    proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env)
    assert proc.stdin is not None and proc.stdout is not None
    try:
        conn, _ = listener.accept()
        conn.settimeout(30)
        lines = conn.makefile("rb")
        assert json.loads(lines.readline())["type"] == "ready"
        request = {
            "type": "execute",
            "id": "e1",
            "code": "import os\nprint('hi', flush=True)\nos.system('echo sh')",
        }
        proc.stdin.write((json.dumps(request) + "\n").encode())
        proc.stdin.flush()
        msgs = []
        while not msgs or msgs[-1]["type"] != "done":
            msgs.append(json.loads(lines.readline()))
        assert stdout_text(msgs) == "hi\nsh\n"
        proc.stdin.close()
        assert proc.wait(30) == 0
        assert proc.stdout.read() == b""
        conn.close()
    finally:
        listener.close()
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_unreachable_protocol_socket_leaves_the_output_on_stdout(tmp_path: Path) -> None:
    runtime = Runtime(ipython=False, options=("--protocol-socket", str(tmp_path / "none.sock")))
    try:
        assert stdout_text(runtime.run("print('on stdout')")) == "on stdout\n"
    finally:
        runtime.close()


def test_bootstrap_helpers() -> None:
    payload = bootstrap_payload()
    length, _, rest = payload.partition(b"\n")
    library, rest = rest[: int(length)], rest[int(length) :]
    assert library == library_source() == LIBRARY_PATH.read_bytes()
    length, _, source = rest.partition(b"\n")
    assert int(length) == len(source) == len(runtime_source())
    assert source == RUNTIME_PATH.read_bytes()
    assert bootstrap_argv("py", "--linger") == ["py", "-u", "-c", BOOTSTRAP_CODE, "--linger"]


def test_runtime_via_bootstrap_has_ipython() -> None:
    runtime = Runtime(ipython=True, bootstrap=True)
    try:
        assert runtime.ready["ipython"] is True
        msgs = runtime.run("import sys\nprint(sys.argv)\n21*2")
        assert of_type(msgs, "result")[0]["value_json"] == 42
        assert done(msgs)["status"] == "ok"
    finally:
        runtime.close()


# ---------------------------------------------------------------------------------------
# python execution


def test_state_kept_across_executes(rt: Runtime) -> None:
    assert done(rt.run("kept = 41"))["status"] == "ok"
    msgs = rt.run("kept + 1")
    assert of_type(msgs, "result")[0]["value_json"] == 42
    assert done(msgs) == {"type": "done", "id": msgs[-1]["id"], "status": "ok", "exit_code": 0}


def test_name_is_main(rt: Runtime) -> None:
    assert result_value(rt, "__name__") == "'__main__'"


def test_output_of_print_stderr_system_and_subprocess(rt: Runtime) -> None:
    code = (
        "import os, subprocess, sys\n"
        "print('from print')\n"
        "print('from stderr', file=sys.stderr)\n"
        "os.system('echo from system')\n"
        "subprocess.run(['sh', '-c', 'echo from child; echo child err >&2'])\n"
        "os.write(1, b'raw fd\\n')\n"
    )
    msgs = rt.run(code)
    assert done(msgs)["status"] == "ok"
    out = stdout_text(msgs)
    assert out == "from print\nfrom system\nfrom child\nraw fd\n"
    assert stdout_text(msgs, "stderr") == "from stderr\nchild err\n"


def test_output_streams_while_code_runs(rt: Runtime) -> None:
    rid = rt.start("import time\nfor i in range(6):\n    print('tick', i)\n    time.sleep(0.2)\n")
    stamps: list[tuple[float, Message]] = []
    while True:
        at, msg = rt.recv_timed()
        stamps.append((at, msg))
        if msg["type"] == "done":
            assert msg["id"] == rid
            break
    first_stream = min(at for at, m in stamps if m["type"] == "stream")
    done_at = stamps[-1][0]
    assert done_at - first_stream > 0.7
    assert stdout_text([m for _, m in stamps]) == "".join(f"tick {i}\n" for i in range(6))


def test_flushed_print_goes_out_while_the_cell_holds_the_gil(rt: Runtime) -> None:
    # The cell keeps the GIL for a second (a 5 s switch interval, a busy loop): a flushed
    # line must not wait for another thread of the runtime to get the GIL.
    code = (
        "import sys, time\n"
        "sys.setswitchinterval(5.0)\n"
        "try:\n"
        "    print('early', flush=True)\n"
        "    _end = time.monotonic() + 1.0\n"
        "    while time.monotonic() < _end:\n"
        "        pass\n"
        "finally:\n"
        "    sys.setswitchinterval(0.005)\n"
    )
    rid = rt.start(code)
    stamps: list[tuple[float, Message]] = []
    while True:
        at, msg = rt.recv_timed()
        stamps.append((at, msg))
        if msg["type"] == "done":
            assert msg["id"] == rid and msg["status"] == "ok"
            break
    streams = [(at, m) for at, m in stamps if m["type"] == "stream"]
    assert [m["text"] for _, m in streams] == ["early\n"]
    assert stamps[-1][0] - streams[0][0] > 0.8


def test_stdout_and_stderr_keep_their_order_when_written_directly(rt: Runtime) -> None:
    code = (
        "import os, sys, time\n"
        "for i in range(6):\n"
        "    print('out', i, flush=True)\n"
        "    time.sleep(0.005)\n"
        "    print('err', i, file=sys.stderr)\n"
        "    time.sleep(0.005)\n"
        "    os.write(1, b'fd %d\\n' % i)\n"
        "    print('after', i, flush=True)\n"
        "    time.sleep(0.005)\n"
    )
    msgs = rt.run(code)
    assert done(msgs)["status"] == "ok"
    order = "".join(
        ("E:" if m["name"] == "stderr" else "") + m["text"] for m in msgs if m["type"] == "stream"
    )
    assert order == "".join(f"out {i}\nE:err {i}\nfd {i}\nafter {i}\n" for i in range(6))


def test_result_value_json(rt: Runtime) -> None:
    for expr, expected in (("42", 42), ("True", True), ("2.5", 2.5)):
        results = of_type(rt.run(expr), "result")
        assert results[0]["data"]["text/plain"] == repr(expected)
        assert results[0]["value_json"] == expected
        assert type(results[0]["value_json"]) is type(expected)
    results = of_type(rt.run("[1, 2]"), "result")
    assert results[0]["data"]["text/plain"] == "[1, 2]"
    assert "value_json" not in results[0]


def test_none_and_assignment_and_semicolon_send_no_result(rt: Runtime) -> None:
    assert of_type(rt.run("None"), "result") == []
    assert of_type(rt.run("y = 3"), "result") == []
    assert of_type(rt.run("1", silent=True), "result") == []


def test_repr_html_and_png(rt: Runtime) -> None:
    code = (
        "class Rich:\n"
        "    def _repr_html_(self):\n"
        "        return '<b>rich</b>'\n"
        "    def _repr_png_(self):\n"
        "        return b'\\x89PNG\\r\\n\\x1a\\nfake'\n"
        "    def __repr__(self):\n"
        "        return 'Rich()'\n"
        "Rich()\n"
    )
    result = of_type(rt.run(code), "result")[0]
    assert result["data"]["text/html"] == "<b>rich</b>"
    assert result["data"]["text/plain"] == "Rich()"
    assert base64.b64decode(result["data"]["image/png"]) == b"\x89PNG\r\n\x1a\nfake"


def test_large_binary_data_follows_its_message_as_raw_lines(rt: Runtime) -> None:
    # 300 kB of image bytes: base64 text longer than the 64 KiB attachment threshold
    code = (
        "import os\n"
        "class Big:\n"
        "    def _repr_png_(self):\n"
        "        return b'\\x89PNG' + bytes(range(256)) * 1200\n"
        "    def _repr_jpeg_(self):\n"
        "        return b'small'\n"
        "display(Big())\n"
        "Big()\n"
    )
    rid = rt.start(code)
    deadline = time.monotonic() + 30
    messages = rt.until_done(rid)
    assert time.monotonic() < deadline
    png = b"\x89PNG" + bytes(range(256)) * 1200
    for msg in of_type(messages, "display") + of_type(messages, "result"):
        assert msg["attachments"] == [["image/png", len(base64.b64encode(png))]]
        assert base64.b64decode(msg["data"]["image/png"]) == png
        # small values stay in the JSON line
        assert base64.b64decode(msg["data"]["image/jpeg"]) == b"small"
    assert len(of_type(messages, "display")) == len(of_type(messages, "result")) == 1


def test_display_update_and_clear_output(rt: Runtime) -> None:
    code = (
        "print('before')\n"
        "display('first', display_id='d1')\n"
        "update_display('second', display_id='d1')\n"
        "display({'text/plain': 'raw', 'text/html': '<i>raw</i>'}, raw=True)\n"
        "clear_output(wait=True)\n"
    )
    msgs = rt.run(code)
    assert done(msgs)["status"] == "ok"
    kinds = [m["type"] for m in msgs]
    kinds = [k for i, k in enumerate(kinds) if k != "stream" or kinds[i - 1] != "stream"]
    assert kinds == ["stream", "display", "display", "display", "clear_output", "done"]
    first, second, raw = of_type(msgs, "display")
    assert first["data"]["text/plain"] == "'first'"
    assert (first["display_id"], first["update"]) == ("d1", False)
    assert second["data"]["text/plain"] == "'second'"
    assert (second["display_id"], second["update"]) == ("d1", True)
    assert raw["data"]["text/html"] == "<i>raw</i>"
    assert raw["display_id"] is None
    assert of_type(msgs, "clear_output")[0]["wait"] is True


def test_display_handle_update(rt: Runtime) -> None:
    msgs = rt.run("h = display('a', display_id=True)\nh.update('b')")
    first, second = of_type(msgs, "display")
    assert first["display_id"] and first["display_id"] == second["display_id"]
    assert second["update"] is True


def test_kb_display_module(rt: Runtime) -> None:
    msgs = rt.run("from kb_display import display, HTML\ndisplay(HTML('<p>x</p>'))")
    assert of_type(msgs, "display")[0]["data"]["text/html"] == "<p>x</p>"


def test_error_reports_name_value_traceback(rt: Runtime) -> None:
    msgs = rt.run("def f():\n    raise ValueError('bad value')\nf()")
    error = of_type(msgs, "error")[0]
    assert error["ename"] == "ValueError"
    assert error["evalue"] == "bad value"
    assert isinstance(error["traceback"], list) and error["traceback"]
    text = "\n".join(error["traceback"])
    assert "bad value" in text
    assert "kb_runtime" not in text
    assert done(msgs) == {"type": "done", "id": msgs[-1]["id"], "status": "error", "exit_code": 1}


def test_syntax_error(rt: Runtime) -> None:
    msgs = rt.run("x = (")
    error = of_type(msgs, "error")[0]
    assert error["ename"] == "SyntaxError"
    assert done(msgs)["status"] == "error"


def test_system_exit_is_an_error_and_runtime_survives(rt: Runtime) -> None:
    for code in ("raise SystemExit(3)", "import sys\nsys.exit('bye')"):
        msgs = rt.run(code)
        assert of_type(msgs, "error")[0]["ename"] == "SystemExit"
        assert done(msgs)["status"] == "error"
    assert rt.proc.poll() is None
    assert result_value(rt, "'alive'") == "'alive'"


def test_output_before_error_arrives_first(rt: Runtime) -> None:
    msgs = rt.run("import os\nos.write(1, b'first\\n')\n1/0")
    kinds = [m["type"] for m in msgs]
    assert kinds == ["stream", "error", "done"]


def test_invalid_utf8_and_closed_stdout(rt: Runtime) -> None:
    msgs = rt.run("import os\nos.write(1, b'\\xff\\xfe ok \\xe2\\x82')\nos.write(1, b'\\xac\\n')")
    assert stdout_text(msgs) == "\ufffd\ufffd ok \u20ac\n"
    msgs = rt.run("import sys\nsys.stdout.close()")
    assert done(msgs)["status"] == "ok"
    msgs = rt.run("print('after close')")
    assert stdout_text(msgs) == "after close\n"
    msgs = rt.run("import os\nos.close(1)")
    assert done(msgs)["status"] == "ok"
    assert stdout_text(rt.run("import os\nos.system('echo fd1 back')")) == "fd1 back\n"


def test_ten_megabytes_flow_in_chunks(rt: Runtime) -> None:
    rid = rt.start("import sys\nfor _ in range(10):\n    sys.stdout.write('x' * (1 << 20))\n")
    total = 0
    biggest = 0
    while True:
        msg = rt.recv(timeout=60)
        if msg["type"] == "done":
            assert msg["id"] == rid and msg["status"] == "ok"
            break
        assert msg["type"] == "stream"
        total += len(msg["text"])
        biggest = max(biggest, len(msg["text"]))
    assert total == 10 * (1 << 20)
    assert biggest <= 65536


def test_partial_line_is_flushed_before_done(rt: Runtime) -> None:
    msgs = rt.run("print('no newline', end='')\nimport sys\nsys.stderr.write('err')")
    assert stdout_text(msgs) == "no newline"
    assert stdout_text(msgs, "stderr") == "err"


def test_value_json_only_when_json_can_carry_it(rt: Runtime) -> None:
    for expr in ("float('nan')", "float('inf')", "'text'", "{'a': 1}"):
        results = of_type(rt.run(expr), "result")
        assert results and "value_json" not in results[0], expr


def test_top_level_await(rt: Runtime) -> None:
    msgs = rt.run("import asyncio\nawait asyncio.sleep(0.01)\n7")
    assert of_type(msgs, "result")[0]["value_json"] == 7


def test_forked_child_leaving_the_cell_does_not_serve(rt: Runtime) -> None:
    code = (
        "import os, sys\n"
        "pid = os.fork()\n"
        "if pid == 0:\n"
        "    print('in child', flush=True)\n"
        "    sys.exit(0)\n"
        "os.waitpid(pid, 0)\n"
        "print('in parent')\n"
    )
    msgs = rt.run(code)
    assert stdout_text(msgs) == "in child\nin parent\n"
    assert [m["type"] for m in msgs if m["type"] != "stream"] == ["done"]
    assert done(msgs)["status"] == "ok"
    for i in range(5):
        assert result_value(rt, str(i)) == str(i)


def test_unknown_request_gets_error_reply(rt: Runtime) -> None:
    reply = rt.request({"type": "no_such_thing"})
    assert "no_such_thing" in reply["error"]
    rt.send({"type": "also_unknown"})  # no id: ignored
    assert result_value(rt, "1") == "1"


# ---------------------------------------------------------------------------------------
# interrupts


def _wait_for_stream(runtime: Runtime, text: str) -> list[Message]:
    seen: list[Message] = []
    while True:
        msg = runtime.recv(timeout=30)
        seen.append(msg)
        if msg["type"] == "stream" and text in stdout_text(seen):
            return seen
        assert msg["type"] != "done", seen


@pytest.mark.parametrize("how", ["message", "sigint"])
@pytest.mark.parametrize("code", ["while True: pass", "import time\ntime.sleep(100)"])
def test_interrupt(rt: Runtime, how: str, code: str) -> None:
    rt.run("survivor = 'still here'")
    rid = rt.start("print('started', flush=True)\n" + code)
    _wait_for_stream(rt, "started")
    sent = time.monotonic()
    if how == "message":
        rt.send({"type": "interrupt"})
    else:
        os.kill(rt.proc.pid, signal.SIGINT)
    msgs = rt.until_done(rid, timeout=30)
    elapsed = time.monotonic() - sent
    assert elapsed < 1.0
    error = of_type(msgs, "error")[0]
    assert error["ename"] == "KeyboardInterrupt"
    # the user's frames only: not the runtime's SIGINT handler that raised it
    shown = "\n".join(error["traceback"])
    assert "_on_sigint" not in shown and "kb_runtime" not in shown, shown
    assert done(msgs)["status"] == "error"
    assert result_value(rt, "survivor") == "'still here'"


def test_interrupt_when_idle_is_ignored(rt: Runtime) -> None:
    rt.send({"type": "interrupt"})
    os.kill(rt.proc.pid, signal.SIGINT)
    assert result_value(rt, "'fine'") == "'fine'"
    assert rt.proc.poll() is None


def test_interrupt_reaches_os_system_child(rt: Runtime) -> None:
    rid = rt.start("import os\nprint('go', flush=True)\nrc = os.system('sleep 100')")
    _wait_for_stream(rt, "go")
    rt.send({"type": "interrupt"})
    msgs = rt.until_done(rid, timeout=30)
    # Either the interrupt lands after os.system returned (KeyboardInterrupt) or while
    # SIGINT was ignored by system(3) (rc set): the cell ends either way.
    if done(msgs)["status"] == "ok":
        assert result_value(rt, "rc != 0") == "True"
    else:
        assert of_type(msgs, "error")[0]["ename"] == "KeyboardInterrupt"
    assert result_value(rt, "'alive'") == "'alive'"


def test_interrupt_during_flushed_prints_loses_and_repeats_no_line(rt: Runtime) -> None:
    # Lines 3 ms apart each go out as a message from the printing thread: the interrupt
    # may land in any of them and must neither cut a message nor send a line twice.
    code = (
        "import time\n"
        "i = 0\n"
        "while True:\n"
        "    print('line', i, flush=True)\n"
        "    i += 1\n"
        "    time.sleep(0.003)\n"
    )
    rid = rt.start(code)
    msgs = _wait_for_stream(rt, "line 30\n")
    rt.send({"type": "interrupt"})
    msgs += rt.until_done(rid, timeout=30)
    assert of_type(msgs, "error")[0]["ename"] == "KeyboardInterrupt"
    count = int(result_value(rt, "i"))
    text = stdout_text(msgs)
    lines = text.splitlines()
    # every finished print once, in order; then at most the interrupted one (or part of it)
    assert count >= 30
    assert lines[:count] == [f"line {n}" for n in range(count)], text[-300:]
    assert len(lines) <= count + 1, text[-300:]
    if len(lines) > count:
        assert f"line {count}".startswith(lines[count]), text[-300:]


def test_an_interrupt_during_a_direct_send_is_raised_after_it_and_nothing_repeats(
    rt: Runtime,
) -> None:
    # The interrupt arrives while the printing thread itself writes the message (made
    # certain here by noting it from inside the send): it is raised once the message is
    # out, and what stdout's buffer keeps from the failed write is not sent again.
    code = (
        "import gc, sys\n"
        "_rt = [o for o in gc.get_objects() if type(o).__name__ == 'Runtime'][0]\n"
        "_orig = _rt.channel.send_now\n"
        "def _send_now(name, data):\n"
        "    sent = _orig(name, data)\n"
        "    _rt.pending_interrupt = True\n"
        "    return sent\n"
        "_caught = []\n"
        "for _stream in (sys.stdout, sys.stderr):\n"
        "    _rt.channel.send_now = _send_now\n"
        "    _rt.channel.quiet_at = 0.0\n"
        "    try:\n"
        "        print('once', file=_stream, flush=True)\n"
        "    except KeyboardInterrupt:\n"
        "        _caught.append(True)\n"
        "    finally:\n"
        "        _rt.channel.send_now = _orig\n"
        "print('after', flush=True)\n"
        "print(_caught)\n"
    )
    msgs = rt.run(code)
    assert done(msgs)["status"] == "ok", msgs
    assert stdout_text(msgs) == "once\nafter\n[True, True]\n"
    assert stdout_text(msgs, "stderr") == "once\n"


# ---------------------------------------------------------------------------------------
# input


def test_input_round_trip(rt: Runtime) -> None:
    rid = rt.start("print('asking')\nanswer = input('name? ')\nprint('got', answer)")
    before = []
    while True:
        request = rt.recv()
        if request["type"] != "stream":
            break
        before.append(request)
    assert stdout_text(before) == "asking\n"
    assert request == {"type": "input_request", "prompt": "name? ", "password": False}
    rt.send({"type": "input_reply", "value": "Ada"})
    msgs = rt.until_done(rid)
    assert stdout_text(msgs) == "got Ada\n"
    assert result_value(rt, "answer") == "'Ada'"


def test_getpass_round_trip(rt: Runtime) -> None:
    rid = rt.start("import getpass\nsecret = getpass.getpass()")
    request = rt.recv()
    assert request == {"type": "input_request", "prompt": "Password: ", "password": True}
    rt.send({"type": "input_reply", "value": "s3cret"})
    assert done(rt.until_done(rid))["status"] == "ok"
    assert result_value(rt, "len(secret)") == "6"


@pytest.mark.parametrize(
    ("reply", "ename"), [({"eof": True}, "EOFError"), ({"interrupted": True}, "KeyboardInterrupt")]
)
def test_input_eof_and_interrupted(rt: Runtime, reply: Message, ename: str) -> None:
    rid = rt.start("input()")
    assert rt.recv()["type"] == "input_request"
    rt.send(dict(reply, type="input_reply"))
    msgs = rt.until_done(rid)
    error = of_type(msgs, "error")[0]
    assert error["ename"] == ename
    if ename == "EOFError":
        assert "stdin is not available" in error["evalue"]


def test_input_eof_with_message(rt: Runtime) -> None:
    rid = rt.start("input()")
    assert rt.recv()["type"] == "input_request"
    rt.send({"type": "input_reply", "eof": True, "message": "no stdin here"})
    error = of_type(rt.until_done(rid), "error")[0]
    assert (error["ename"], error["evalue"]) == ("EOFError", "no stdin here")


def test_interrupt_while_waiting_for_input(rt: Runtime) -> None:
    rid = rt.start("input('?')")
    assert rt.recv()["type"] == "input_request"
    rt.send({"type": "interrupt"})
    msgs = rt.until_done(rid, timeout=10)
    assert of_type(msgs, "error")[0]["ename"] == "KeyboardInterrupt"
    rt.send({"type": "input_reply", "value": "late"})  # stale answer: ignored
    assert result_value(rt, "'next'") == "'next'"


# ---------------------------------------------------------------------------------------
# shell


def test_bash_block_streams_and_exit_code(rt: Runtime) -> None:
    rid = rt.start("echo one; echo err >&2; sleep 0.5; echo two; exit 3", language="bash")
    stamps = []
    while True:
        at, msg = rt.recv_timed()
        stamps.append((at, msg))
        if msg["type"] == "done":
            break
    msgs = [m for _, m in stamps]
    assert stdout_text(msgs) == "one\ntwo\n"
    assert stdout_text(msgs, "stderr") == "err\n"
    assert msgs[-1] == {"type": "done", "id": rid, "status": "error", "exit_code": 3}
    assert of_type(msgs, "error") == []
    first = next(at for at, m in stamps if m["type"] == "stream")
    assert stamps[-1][0] - first > 0.3


def test_sh_block_runs_in_cwd(rt: Runtime) -> None:
    msgs = rt.run("pwd", language="sh")
    assert stdout_text(msgs) == rt.ready["cwd"] + "\n"
    assert done(msgs)["exit_code"] == 0 and done(msgs)["status"] == "ok"


def test_interrupt_shell_block(fresh: Runtime) -> None:
    rid = fresh.start("echo go; sleep 100", language="bash")
    _wait_for_stream(fresh, "go")
    sent = time.monotonic()
    fresh.send({"type": "interrupt"})
    msgs = fresh.until_done(rid, timeout=30)
    assert time.monotonic() - sent < 5
    assert done(msgs)["status"] == "error"
    assert done(msgs)["exit_code"] != 0


def test_interrupt_shell_block_right_after_its_first_output_every_time() -> None:
    # The first output of a new runtime's shell block can arrive before the block's
    # process is registered, and a SIGINT for the main thread can land just before it
    # blocks in waitpid(): either way the interrupt was lost and the cell ran on
    # (seen about once in 15 runtimes on a loaded machine).
    for attempt in range(25):
        runtime = Runtime(ipython=False)
        try:
            rid = runtime.start("echo go; sleep 100", language="bash")
            _wait_for_stream(runtime, "go")
            runtime.send({"type": "interrupt"})
            msgs = runtime.until_done(rid, timeout=10)
            assert done(msgs)["status"] == "error", (attempt, msgs)
        finally:
            runtime.close()
            if runtime.proc.poll() is None:
                runtime.proc.kill()


def test_interrupt_shell_block_that_ignores_sigint(rt: Runtime) -> None:
    rid = rt.start("trap '' INT; echo go; sleep 100; echo survived", language="bash")
    _wait_for_stream(rt, "go")
    sent = time.monotonic()
    rt.send({"type": "interrupt"})
    msgs = rt.until_done(rid, timeout=30)
    assert time.monotonic() - sent < 10  # SIGKILL follows 2 s after the SIGINT
    assert done(msgs)["status"] == "error"
    assert "survived" not in stdout_text(msgs)
    assert stdout_text(rt.run("print('after')")) == "after\n"


def test_powershell_missing_is_an_error(rt: Runtime) -> None:
    msgs = rt.run("Write-Output hi", language="pwsh")
    assert done(msgs)["status"] == "error"
    if shutil.which("pwsh") is None:
        assert "pwsh" in of_type(msgs, "error")[0]["evalue"]


# ---------------------------------------------------------------------------------------
# complete / inspect


def test_complete(rt: Runtime) -> None:
    rt.run("import os\nmy_variable_name = 1")
    code = "os.pa"
    reply = rt.request({"type": "complete", "code": code, "cursor_pos": len(code)})
    start, end = reply["cursor_start"], reply["cursor_end"]
    assert end == len(code)
    completed = {code[:start] + m + code[end:] for m in reply["matches"]}
    assert "os.path" in completed
    code = "x = my_varia"
    reply = rt.request({"type": "complete", "code": code, "cursor_pos": len(code)})
    completed = {code[: reply["cursor_start"]] + m for m in reply["matches"]}
    assert "x = my_variable_name" in completed


def test_inspect(rt: Runtime) -> None:
    rt.run("def documented(a, b=2):\n    'Adds things up.'\n    return a + b")
    code = "documented("
    reply = rt.request(
        {"type": "inspect", "code": code, "cursor_pos": len(code), "detail_level": 0}
    )
    assert reply["found"] is True
    text = re.sub(r"\x1b\[[0-9;]*m", "", reply["data"]["text/plain"])
    assert "Adds things up." in text
    assert "b=2" in text
    reply = rt.request(
        {"type": "inspect", "code": "no_such_name", "cursor_pos": 3, "detail_level": 0}
    )
    assert reply["found"] is False


# ---------------------------------------------------------------------------------------
# ending


def test_exits_on_stdin_eof_and_kills_shell_groups(fresh: Runtime) -> None:
    rid = fresh.start("echo $$; sleep 100", language="bash")
    msgs = _wait_for_stream(fresh, "\n")
    pid = int(stdout_text(msgs).split()[0])
    assert rid
    fresh.stdin.close()
    assert fresh.proc.wait(10) == 0
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            with open(f"/proc/{pid}/stat") as f:
                state = f.read().rsplit(")", 1)[1].split()[0]
        except FileNotFoundError:
            break
        if state == "Z":
            break
        time.sleep(0.05)
    else:
        raise AssertionError("the shell's process group survived the runtime")


def test_shutdown_message(fresh: Runtime) -> None:
    fresh.send({"type": "shutdown"})
    assert fresh.proc.wait(10) == 0


def test_linger_keeps_running_after_eof() -> None:
    runtime = Runtime(ipython=False, options=("--linger",))
    try:
        runtime.stdin.close()
        with pytest.raises(subprocess.TimeoutExpired):
            runtime.proc.wait(0.5)
    finally:
        runtime.proc.kill()
        runtime.proc.wait()


def test_ipython_bang_commands_and_exit() -> None:
    runtime = Runtime(ipython=True)
    try:
        msgs = runtime.run("!echo bang; echo err >&2")
        assert stdout_text(msgs) == "bang\n"
        assert stdout_text(msgs, "stderr") == "err\n"
        msgs = runtime.run("exit()")
        assert done(msgs)["status"] == "ok"
        assert "no effect" in stdout_text(msgs, "stderr")
        assert result_value(runtime, "'alive'") == "'alive'"
    finally:
        runtime.close()


def test_ipython_shell_prints_no_prompts(fresh: Runtime) -> None:
    msgs = fresh.run("x = 5\nx")
    assert of_type(msgs, "stream") == []
    msgs = fresh.run("%time 1+1")
    assert "Out[" not in stdout_text(msgs)
    assert "In [" not in stdout_text(msgs)


def _python38() -> str | None:
    """A working Python 3.8 interpreter, if this machine has one (pyenv or PATH)."""
    candidates = [str(p) for p in sorted(Path("/root/.pyenv/versions").glob("3.8*/bin/python"))]
    candidates += [c for c in [shutil.which("python3.8")] if c]
    for candidate in candidates:
        check = subprocess.run(
            [candidate, "-c", "import sys; assert sys.version_info[:2] == (3, 8)"],
            capture_output=True,
        )
        if check.returncode == 0:
            return candidate
    return None


def test_runs_on_python_3_8() -> None:
    python = _python38()
    if python is None:
        pytest.skip("no Python 3.8 interpreter here")
    proc = subprocess.Popen(
        [python, "-u", str(RUNTIME_PATH)], stdin=subprocess.PIPE, stdout=subprocess.PIPE
    )
    assert proc.stdin is not None and proc.stdout is not None
    ready = json.loads(proc.stdout.readline())
    assert ready["python"].startswith("3.8.")
    code = "class R:\n    def _repr_html_(self):\n        return '<b/>'\nprint('hi')\nR()"
    proc.stdin.write((json.dumps({"type": "execute", "id": "1", "code": code}) + "\n").encode())
    proc.stdin.flush()
    msgs = [json.loads(proc.stdout.readline()) for _ in range(3)]
    assert [m["type"] for m in msgs] == ["stream", "result", "done"]
    assert msgs[1]["data"]["text/html"] == "<b/>"
    proc.stdin.close()
    assert proc.wait(10) == 0


@pytest.mark.parametrize("ipython", [False, True], ids=["plain", "ipython"])
def test_help_query_pages_help_text(ipython: bool) -> None:
    rt = Runtime(ipython=ipython)
    try:
        msgs = rt.run("def greet(name):\n    '''Say hello.'''\n    return name\n")
        assert of_type(msgs, "error") == []
        for query in ("greet?", "?greet", "greet??"):
            pages = of_type(rt.run(query), "page")
            assert len(pages) == 1, query
            assert "Say hello." in pages[0]["data"]["text/plain"]
        missing = rt.run("nothing_here?")
        assert of_type(missing, "page") == []
        assert "Object `nothing_here` not found." in stdout_text(missing).replace("\x1b", "")
    finally:
        rt.close()
