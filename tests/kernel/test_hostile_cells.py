"""Cells that damage their own process: output still arrives, children do not outlive the kernel."""

from __future__ import annotations

import time

import psutil
import pytest
from _support.kernel_client import run_cell, start_kernel
from _support.specs import LOCAL


def test_print_after_closing_fd1_and_fd2_still_shows(kernel: tuple) -> None:
    _, kc = kernel
    run = run_cell(
        kc, "import os, sys\nos.close(1)\nos.close(2)\nprint('x')\nprint('e', file=sys.stderr)"
    )
    assert run.status == "ok"
    assert run.stream_text("stdout") == "x\n"
    assert run.stream_text("stderr") == "e\n"
    later = run_cell(kc, "import os\nprint('later', flush=True)\nos.system('echo from-shell')")
    assert later.status == "ok"
    assert later.stream_text("stdout") == "later\nfrom-shell\n"


_FORGE_ATTACHMENT = (
    "import gc, os\n"
    "rt = next(o for o in gc.get_objects()\n"
    "          if type(o).__name__ == 'Runtime' and hasattr(o, 'channel'))\n"
    'line = b\'{"type":"display","data":{"text/plain":"forged"},"metadata":{},\'\n'
    'line += b\'"display_id":null,"update":false,"attachments":[["image/png",7]]}\\n\'\n'
    "with rt.channel.write_lock:\n"
    "    os.write(rt.channel.out_fd, line + b'ab\"},\\\\x\\n')\n"
)


def test_images_arrive_whole_and_forged_attachments_stay_text(kernel: tuple) -> None:
    _, kc = kernel
    image = run_cell(
        kc,
        "import base64, os\n"
        "class Png:\n"
        "    def _repr_png_(self):\n"
        "        return data\n"
        "data = b'\\x89PNG' + os.urandom(1_000_000)\n"
        "display(Png())\n"
        "base64.b64encode(data).decode()",
    )
    assert image.status == "ok"
    (shown,) = image.of_type("display_data")
    (expected,) = image.of_type("execute_result")
    assert shown["content"]["data"]["image/png"] == expected["content"]["data"]["text/plain"][1:-1]
    # Code can write to the runtime's channel: a forged attachment that is not base64
    # (quotes, a backslash) must reach the frontend as the text it is, in valid JSON.
    forged = run_cell(kc, _FORGE_ATTACHMENT)
    assert forged.status == "ok"
    (display,) = forged.of_type("display_data")
    assert display["content"]["data"] == {"text/plain": "forged", "image/png": 'ab"},\\x'}


_STUBBORN_CHILD = (
    "import signal, time\n"
    "signal.signal(signal.SIGINT, signal.SIG_IGN)\n"
    "{extra}"
    "print('ready', flush=True)\n"
    "time.sleep(600)\n"
)
_START_CHILDREN = (
    "import subprocess, sys\n"
    "sources = [{plain!r}, {no_term!r}, {no_term!r}]\n"
    "kids = [\n"
    "    subprocess.Popen([sys.executable, '-c', src], stdout=subprocess.PIPE,\n"
    "                     start_new_session=(i == 2))\n"
    "    for i, src in enumerate(sources)\n"
    "]\n"
    "for kid in kids:\n"
    "    assert kid.stdout.readline() == b'ready\\n'\n"
    "print(*[kid.pid for kid in kids])\n"
).format(
    plain=_STUBBORN_CHILD.format(extra=""),
    no_term=_STUBBORN_CHILD.format(extra="signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"),
)


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


@pytest.mark.timeout(120)
def test_children_ignoring_sigint_and_sigterm_end_with_the_kernel() -> None:
    km, kc = start_kernel(LOCAL.ready())
    try:
        run = run_cell(kc, _START_CHILDREN)
        assert run.status == "ok", run.outputs
        pids = [int(word) for word in run.stream_text().split()]
        assert len(pids) == 3 and all(_alive(pid) for pid in pids)
        # An interrupt ends the cell that waits for them, as in ipykernel; children that
        # ignore SIGINT keep running until the kernel shuts down (ipykernel does the same).
        msg_id = kc.execute("print('waiting', flush=True)\nkids[0].wait()", stop_on_error=False)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            msg = kc.get_iopub_msg(timeout=deadline - time.monotonic())
            if msg["parent_header"].get("msg_id") == msg_id and msg["msg_type"] == "stream":
                break
        km.interrupt_kernel()
        reply = kc.get_shell_msg(timeout=10)
        assert reply["content"]["ename"] == "KeyboardInterrupt"
        assert all(_alive(pid) for pid in pids)
    finally:
        kc.stop_channels()
        km.shutdown_kernel()
    deadline = time.monotonic() + 15
    while any(_alive(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    survivors = [pid for pid in pids if _alive(pid)]
    for pid in survivors:  # do not leave them behind when the assertion fails
        psutil.Process(pid).kill()
    assert not survivors, f"children {survivors} outlived the kernel"


@pytest.mark.timeout(120)
def test_children_of_a_dead_runtime_end_when_it_is_replaced() -> None:
    km, kc = start_kernel(LOCAL.ready())
    try:
        start = _START_CHILDREN.replace("start_new_session=(i == 2)", "start_new_session=False")
        run = run_cell(kc, start)
        assert run.status == "ok", run.outputs
        pids = [int(word) for word in run.stream_text().split()]
        assert all(_alive(pid) for pid in pids)
        died = run_cell(kc, "import os, signal\nos.kill(os.getpid(), signal.SIGKILL)")
        assert died.reply["content"]["ename"] == "RuntimeDiedError"
        assert run_cell(kc, "print('fresh')").stream_text() == "fresh\n"
        deadline = time.monotonic() + 15
        while any(_alive(pid) for pid in pids) and time.monotonic() < deadline:
            time.sleep(0.05)
        survivors = [pid for pid in pids if _alive(pid)]
        for pid in survivors:
            psutil.Process(pid).kill()
        assert not survivors, f"children {survivors} outlived their runtime"
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)
