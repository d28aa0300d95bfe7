"""Drive a kernel's debugger through jupyter_client the way JupyterLab's debugger does."""

from __future__ import annotations

import queue
import time
from typing import Any

from jupyter_client.blocking.client import BlockingKernelClient

# what JupyterLab 4 sends in its initialize request
JUPYTERLAB_INITIALIZE = {
    "clientID": "jupyterlab",
    "clientName": "JupyterLab",
    "adapterID": "python",
    "pathFormat": "path",
    "linesStartAt1": True,
    "columnsStartAt1": True,
    "supportsVariableType": True,
    "supportsVariablePaging": True,
    "supportsRunInTerminalRequest": True,
    "locale": "en",
}


class DebugClient:
    """debug_request/debug_reply on the control channel, debug_event read from IOPub.

    IOPub messages that are not awaited are kept in ``iopub`` (in arrival order).
    """

    def __init__(self, kc: BlockingKernelClient) -> None:
        self.kc = kc
        self.seq = 0
        self.iopub: list[dict[str, Any]] = []

    def request(
        self, command: str, arguments: dict[str, Any] | None = None, timeout: float = 60.0
    ) -> dict[str, Any]:
        """Send one DAP request and return the ``debug_reply`` content."""
        self.seq += 1
        content = {"type": "request", "seq": self.seq, "command": command}
        content["arguments"] = arguments or {}
        msg = self.kc.session.msg("debug_request", content)
        self.kc.control_channel.send(msg)
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"no debug_reply to {command} within {timeout} s")
            try:
                reply = self.kc.get_control_msg(timeout=left)
            except queue.Empty:
                continue
            if reply["parent_header"].get("msg_id") == msg["header"]["msg_id"]:
                return dict(reply["content"])

    def wait_event(self, event: str, timeout: float = 60.0) -> dict[str, Any]:
        """Return the next ``debug_event`` named ``event`` (kept ones first)."""
        for i, msg in enumerate(self.iopub):
            if msg["msg_type"] == "debug_event" and msg["content"].get("event") == event:
                return dict(self.iopub.pop(i)["content"])
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"no {event} debug_event within {timeout} s")
            try:
                msg = self.kc.get_iopub_msg(timeout=left)
            except queue.Empty:
                continue
            if msg["msg_type"] == "debug_event" and msg["content"].get("event") == event:
                return dict(msg["content"])
            self.iopub.append(msg)

    def wait_idle(self, msg_id: str, timeout: float = 60.0) -> list[dict[str, Any]]:
        """Collect the IOPub messages of request ``msg_id`` until it is idle."""
        out = [m for m in self.iopub if m["parent_header"].get("msg_id") == msg_id]
        self.iopub = [m for m in self.iopub if m["parent_header"].get("msg_id") != msg_id]
        if any(_is_idle(m) for m in out):
            return out
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"request {msg_id} not idle within {timeout} s")
            try:
                msg = self.kc.get_iopub_msg(timeout=left)
            except queue.Empty:
                continue
            if msg["parent_header"].get("msg_id") != msg_id:
                self.iopub.append(msg)
                continue
            out.append(msg)
            if _is_idle(msg):
                return out

    def start(self) -> dict[str, Any]:
        """initialize + attach + debugInfo as JupyterLab does; returns the debugInfo body."""
        init = self.request("initialize", JUPYTERLAB_INITIALIZE)
        assert init["success"], init
        attach = self.request("attach", {})
        assert attach["success"], attach
        info = self.request("debugInfo")
        assert info["success"], info
        return dict(info["body"])


def _is_idle(msg: dict[str, Any]) -> bool:
    return msg["msg_type"] == "status" and msg["content"].get("execution_state") == "idle"


def stream_text(messages: list[dict[str, Any]], name: str = "stdout") -> str:
    """The text of the ``stream`` messages named ``name``."""
    return "".join(
        m["content"]["text"]
        for m in messages
        if m["msg_type"] == "stream" and m["content"]["name"] == name
    )
