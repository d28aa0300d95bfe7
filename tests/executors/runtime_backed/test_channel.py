"""The runtime channel (executors/runtime_backed/channel.py) through its transport seam.

Two transports (``_support.runtime_transports``) stand in for a backend: a real
kb_runtime subprocess on plain pipes, and a scripted runtime for the faults a real one
does not produce on demand (silence, a lost ``done``, a runtime without a version).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

import pytest
from _support.runtime_transports import Frame, PipeTransport, ScriptedTransport

from kernel_bridge.errors import RuntimeDiedError, RuntimeProtocolError, StdinNotAllowedError
from kernel_bridge.events import Display, Error, Event, Finished, Result, StateLost, Stream
from kernel_bridge.executors.runtime_backed import channel as channel_module
from kernel_bridge.executors.runtime_backed.channel import RuntimeChannel
from kernel_bridge.runtime import PROTOCOL_VERSION, runtime_source

READY = {"type": "ready", "pid": 4321, "python": "3.12.1", "ipython": False, "cwd": "/w"}


def ready(**changes: Any) -> dict[str, Any]:
    return {**READY, "protocol": PROTOCOL_VERSION, **changes}


async def collect(events: AsyncIterator[Event]) -> list[Event]:
    return [event async for event in events]


# -- opening: the ready message and the protocol version ----------------------------------


def test_a_real_runtime_is_opened_and_runs_code() -> None:
    async def main() -> None:
        transport = await PipeTransport.start()
        channel = await RuntimeChannel.open(transport, startup_timeout=30)
        try:
            assert channel.info.pid == transport.process.pid and channel.alive
            events = await collect(channel.execute("x = 6 * 7\nprint(x)\nx + 1"))
            assert Stream("stdout", "42\n") in events
            assert [e.data["text/plain"] for e in events if isinstance(e, Result)] == ["43"]
            assert events[-1] == Finished(0)
        finally:
            await channel.close()
        assert transport.process.returncode is not None and not channel.alive

    asyncio.run(main())


def test_a_real_runtime_of_another_protocol_version_is_refused_and_stopped() -> None:
    source = runtime_source().replace(
        f"PROTOCOL_VERSION = {PROTOCOL_VERSION}\n".encode(),
        f"PROTOCOL_VERSION = {PROTOCOL_VERSION + 1}\n".encode(),
    )
    assert source != runtime_source()

    async def main() -> None:
        transport = await PipeTransport.start(source)
        with pytest.raises(RuntimeProtocolError, match="another kernel_bridge version") as info:
            await RuntimeChannel.open(transport, startup_timeout=30)
        assert info.value.runtime_version == PROTOCOL_VERSION + 1
        assert info.value.host_version == PROTOCOL_VERSION
        assert transport.process.returncode is not None  # killed, nothing runs in it
        await transport.close()

    asyncio.run(main())


def test_a_runtime_without_a_protocol_version_is_refused() -> None:
    async def main() -> None:
        transport = ScriptedTransport([READY])  # what a runtime before versions said
        with pytest.raises(RuntimeProtocolError, match="protocol version None"):
            await RuntimeChannel.open(transport)
        assert transport.killed

    asyncio.run(main())


def test_lines_before_ready_are_skipped_and_ready_is_read() -> None:
    async def main() -> None:
        transport = ScriptedTransport(
            [b"sitecustomize says hi\n", b"[1, 2]\n", ready(debugpy=True)]
        )
        channel = await RuntimeChannel.open(transport)
        assert (channel.info.pid, channel.info.python, channel.info.cwd) == (4321, "3.12.1", "/w")
        assert channel.info.debugpy and not channel.info.ipython
        await channel.close()
        assert transport.closed and transport.sent[-1] == {"type": "shutdown"}

    asyncio.run(main())


def test_a_runtime_that_exits_or_stays_silent_before_ready_is_a_runtime_death() -> None:
    async def main() -> None:
        with pytest.raises(RuntimeDiedError, match=r"exited before it was ready \(exit code 3\)"):
            await RuntimeChannel.open(ScriptedTransport([b""]))
        silent = ScriptedTransport()
        with pytest.raises(RuntimeDiedError, match=r"did not become ready within 0\.2 s"):
            await RuntimeChannel.open(silent, startup_timeout=0.2)
        assert silent.killed

    asyncio.run(main())


# -- executions ---------------------------------------------------------------------------


def _answers(*frames: Frame) -> Callable[[dict[str, Any]], Sequence[Frame]]:
    def respond(msg: dict[str, Any]) -> Sequence[Frame]:
        return frames if msg["type"] == "execute" else ()

    return respond


def test_an_execution_is_one_request_and_its_frames_become_events_in_order() -> None:
    respond = _answers(
        {"type": "stream", "name": "stdout", "text": "a"},
        {"type": "stream", "name": "stderr", "text": "b"},
        {"type": "display", "data": {"text/html": "<b/>"}, "display_id": "d", "update": True},
        {"type": "result", "data": {"text/plain": "1"}, "value_json": 1},
        {"type": "mystery"},  # an unknown frame type is ignored
        {"type": "error", "ename": "ValueError", "evalue": "v", "traceback": ["tb"]},
        {"type": "done", "exit_code": 1},
    )

    async def main() -> None:
        transport = ScriptedTransport([ready()], respond)
        channel = await RuntimeChannel.open(transport)
        events = await collect(channel.execute("code", language="bash", silent=True))
        assert events == [
            Stream("stdout", "a"),
            Stream("stderr", "b"),
            Display({"text/html": "<b/>"}, {}, "d", True),
            Result({"text/plain": "1"}, {}, 1),
            Error("ValueError", "v", ["tb"]),
            Finished(1),
        ]
        request = transport.sent[0]
        assert (request["type"], request["code"], request["language"]) == (
            "execute",
            "code",
            "bash",
        )
        assert request["silent"] is True and request["store_history"] is True
        await channel.close()

    asyncio.run(main())


@pytest.mark.parametrize(
    ("handler_result", "expected"),
    [
        ("Ada", {"value": "Ada"}),
        (StdinNotAllowedError("no stdin here"), {"eof": True, "not_allowed": True}),
        (KeyboardInterrupt(), {"interrupted": True}),
        (None, {"eof": True}),  # no handler at all
    ],
)
def test_input_requests_are_answered_by_the_handler(
    handler_result: object, expected: dict[str, object]
) -> None:
    def respond(msg: dict[str, Any]) -> Sequence[Frame]:
        if msg["type"] == "execute":
            return [{"type": "input_request", "prompt": "name? ", "password": False}]
        if msg["type"] == "input_reply":
            return [{"type": "done", "exit_code": 0}]
        return ()

    asked: list[tuple[str, bool]] = []

    async def handler(prompt: str, password: bool) -> str:
        asked.append((prompt, password))
        if isinstance(handler_result, BaseException):
            raise handler_result
        assert isinstance(handler_result, str)
        return handler_result

    async def main() -> None:
        transport = ScriptedTransport([ready()], respond)
        channel = await RuntimeChannel.open(transport)
        chosen = None if handler_result is None else handler
        assert (await collect(channel.execute("input()", input_handler=chosen)))[-1] == Finished(0)
        [reply] = [m for m in transport.sent if m["type"] == "input_reply"]
        assert {k: v for k, v in reply.items() if k in expected} == expected
        if "message" in reply:
            assert reply["message"] == "no stdin here"
        assert asked == ([] if chosen is None else [("name? ", False)])
        await channel.close()

    asyncio.run(main())


def test_a_timeout_interrupts_and_reports_a_timeout_not_the_interrupt() -> None:
    def respond(msg: dict[str, Any]) -> Sequence[Frame]:
        if msg["type"] == "interrupt":  # the code stops when asked
            return [
                {"type": "error", "ename": "KeyboardInterrupt", "evalue": "", "traceback": []},
                {"type": "done", "exit_code": 1},
            ]
        return ()

    async def main() -> None:
        transport = ScriptedTransport([ready()], respond)
        channel = await RuntimeChannel.open(transport)
        events = await collect(channel.execute("while True: pass", timeout=0.2))
        assert [type(e).__name__ for e in events] == ["Error", "Finished"]
        assert isinstance(events[0], Error) and events[0].ename == "TimeoutError"
        assert events[-1] == Finished(124)
        assert channel.alive and not transport.killed  # state kept
        await channel.close()

    asyncio.run(main())


def test_code_that_ignores_the_interrupt_loses_its_runtime(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(channel_module, "TIMEOUT_GRACE_S", 0.3)
    monkeypatch.setattr(channel_module, "INTERRUPT_ESCALATION_S", 0.05)

    async def main() -> None:
        transport = ScriptedTransport([ready()])  # never answers anything
        channel = await RuntimeChannel.open(transport)
        events = await collect(channel.execute("stubborn()", timeout=0.2))
        assert isinstance(events[0], StateLost) and "all variables" in events[0].reason
        assert isinstance(events[1], Error) and events[1].ename == "TimeoutError"
        assert events[2:] == [Finished(124)]
        assert transport.killed and transport.signals >= 1  # SIGINT came before the kill
        assert [m["type"] for m in transport.sent].count("interrupt") == 1
        await channel.wait_closed()
        assert not channel.alive
        await channel.close()

    asyncio.run(main())


def test_a_runtime_dying_mid_execution_ends_it_with_the_cause() -> None:
    def respond(msg: dict[str, Any]) -> Sequence[Frame]:
        if msg["type"] == "execute":
            return [{"type": "stream", "name": "stdout", "text": "partial"}, b""]
        return ()

    async def main() -> None:
        transport = ScriptedTransport([ready()], respond)
        channel = await RuntimeChannel.open(transport)
        events = await collect(channel.execute("os._exit(3)"))
        assert events[0] == Stream("stdout", "partial")  # output before the death is kept
        assert isinstance(events[1], Error) and events[1].ename == "RuntimeDiedError"
        assert "exit code 3" in events[1].evalue and events[2:] == [Finished(1)]
        assert not channel.alive
        with pytest.raises(RuntimeDiedError):
            await collect(channel.execute("1"))
        with pytest.raises(RuntimeDiedError):
            await channel.complete("x", 1)
        await channel.close()

    asyncio.run(main())


def test_frames_after_done_go_to_the_background_handler() -> None:
    respond = _answers(
        {"type": "done", "exit_code": 0},
        {"type": "stream", "name": "stdout", "text": "from a thread\n"},
    )

    async def main() -> None:
        transport = ScriptedTransport([ready()], respond)
        channel = await RuntimeChannel.open(transport)
        received: asyncio.Queue[Event] = asyncio.Queue()
        channel.background = received.put_nowait
        assert await collect(channel.execute("start_thread()")) == [Finished(0)]
        assert await asyncio.wait_for(received.get(), 5) == Stream("stdout", "from a thread\n")
        await channel.close()

    asyncio.run(main())


def test_replies_are_matched_to_their_requests_by_id() -> None:
    def respond(msg: dict[str, Any]) -> Sequence[Frame]:
        if msg["type"] == "complete":
            return [
                {"type": "reply", "id": 999, "matches": ["stale"]},  # nobody waits for it
                {"type": "reply", "id": msg["id"], "matches": ["print"], "cursor_start": 0},
            ]
        if msg["type"] == "inspect":
            return [{"type": "reply", "id": msg["id"], "error": "no jedi"}]
        return ()

    async def main() -> None:
        transport = ScriptedTransport([ready()], respond)
        channel = await RuntimeChannel.open(transport)
        completion = await channel.complete("pri", 3)
        assert (completion.matches, completion.cursor_start, completion.cursor_end) == (
            ["print"],
            0,
            3,
        )
        assert not (await channel.inspect("x", 1)).found  # an error reply: nothing found
        await channel.close()

    asyncio.run(main())


# -- output in flight ---------------------------------------------------------------------


def test_a_request_that_is_not_read_stops_the_pump_but_not_replies() -> None:
    """While the request takes no events, the channel holds at most its backlog of output
    (the rest stays in the runtime's pipe); a reply behind that output still arrives, and
    once the request reads on, every byte arrives in order."""
    lines = 40_000  # 4 MB, 30 times the backlog
    code = f"import sys\nfor i in range({lines}):\n    sys.stdout.write('%099d\\n' % i)\n"

    async def main() -> None:
        transport = await PipeTransport.start()
        channel = await RuntimeChannel.open(transport, startup_timeout=30)
        try:
            events = channel.execute(code)
            first = await anext(events)
            assert isinstance(first, Stream)
            queue = channel._events
            assert queue is not None
            largest_event = 65536  # the runtime reads its stdout pipe 64 KiB at a time
            loop = asyncio.get_running_loop()
            held = []
            # An observation window, not a synchronisation: unbounded, the pump would take
            # all 4 MB (the runtime writes it in well under a second) while nobody reads.
            end = loop.time() + 1.0
            while loop.time() < end:
                held.append(queue._bytes)
                await asyncio.sleep(0.01)
            assert max(held) <= channel_module.OUTPUT_BACKLOG + largest_event, max(held)
            assert queue.full(), "the runtime should have filled the backlog by now"
            # a reply lies behind the output the pump has not read: it must read on for it
            comms = await asyncio.wait_for(channel.comm_info(None), 10)
            assert comms == {}
            text = first.text
            async for event in events:
                if isinstance(event, Stream):
                    text += event.text
                else:
                    assert event == Finished(0), event
            expected = "".join(f"{i:099d}\n" for i in range(lines))
            assert text == expected
        finally:
            await channel.close()

    asyncio.run(main())


def test_closing_while_a_request_is_not_read_lets_the_runtime_exit_by_itself() -> None:
    code = "import sys\nfor i in range(40000):\n    sys.stdout.write('x' * 99 + '\\n')\n"

    async def main() -> None:
        transport = await PipeTransport.start()
        channel = await RuntimeChannel.open(transport, startup_timeout=30)
        events = channel.execute(code)
        assert isinstance(await anext(events), Stream)
        queue = channel._events
        assert queue is not None
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 30
        while not queue.full():  # the pump now waits for room
            assert loop.time() < deadline, "the backlog never filled"
            await asyncio.sleep(0.01)
        await channel.close()
        # the pump read on to the end of the runtime's output (the runtime ended on
        # `shutdown`): close() did not have to give up on it and cancel it after the
        # shutdown grace period. (The exit status is not asserted: another part of the
        # test process may reap the child first, and asyncio then reports 255.)
        assert channel._pump_task.done() and not channel._pump_task.cancelled()
        assert transport.process.returncode is not None
        assert not channel.alive
        await events.aclose()

    asyncio.run(main())
