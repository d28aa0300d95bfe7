"""The output-counting queue between the channel's pump and a request.

(kernel_bridge/executors/runtime_backed/_output_queue.py)
"""

from __future__ import annotations

import asyncio

from kernel_bridge.executors.runtime_backed._output_queue import OutputQueue, output_size


def stream(text: str) -> dict[str, str]:
    return {"type": "stream", "name": "stdout", "text": text}


def test_output_size_counts_stream_text_and_display_data_only() -> None:
    assert output_size(stream("abc")) == 3
    display = {"type": "display", "data": {"text/plain": "xy", "image/png": "z" * 9}}
    assert output_size(display) == 11
    assert output_size({"type": "display", "data": {"application/json": {"a": 1}}}) == 0
    assert output_size({"type": "done", "exit_code": 0}) == 0
    assert output_size(object()) == 0


def test_items_come_out_in_order_and_full_follows_the_output_held() -> None:
    async def main() -> None:
        queue = OutputQueue(limit=10)
        queue.put(stream("x" * 6))
        assert not queue.full()
        queue.put({"type": "done"})
        queue.put(stream("y" * 6))
        assert queue.full()  # 12 characters held
        assert (await queue.get())["text"] == "x" * 6
        assert not queue.full()
        assert (await queue.get())["type"] == "done"
        assert (await queue.get())["text"] == "y" * 6

    asyncio.run(main())


def test_get_waits_for_an_item() -> None:
    async def main() -> None:
        queue = OutputQueue(limit=10)
        getter = asyncio.ensure_future(queue.get())
        await asyncio.sleep(0)
        assert not getter.done()
        queue.put(stream("a"))
        assert (await asyncio.wait_for(getter, 5))["text"] == "a"

    asyncio.run(main())


def test_the_pump_waits_for_room_until_a_get_makes_it() -> None:
    async def main() -> None:
        queue = OutputQueue(limit=4)
        queue.put(stream("12345"))
        waiter = asyncio.ensure_future(queue.wait_for_room())
        for _ in range(5):
            await asyncio.sleep(0)
        assert not waiter.done(), "room was reported while the queue was over its limit"
        await queue.get()
        await asyncio.wait_for(waiter, 5)

    asyncio.run(main())


def test_release_wakes_the_pump_without_room() -> None:
    async def main() -> None:
        queue = OutputQueue(limit=4)
        queue.put(stream("12345"))
        waiter = asyncio.ensure_future(queue.wait_for_room())
        await asyncio.sleep(0)
        assert not waiter.done()
        queue.release()
        await asyncio.wait_for(waiter, 5)
        assert queue.full()

    asyncio.run(main())


def test_wait_for_room_returns_at_once_when_there_is_room() -> None:
    async def main() -> None:
        queue = OutputQueue(limit=4)
        queue.put(stream("123"))
        await asyncio.wait_for(queue.wait_for_room(), 5)

    asyncio.run(main())
