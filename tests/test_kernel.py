"""BridgeKernel's request handlers on their own (the kernel-level suites in tests/kernel
drive whole kernels through jupyter_client)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from kernel_bridge.events import Event, Finished
from kernel_bridge.executors.base import RemoteExecutor
from kernel_bridge.kernel import BridgeKernel
from kernel_bridge.session import Session


class Hanging(RemoteExecutor):
    """An executor whose execution never ends by itself."""

    kind = "hanging"

    def __init__(self) -> None:
        self.running = asyncio.Event()

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def interrupt(self) -> None: ...

    async def execute(self, code: str, **options: object) -> AsyncIterator[Event]:  # type: ignore[override]
        self.running.set()
        await asyncio.Event().wait()
        yield Finished(0)


def test_a_cancelled_execute_request_is_cancelled_not_answered() -> None:
    # do_execute catches failures so that every request gets a reply; it used to catch
    # BaseException and so turned the cancellation of its own task into an error reply.
    async def main() -> None:
        kernel = BridgeKernel()
        executor = Hanging()
        kernel.bridge_session = Session(lambda: executor)
        task = asyncio.ensure_future(kernel.do_execute("x", silent=True))
        await executor.running.wait()
        task.cancel()
        try:
            reply = await task
        except asyncio.CancelledError:
            return
        raise AssertionError(f"the cancellation was swallowed: {reply}")

    asyncio.run(main())
