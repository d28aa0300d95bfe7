"""A small helper for driving a real kernel through jupyter_client in tests."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from jupyter_client.blocking.client import BlockingKernelClient
from jupyter_client.manager import KernelManager


@dataclass
class CellRun:
    """What one execute_request produced."""

    reply: dict[str, Any]
    outputs: list[dict[str, Any]] = field(default_factory=list)
    arrivals: list[float] = field(default_factory=list)
    started: float = 0.0
    replied: float = 0.0

    @property
    def status(self) -> str:
        return str(self.reply["content"]["status"])

    def stream_text(self, name: str = "stdout") -> str:
        return "".join(
            m["content"]["text"]
            for m in self.outputs
            if m["msg_type"] == "stream" and m["content"]["name"] == name
        )

    def of_type(self, msg_type: str) -> list[dict[str, Any]]:
        return [m for m in self.outputs if m["msg_type"] == msg_type]


def run_cell(
    kc: BlockingKernelClient,
    code: str,
    *,
    timeout: float = 60.0,
    allow_stdin: bool = False,
    stdin_answer: str | None = None,
) -> CellRun:
    """Execute code and collect every IOPub message of the request until idle."""
    started = time.monotonic()
    msg_id = kc.execute(code, allow_stdin=allow_stdin, stop_on_error=False)
    run = CellRun(reply={}, started=started)
    deadline = started + timeout
    got_idle = False
    while not got_idle:
        if stdin_answer is not None:
            try:
                req = kc.get_stdin_msg(timeout=0.01)
            except Exception:
                req = None
            if req is not None and req["msg_type"] == "input_request":
                kc.input(stdin_answer)
                stdin_answer = None
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError(f"no idle status within {timeout} s for {code!r}")
        try:
            msg = kc.get_iopub_msg(
                timeout=min(remaining, 0.05 if stdin_answer is not None else remaining)
            )
        except Exception:
            continue
        if msg["parent_header"].get("msg_id") != msg_id:
            continue
        kind = msg["msg_type"]
        if kind == "status":
            if msg["content"]["execution_state"] == "idle":
                got_idle = True
            continue
        if kind == "execute_input":
            continue
        run.outputs.append(msg)
        run.arrivals.append(time.monotonic())
    run.reply = kc.get_shell_msg(timeout=max(1.0, deadline - time.monotonic()))
    while run.reply["parent_header"].get("msg_id") != msg_id:
        run.reply = kc.get_shell_msg(timeout=max(1.0, deadline - time.monotonic()))
    run.replied = time.monotonic()
    return run


def start_kernel(name: str, **kwargs: object) -> tuple[KernelManager, BlockingKernelClient]:
    """Start a kernel from a spec and return its manager and a ready client."""
    km = KernelManager(kernel_name=name)
    km.start_kernel(**kwargs)
    kc = km.client()
    kc.start_channels()
    try:
        kc.wait_for_ready(timeout=60)
    except RuntimeError:
        kc.stop_channels()
        km.shutdown_kernel(now=True)
        raise
    return km, kc
