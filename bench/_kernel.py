"""One Jupyter kernel driven through jupyter_client, as a frontend drives it."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from jupyter_client.manager import KernelManager


@dataclass
class Execution:
    """What one execute request produced, as seen by the client."""

    seconds: float
    """From just before ``execute()`` to the ``idle`` status of this request."""
    status: str
    stream_bytes: int = 0
    stream_msgs: int = 0
    results: list[dict[str, Any]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def proc_status(pid: int) -> dict[str, int]:
    """``VmRSS``/``VmHWM`` (bytes) of a process from /proc (empty when it is gone)."""
    out: dict[str, int] = {}
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                out[key] = int(value.split()[0]) * 1024
    return out


class Kernel:
    """A kernel started from a kernelspec, with a blocking client on all channels."""

    log_dir: Path | None = None
    """Where kernels' stdout/stderr go (set once by the bench; None: inherited)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.km = KernelManager(kernel_name=name)
        self.kc: Any = None
        self._log: IO[bytes] | None = None

    def start(self, timeout: float = 120) -> None:
        """Launch the kernel process and wait until it answers ``kernel_info``."""
        kwargs: dict[str, Any] = {}
        if self.log_dir is not None:
            self._log = open(self.log_dir / f"{self.name}.log", "ab")  # noqa: SIM115
            kwargs = {"stdout": self._log, "stderr": self._log}
        self.km.start_kernel(**kwargs)
        self.kc = self.km.client()
        self.kc.start_channels()
        self.kc.wait_for_ready(timeout=timeout)

    @property
    def pid(self) -> int:
        """The kernel process id (the host process; the runtime is its child/container)."""
        return int(self.km.provisioner.process.pid)

    def execute(
        self,
        code: str,
        *,
        timeout: float = 120,
        on_stream: Callable[[str, float], None] | None = None,
    ) -> Execution:
        """Run ``code``; return when this request's ``idle`` status and reply arrived.

        ``on_stream(text, arrival_time)`` is called for every stream message as it
        arrives (``time.time()`` of arrival).
        """
        kc = self.kc
        t0 = time.perf_counter()
        msg_id = kc.execute(code, store_history=False)
        result = Execution(seconds=0.0, status="?")
        idle = replied = False
        deadline = time.monotonic() + timeout
        while not idle:
            msg = kc.get_iopub_msg(timeout=max(0.01, deadline - time.monotonic()))
            if msg["parent_header"].get("msg_id") != msg_id:
                continue
            kind = msg["msg_type"]
            content = msg["content"]
            if kind == "stream":
                if on_stream is not None:
                    on_stream(content["text"], time.time())
                result.stream_bytes += len(content["text"].encode())
                result.stream_msgs += 1
            elif kind in ("execute_result", "display_data"):
                result.results.append(content["data"])
            elif kind == "error":
                result.errors.append(f"{content['ename']}: {content['evalue']}")
            elif kind == "status" and content["execution_state"] == "idle":
                idle = True
        result.seconds = time.perf_counter() - t0
        while not replied:
            reply = kc.get_shell_msg(timeout=max(0.01, deadline - time.monotonic()))
            if reply["parent_header"].get("msg_id") == msg_id:
                replied = True
                result.status = reply["content"]["status"]
        return result

    def info_round_trip(self, timeout: float = 30) -> float:
        """Seconds for a ``kernel_info`` request: its reply and its ``idle`` status.

        The Jupyter messaging floor of this kernel process (no code runs anywhere).
        """
        kc = self.kc
        t0 = time.perf_counter()
        msg_id = kc.kernel_info()
        deadline = time.monotonic() + timeout
        replied = idle = False
        while not replied:
            reply = kc.get_shell_msg(timeout=max(0.01, deadline - time.monotonic()))
            replied = reply["parent_header"].get("msg_id") == msg_id
        while not idle:
            msg = kc.get_iopub_msg(timeout=max(0.01, deadline - time.monotonic()))
            idle = (
                msg["parent_header"].get("msg_id") == msg_id
                and msg["msg_type"] == "status"
                and msg["content"]["execution_state"] == "idle"
            )
        return time.perf_counter() - t0

    def check(self, code: str = "1 + 1", expect: str = "2") -> None:
        """Run ``code`` and raise unless its result's text/plain is ``expect``."""
        got = self.execute(code)
        texts = [r.get("text/plain") for r in got.results]
        if got.status != "ok" or expect not in texts:
            raise RuntimeError(
                f"kernel {self.name}: {code!r} gave status {got.status}, results {texts}, "
                f"errors {got.errors}"
            )

    def stop(self) -> float:
        """Shut the kernel down gracefully; return the seconds it took."""
        t0 = time.perf_counter()
        with contextlib.suppress(Exception):
            if self.kc is not None:
                self.kc.stop_channels()
        self.km.shutdown_kernel(now=False)
        elapsed = time.perf_counter() - t0
        if self._log is not None:
            self._log.close()
        return elapsed


@contextlib.contextmanager
def running(names: Sequence[str], warmup: int = 0) -> Iterator[dict[str, Kernel]]:
    """Start a warm kernel per name (checked, ``warmup`` cells run), stop them all after."""
    kernels: dict[str, Kernel] = {}
    try:
        for name in names:
            kernels[name] = kernel = Kernel(name)
            kernel.start()
            kernel.check()
            for _ in range(warmup):
                kernel.execute("x = 1")
        yield kernels
    finally:
        for kernel in kernels.values():
            with contextlib.suppress(Exception):
                kernel.stop()
