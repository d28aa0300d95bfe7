"""The ACA executor inside AutoGen: dumped without a secret (AutoGen's own ACA executor
cannot be dumped at all), loaded again, held by AutoGen's ``PythonCodeExecutionTool``,
and running code in the emulator over real HTTP."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from autogen_core import CancellationToken
from autogen_core.code_executor import CodeExecutor
from autogen_ext.tools.code_execution import PythonCodeExecutionTool

from kernel_bridge.emulator import Emulator
from kernel_bridge.executors.aca import ACADynamicSessionsCodeExecutor
from kernel_bridge.executors.aca._credentials import TOKEN_ENV_VAR

from .conftest import TOKEN, CountingCredential

SESSION_ID = "a-session-identifier-that-is-a-secret-0001"


def test_dump_holds_settings_but_no_token_credential_or_session(
    emulator: Emulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    executor = ACADynamicSessionsCodeExecutor(
        emulator.endpoint,
        credential=CountingCredential(),
        timeout=30,
        work_dir=tmp_path,
        suppress_result_output=True,
        session_id=SESSION_ID,
        api_version="2025-10-02-preview",
        max_retries=2,
    )
    text = executor.dump_component().model_dump_json()
    assert TOKEN not in text and SESSION_ID not in text and "credential" not in text
    data = json.loads(text)
    assert data["provider"] == "kernel_bridge.executors.aca.ACADynamicSessionsCodeExecutor"
    monkeypatch.setenv(TOKEN_ENV_VAR, TOKEN)  # what a loaded executor authenticates with
    loaded = CodeExecutor.load_component(data)
    assert isinstance(loaded, ACADynamicSessionsCodeExecutor)
    assert loaded.to_config() == executor.to_config()
    assert loaded._session_id != SESSION_ID  # a new session, never the dumped one

    async def stop() -> None:
        await executor.stop()
        await loaded.stop()

    asyncio.run(stop())


def test_python_code_execution_tool_holding_our_executor_round_trips(
    emulator: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(TOKEN_ENV_VAR, TOKEN)

    async def main() -> None:
        tool = PythonCodeExecutionTool(ACADynamicSessionsCodeExecutor(emulator.endpoint))
        saved = json.loads(tool.dump_component().model_dump_json())
        loaded = PythonCodeExecutionTool.load_component(saved)
        executor = loaded._executor
        assert isinstance(executor, ACADynamicSessionsCodeExecutor)
        try:
            result = await loaded.run_json({"code": "print(2 ** 10)"}, CancellationToken())
            assert result.success and loaded.return_value_as_string(result) == "1024\n"
        finally:
            await executor.stop()
            await tool._executor.stop()  # type: ignore[attr-defined]

    asyncio.run(main())
