"""Pacing large output against ipykernel's IOPub thread (kernel_bridge/_iopub_pacing.py).

A real ``IOPubThread`` on a real PUB socket does the sending; the test holds that thread
busy to see the kernel's loop wait for it.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator

import pytest
import zmq
from ipykernel.iostream import IOPubThread

from kernel_bridge import _iopub_pacing
from kernel_bridge._iopub_pacing import BACKLOG, LARGE, IOPubPacer, payload_size
from kernel_bridge.events import Display, Error, Result, Stream


@pytest.fixture
def iopub_thread() -> Iterator[IOPubThread]:
    context = zmq.Context()
    socket = context.socket(zmq.PUB)
    socket.bind("tcp://127.0.0.1:*")
    thread = IOPubThread(socket)
    thread.start()
    try:
        yield thread
    finally:
        # ipykernel's stop() cancels its event-pipe task without letting the loop run it
        # ("Task was destroyed but it is pending" at exit): end it on the thread first
        cancelled = threading.Event()

        def cancel_gc_task() -> None:
            task = thread._event_pipe_gc_task
            if task is not None:
                task.cancel()
            thread.io_loop.add_callback(cancelled.set)  # after the task saw it

        thread.io_loop.add_callback(cancel_gc_task)
        cancelled.wait(10)
        thread.stop()
        thread.close()
        context.term()


def hold(thread: IOPubThread) -> threading.Event:
    """Keep the IOPub thread busy until the returned event is set."""
    release = threading.Event()
    thread.schedule(lambda: release.wait(30))
    return release


def test_the_loop_waits_while_more_than_the_backlog_is_unsent(iopub_thread: IOPubThread) -> None:
    async def main() -> None:
        pacer = IOPubPacer(iopub_thread.schedule)
        release = hold(iopub_thread)
        for _ in range(BACKLOG):
            pacer.published(LARGE)
            await asyncio.wait_for(pacer.wait(), 5)  # within the backlog: no wait
        pacer.published(LARGE)
        waiting = asyncio.ensure_future(pacer.wait())
        for _ in range(20):
            await asyncio.sleep(0)
        # nothing but the IOPub thread can end this wait, and it is held
        assert not waiting.done()
        release.set()
        await asyncio.wait_for(waiting, 5)

    asyncio.run(main())


def test_small_messages_are_not_paced(iopub_thread: IOPubThread) -> None:
    async def main() -> None:
        pacer = IOPubPacer(iopub_thread.schedule)
        release = hold(iopub_thread)
        try:
            for _ in range(BACKLOG + 5):
                pacer.published(LARGE - 1)
                await asyncio.wait_for(pacer.wait(), 5)
        finally:
            release.set()

    asyncio.run(main())


def test_a_thread_that_does_not_send_holds_the_loop_only_briefly(
    iopub_thread: IOPubThread, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_iopub_pacing, "PATIENCE_S", 0.05)

    async def main() -> None:
        pacer = IOPubPacer(iopub_thread.schedule)
        release = hold(iopub_thread)
        try:
            for _ in range(BACKLOG + 1):
                pacer.published(LARGE)
            await asyncio.wait_for(pacer.wait(), 5)
            pacer.published(LARGE)  # the stale backlog was dropped: no second wait
            await asyncio.wait_for(pacer.wait(), 5)
        finally:
            release.set()

    asyncio.run(main())


def test_payload_size_counts_text_output() -> None:
    assert payload_size(Stream("stdout", "abc")) == 3
    assert payload_size(Display(data={"text/plain": "ab", "image/png": "c" * 5})) == 7
    assert payload_size(Result(data={"text/plain": "1"})) == 1
    assert payload_size(Error("E", "v", ["tb" * 100])) == 0
