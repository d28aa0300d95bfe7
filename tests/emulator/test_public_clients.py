"""The emulator behaves toward a public ACA client as the service does.

autogen-ext's ``ACADynamicSessionsCodeExecutor`` (the executor ours is compatible with; it speaks
2024-02-02-preview with aiohttp) runs against a real emulator over HTTP, unchanged.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kernel_bridge.emulator import Emulator, EmulatorConfig

TOKEN = "public-client-test-token"


class _Credential:
    """What autogen-ext asks for: ``get_token(*scopes)`` returning an AccessToken."""

    def __init__(self) -> None:
        self.scopes: list[tuple[str, ...]] = []

    def get_token(self, *scopes: str, **kwargs: Any) -> Any:
        from azure.core.credentials import AccessToken

        self.scopes.append(scopes)
        return AccessToken(TOKEN, int(time.time()) + 3600)


@pytest.fixture
def emulator() -> Iterator[Emulator]:
    with Emulator(EmulatorConfig(token=TOKEN)) as emu:
        yield emu


def test_autogen_aca_executor_runs_unchanged_against_the_emulator(
    emulator: Emulator, tmp_path: Path
) -> None:
    from autogen_core import CancellationToken
    from autogen_core.code_executor import CodeBlock
    from autogen_ext.code_executors.azure import ACADynamicSessionsCodeExecutor

    credential = _Credential()
    work = tmp_path / "work"
    work.mkdir()
    (work / "numbers.txt").write_text("1\n2\n3\n")

    async def scenario() -> None:
        executor = ACADynamicSessionsCodeExecutor(
            pool_management_endpoint=emulator.endpoint, credential=credential, work_dir=work
        )
        token = CancellationToken()
        first = await executor.execute_code_blocks(
            [CodeBlock(code="x = 6 * 7\nprint('x is', x)", language="python")], token
        )
        assert first.exit_code == 0, first.output
        assert "x is 42" in first.output
        value = await executor.execute_code_blocks(
            [CodeBlock(code="x + 1", language="python")], token
        )
        assert value.exit_code == 0 and value.output.strip().endswith("43")
        failed = await executor.execute_code_blocks(
            [CodeBlock(code="1 + 'a'", language="python")], token
        )
        assert failed.exit_code == 1
        assert "TypeError: unsupported operand type(s) for +" in failed.output
        await executor.upload_files(["numbers.txt"], token)
        assert "numbers.txt" in await executor.get_file_list(token)
        summed = await executor.execute_code_blocks(
            [CodeBlock(code="print(sum(int(n) for n in open('numbers.txt')))", language="python")],
            token,
        )
        assert summed.output.strip() == "6", summed.output
        (work / "numbers.txt").unlink()
        await executor.download_files(["numbers.txt"], token)
        assert (work / "numbers.txt").read_text() == "1\n2\n3\n"
        await executor.restart()
        lost = await executor.execute_code_blocks(
            [CodeBlock(code="print(x)", language="python")], token
        )
        assert lost.exit_code == 1 and "NameError" in lost.output
        await executor.stop()

    asyncio.run(scenario())
    assert credential.scopes and all(
        scopes == ("https://dynamicsessions.io/.default",) for scopes in credential.scopes
    )
