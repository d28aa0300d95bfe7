"""The Docker executor inside AutoGen: dumped and loaded as a component, alone and held by
AutoGen's ``CodeExecutorAgent`` and ``PythonCodeExecutionTool``, then running code in a
real container."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from autogen_agentchat.agents import CodeExecutorAgent
from autogen_agentchat.messages import TextMessage
from autogen_core import CancellationToken, ComponentModel
from autogen_core.code_executor import CodeBlock, CodeExecutor
from autogen_ext.tools.code_execution import PythonCodeExecutionTool

from kernel_bridge.executors.docker import DockerCommandLineCodeExecutor


def _through_json(model: ComponentModel) -> dict[str, Any]:
    """What a saved agent or team file holds: plain JSON."""
    loaded: dict[str, Any] = json.loads(model.model_dump_json())
    return loaded


def test_dump_and_load_round_trip_every_setting() -> None:
    executor = DockerCommandLineCodeExecutor(
        image="kernel-bridge-test/minimal:bookworm",
        container_name="kb-autogen-roundtrip",
        timeout=17,
        mem_limit=None,  # no limit: must not come back as the default limit
        pids_limit=None,
        cpus=1.5,
        environment={"GREETING": "hello"},
        extra_hosts={"db.local": "127.0.0.1"},
        device_requests=[{"Driver": "nvidia", "Count": -1, "Capabilities": [["gpu"]]}],
        profile="strict",
        cap_add=["CHOWN"],
    )
    model = executor.dump_component()
    data = _through_json(model)
    assert data["provider"] == "kernel_bridge.executors.docker.DockerCommandLineCodeExecutor"
    loaded = CodeExecutor.load_component(data)
    assert isinstance(loaded, DockerCommandLineCodeExecutor)
    assert loaded.to_config() == executor.to_config()
    assert loaded.mem_limit is None and loaded.pids_limit is None
    # a hand-written config that leaves the limits out gets the hardened defaults
    minimal = CodeExecutor.load_component(
        {"provider": data["provider"], "config": {"image": "python:3-slim"}}
    )
    assert isinstance(minimal, DockerCommandLineCodeExecutor)
    assert minimal.to_config() == DockerCommandLineCodeExecutor().to_config()


@pytest.mark.filterwarnings("ignore:No approval function set:UserWarning")
def test_code_executor_agent_holding_our_executor_is_saved_loaded_and_runs(
    minimal_image: str,
) -> None:
    async def main() -> None:
        agent = CodeExecutorAgent(
            "runner", code_executor=DockerCommandLineCodeExecutor(image=minimal_image)
        )
        saved = _through_json(agent.dump_component())
        assert saved["config"]["code_executor"]["config"]["image"] == minimal_image
        loaded = CodeExecutorAgent.load_component(saved)
        executor = loaded._code_executor
        assert isinstance(executor, DockerCommandLineCodeExecutor)
        try:
            message = TextMessage(
                content="Run this:\n```python\nx = 6 * 7\nprint('answer', x)\n```\n",
                source="user",
            )
            response = await loaded.on_messages([message], CancellationToken())
            text = str(response.chat_message.content)
            assert "answer 42" in text, text
            # the container keeps state between blocks, as our executor does
            again = await executor.execute_code_blocks(
                [CodeBlock(code="print(x + 1)", language="python")], CancellationToken()
            )
            assert (again.exit_code, again.output) == (0, "43\n")
        finally:
            await executor.stop()

    asyncio.run(main())


def test_python_code_execution_tool_holding_our_executor_round_trips(
    minimal_image: str,
) -> None:
    async def main() -> None:
        tool = PythonCodeExecutionTool(DockerCommandLineCodeExecutor(image=minimal_image))
        loaded = PythonCodeExecutionTool.load_component(_through_json(tool.dump_component()))
        executor = loaded._executor
        assert isinstance(executor, DockerCommandLineCodeExecutor)
        try:
            result = await loaded.run_json({"code": "print(sum(range(5)))"}, CancellationToken())
            assert loaded.return_value_as_string(result) == "10\n"
            assert result.success
        finally:
            await executor.stop()

    asyncio.run(main())
