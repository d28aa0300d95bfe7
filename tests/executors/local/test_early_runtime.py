"""The runtime started before the kernel's imports is adopted only when it is the one wanted."""

from __future__ import annotations

import asyncio
import os
import sys

import psutil

from kernel_bridge.events import Finished, Stream
from kernel_bridge.executors.local import SubprocessTransport, _early_runtime
from kernel_bridge.executors.runtime_backed.channel import RuntimeChannel
from kernel_bridge.runtime import bootstrap_argv

LOCAL_ARGS = ["-f", "conn.json", "--BridgeKernel.executor=local"]


def test_matching_early_runtime_is_adopted_and_runs_code() -> None:
    _early_runtime.start_early(LOCAL_ARGS)
    popen = _early_runtime.adopt(bootstrap_argv(sys.executable), None)
    assert popen is not None

    async def run() -> str:
        channel = await RuntimeChannel.open(await SubprocessTransport.adopt(popen))
        try:
            out = ""
            async for event in channel.execute("import os; print(os.getpid())"):
                if isinstance(event, Stream):
                    out += event.text
                assert not isinstance(event, Finished) or event.exit_code == 0
            return out
        finally:
            await channel.close()

    assert asyncio.run(run()).strip() == str(popen.pid)
    assert popen.poll() is not None  # closing the channel ended it


def test_early_runtime_is_killed_when_the_executor_wants_another() -> None:
    _early_runtime.start_early(LOCAL_ARGS)
    early = _early_runtime._EARLY
    assert early is not None
    other_env = {**os.environ, "KB_TEST_OTHER": "1"}
    assert _early_runtime.adopt(bootstrap_argv(sys.executable), other_env) is None
    assert early.process.poll() is not None
    assert _early_runtime._EARLY is None


def test_no_early_runtime_for_other_executors_or_changed_options() -> None:
    children = {p.pid for p in psutil.Process().children()}
    for args in (
        ["-f", "c.json", "--BridgeKernel.executor=docker"],
        [*LOCAL_ARGS, "--LocalExecutor.python=/usr/bin/python3"],
        [*LOCAL_ARGS, "--BridgeKernel.prestart=False"],
    ):
        _early_runtime.start_early(args)
        assert _early_runtime._EARLY is None
    assert {p.pid for p in psutil.Process().children()} == children
