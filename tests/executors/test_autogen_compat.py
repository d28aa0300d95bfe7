"""The AutoGen-compatible layer: AutoGen's own types when installed, nothing of it otherwise,
and prompts that read exactly as AutoGen's executors write them.

The Docker and ACA round trips through AutoGen's agents and tools are in
``docker/test_autogen.py`` and ``aca/test_autogen.py``.
"""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path
from typing import Any

import pytest
from autogen_core import Component
from autogen_core.code_executor import CodeExecutor, FunctionWithRequirements, with_requirements
from autogen_ext.code_executors.azure import (
    ACADynamicSessionsCodeExecutor as AutoGenACAExecutor,
)
from autogen_ext.code_executors.local import LocalCommandLineCodeExecutor

from kernel_bridge.executors.aca import ACADynamicSessionsCodeExecutor
from kernel_bridge.executors.autogen_compat import AutoGenCompatible, WorkspaceFiles
from kernel_bridge.executors.docker import DockerCommandLineCodeExecutor
from kernel_bridge.executors.local import LocalExecutor

ENDPOINT = "http://127.0.0.1:9/subscriptions/s/resourceGroups/r/sessionPools/p"


class _Credential:
    def get_token(self, *scopes: str, **kwargs: Any) -> Any:
        raise AssertionError("no request is made in these tests")


def average(values: list[float], weights: list[float] | None = None) -> float:
    """Weighted mean of values.

    Args:
        values: the numbers.
            Any length.
        weights: one per value (default: all 1).
    """
    return 0.0


@with_requirements(python_packages=["numpy"], global_imports=["math"])
def hypotenuse(a: float, b: float = 1.0, /, *, exact: bool = False) -> float:
    """Length of the hypotenuse."""
    return 0.0


def undocumented(x, *args, **kwargs):  # type: ignore[no-untyped-def]
    return x


FROM_SOURCE = FunctionWithRequirements.from_str(
    textwrap.dedent(
        '''
        def greet(name: str, times: int = 2, *, sep: str = " ") -> str:
            """Say hello.

            Repeated."""
            return sep.join(["hello " + name] * times)
        '''
    )
)

FUNCTIONS: list[Any] = [average, hypotenuse, undocumented, FROM_SOURCE]


def _unquote(text: str) -> str:
    """AutoGen prints postponed annotations quoted ('float'); we print them as written."""
    return re.sub(r"(: |-> )'([^']*)'", r"\1\2", text)


def test_both_autogen_compatible_executors_are_autogen_types() -> None:
    docker = DockerCommandLineCodeExecutor()
    aca = ACADynamicSessionsCodeExecutor(
        pool_management_endpoint=ENDPOINT, credential=_Credential()
    )
    for executor in (docker, aca):
        assert isinstance(executor, CodeExecutor)
        assert isinstance(executor, Component)
        assert isinstance(executor, AutoGenCompatible)
        assert executor.component_type == "code_executor"
    # the local executor is not an AutoGen executor (no execute_code_blocks), but moves files
    local = LocalExecutor()
    assert not isinstance(local, CodeExecutor) and isinstance(local, WorkspaceFiles)


def test_provider_is_the_public_import_path_without_warnings() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # AutoGen warns about private module paths
        model = DockerCommandLineCodeExecutor().dump_component()
    assert model.provider == "kernel_bridge.executors.docker.DockerCommandLineCodeExecutor"
    assert model.component_type == "code_executor"


def test_docker_prompt_names_the_functions_not_the_word_functions() -> None:
    # It used to pass its arguments in the wrong order and return the literal "functions".
    executor = DockerCommandLineCodeExecutor(functions=[average], functions_module="tools")
    prompt = executor.format_functions_for_prompt()
    assert prompt != "functions"
    assert "from tools import foo" in prompt and "def average(" in prompt


def test_docker_prompt_equals_autogens_for_the_same_functions(tmp_path: Path) -> None:
    ours = DockerCommandLineCodeExecutor(functions=FUNCTIONS, functions_module="tools")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # AutoGen warns that local execution is unsafe
        theirs = LocalCommandLineCodeExecutor(
            work_dir=tmp_path, functions=FUNCTIONS, functions_module="tools"
        )
    # AutoGen's Docker executor has the template but no format_functions_for_prompt; its
    # local executor has both, with the same template.
    assert ours.FUNCTION_PROMPT_TEMPLATE == theirs.FUNCTION_PROMPT_TEMPLATE
    expected = theirs.format_functions_for_prompt()
    assert ours.format_functions_for_prompt() == _unquote(expected)
    template = "Module $module_name:\n$functions\n(end)"
    assert ours.format_functions_for_prompt(template) == _unquote(
        theirs.format_functions_for_prompt(template)
    )


def test_aca_prompt_equals_autogens_for_the_same_functions(tmp_path: Path) -> None:
    ours = ACADynamicSessionsCodeExecutor(
        pool_management_endpoint=ENDPOINT, credential=_Credential(), functions=FUNCTIONS
    )
    theirs = AutoGenACAExecutor(
        pool_management_endpoint=ENDPOINT,
        credential=_Credential(),  # type: ignore[arg-type]
        work_dir=tmp_path,
        functions=FUNCTIONS,
    )
    assert ours.FUNCTION_PROMPT_TEMPLATE == theirs.FUNCTION_PROMPT_TEMPLATE
    assert ours.format_functions_for_prompt() == _unquote(theirs.format_functions_for_prompt())


_WITHOUT_AUTOGEN = r"""
import importlib.abc, sys

class Blocker(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("autogen_core", "autogen_ext", "autogen_agentchat"):
            raise ModuleNotFoundError(f"No module named {name!r} (blocked)", name=name)
        return None

sys.meta_path.insert(0, Blocker())

from kernel_bridge.executors.aca import ACADynamicSessionsCodeExecutor
from kernel_bridge.executors.autogen_compat import AutoGenComponent, autogen_available
from kernel_bridge.executors.docker import DockerCommandLineCodeExecutor

class Credential:
    def get_token(self, *scopes, **kwargs):
        raise AssertionError

docker = DockerCommandLineCodeExecutor(image="python:3-slim", mem_limit=None)
aca = ACADynamicSessionsCodeExecutor(pool_management_endpoint=ENDPOINT, credential=Credential())
assert not autogen_available()
for executor in (docker, aca):
    assert isinstance(executor, AutoGenComponent)
    assert not hasattr(executor, "dump_component")
    config = executor._to_config()
    assert isinstance(config, dict), type(config)
    again = type(executor).from_config(config)
    assert again.to_config() == executor.to_config()
assert "def average" not in docker.format_functions_for_prompt()
loaded = sorted(m for m in sys.modules if m.startswith(("autogen", "pydantic")))
print("LOADED", loaded)
"""


def test_without_autogen_nothing_of_it_is_imported() -> None:
    code = _WITHOUT_AUTOGEN.replace("ENDPOINT", repr(ENDPOINT))
    run = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    assert run.returncode == 0, run.stderr
    assert "LOADED []" in run.stdout, run.stdout


def test_executors_build_autogen_bases_only_through_one_helper() -> None:
    # The class statements stay small: one base computed in one place per executor.
    for cls in (DockerCommandLineCodeExecutor, ACADynamicSessionsCodeExecutor):
        base = next(
            b for b in cls.__mro__ if b.__name__.startswith("AutoGen") and "Base" in b.__name__
        )
        assert base.__module__ == "kernel_bridge.executors.autogen_compat"
        assert CodeExecutor in base.__mro__ and issubclass(base, Component)
        assert pytest.approx(1) == cls.component_version
