"""How the ACA executor is configured: AutoGen's signature, and the kernel as parent.

The kernel builds the executor with itself as parent, so ``install --timeout`` (the
``timeout`` trait in the kernelspec) reaches it as configuration; a timeout configured
there is the limit of every notebook cell, not only of ``execute_code_blocks`` blocks.
"""

from __future__ import annotations

import asyncio
import inspect

from traitlets.config import Config, LoggingConfigurable

from kernel_bridge.executors.aca import ACADynamicSessionsCodeExecutor

ENDPOINT = "http://127.0.0.1:9/subscriptions/s/resourceGroups/g/sessionPools/p"


class _Token:
    def get_token(self, *scopes: str) -> object:
        raise AssertionError("no request is made by these tests")


def _parent(**values: object) -> LoggingConfigurable:
    config = Config()
    for name, value in values.items():
        setattr(config.ACADynamicSessionsCodeExecutor, name, value)
    return LoggingConfigurable(config=config)


def test_the_constructor_keeps_autogens_signature() -> None:
    parameters = inspect.signature(ACADynamicSessionsCodeExecutor).parameters
    assert list(parameters)[:8] == [
        "pool_management_endpoint", "credential", "timeout", "work_dir", "functions",
        "functions_module", "suppress_result_output", "session_id",
    ]  # fmt: skip
    assert parameters["timeout"].default == 60
    assert parameters["functions_module"].default == "functions"
    assert parameters["suppress_result_output"].default is False
    assert {p.kind for p in list(parameters.values())[:8]} == {
        inspect.Parameter.POSITIONAL_OR_KEYWORD
    }


def test_a_timeout_configured_for_the_kernel_limits_every_cell() -> None:
    parent = _parent(pool_management_endpoint=ENDPOINT, timeout=5, api_version="auto")
    ex = ACADynamicSessionsCodeExecutor(credential=_Token(), parent=parent)
    try:
        assert (ex.pool_management_endpoint, ex.timeout, ex.api_version) == (ENDPOINT, 5, "auto")
        timeout, _sent, _wait, source = ex._limits(None)  # a cell without its own limit
        assert timeout == 5 and "--timeout" in source
        assert ex._limits(60)[0] == 5  # the shorter applies
    finally:
        asyncio.run(ex.stop())


def test_without_a_configured_timeout_cells_are_not_limited_by_the_block_default() -> None:
    ex = ACADynamicSessionsCodeExecutor(ENDPOINT, _Token(), parent=_parent())
    try:
        assert ex.timeout == 60  # execute_code_blocks' per-block default
        assert ex._limits(None)[0] is None
    finally:
        asyncio.run(ex.stop())


def test_arguments_win_over_the_parents_configuration() -> None:
    parent = _parent(pool_management_endpoint="http://elsewhere.invalid/p", timeout=5)
    ex = ACADynamicSessionsCodeExecutor(ENDPOINT, _Token(), 30, parent=parent)
    try:
        assert (ex.pool_management_endpoint, ex.timeout) == (ENDPOINT, 30)
        assert ex._limits(None)[0] == 30
    finally:
        asyncio.run(ex.stop())
