"""build_functions_module: decorator stripping, problems, determinism, validity."""

from __future__ import annotations

import ast
import functools
import os
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from kernel_bridge.errors import FunctionsError
from kernel_bridge.functions import (
    FunctionWithRequirementsStr,
    ImportFromModule,
    build_functions_module,
    with_requirements,
)

REPO = Path(__file__).resolve().parents[2]


def passthrough(*_args: object, **_kwargs: object) -> Callable[[Any], Any]:
    """A decorator factory that is not importable where the code runs."""

    def wrap(func: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(func)
        def inner(*args: Any, **kwargs: Any) -> Any:
            return func(*args, **kwargs)

        return inner

    return wrap


@passthrough(
    "spans",
    "several lines",
)
@with_requirements(python_packages=["pandas>=1.0"], global_imports=["math"])
@passthrough()
def stacked(radius: float) -> float:
    """Area."""
    # this comment stays
    return math.pi * radius**2  # type: ignore[name-defined]  # noqa: F821


@with_requirements(global_imports=[ImportFromModule("os", ["path"])])
async def fetch(name: str) -> str:
    return path.basename(name)  # type: ignore[name-defined]  # noqa: F821


def undecorated(x: int) -> int:
    text = """
column zero inside a string
"""
    return x + len(text)


square = lambda x, power=2: (  # noqa: E731
    x**power
)


class Holder:
    @staticmethod
    @passthrough()
    def helper(v: int) -> int:
        return v * 3

    def method(self) -> int:
        return 1


def make_functions() -> tuple[Callable[[int], int], Callable[[], int]]:
    def nested(v: int) -> int:
        return v - 1

    captured = 5

    def closure() -> int:
        return captured

    return nested, closure


def test_all_decorators_are_removed_and_bodies_kept() -> None:
    nested, _ = make_functions()
    module = build_functions_module([stacked, fetch, undecorated, square, Holder.helper, nested])
    assert module.problems == ()
    assert module.function_names == (
        "stacked",
        "fetch",
        "undecorated",
        "square",
        "helper",
        "nested",
    )
    tree = ast.parse(module.source)
    defs = {n.name: n for n in tree.body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)}
    assert set(defs) == set(module.function_names)
    assert all(not d.decorator_list for d in defs.values())
    assert isinstance(defs["fetch"], ast.AsyncFunctionDef)
    assert "@" not in module.source
    assert "    # this comment stays\n" in module.source
    assert "column zero inside a string" in module.source
    assert "def square(x, power=2):" in module.source
    assert module.source.index("from os import path") < module.source.index("import math")
    assert module.python_packages == ("pandas>=1.0",)


def test_the_module_runs(tmp_path: Path) -> None:
    nested, _ = make_functions()
    module = build_functions_module([stacked, undecorated, square, Holder.helper, nested])
    namespace: dict[str, Any] = {}
    exec(compile(module.source, "functions.py", "exec"), namespace)  # the test's own check
    assert round(namespace["stacked"](1.0), 5) == 3.14159
    assert namespace["square"](3) == 9
    assert namespace["helper"](2) == 6
    assert namespace["nested"](2) == 1
    assert namespace["undecorated"](0) == len("\ncolumn zero inside a string\n")
    assert namespace["__all__"] == list(module.function_names)


def test_problems_name_the_function_and_the_cause() -> None:
    _, closure = make_functions()
    module = build_functions_module(
        [
            undecorated,
            "def broken(x):\n    return (x\n",
            closure,
            Holder().method,
            lambda y: y,
            print,
            "def undecorated():\n    pass\n",
            42,
        ]
    )
    assert module.function_names == ("undecorated",)
    problems = module.problems
    assert len(problems) == 7
    assert problems[0].startswith("function 'broken'") and "SyntaxError" in problems[0]
    assert "line 2" in problems[0]
    assert "closure" in problems[1] and "captured" in problems[1]
    assert "method" in problems[2] and "bound method" in problems[2]
    assert "lambda" in problems[3]
    assert "print" in problems[4] and "not a Python function" in problems[4]
    assert "'undecorated'" in problems[5] and "more than once" in problems[5]
    assert "#8" in problems[6] and "not a function" in problems[6]
    ast.parse(module.source)


def test_bad_requirements_are_problems() -> None:
    bad_import = with_requirements(global_imports=["not a module"])(undecorated)
    bad_package = with_requirements(python_packages=[">=1.0"])(undecorated)
    module = build_functions_module([bad_import, bad_package])
    assert module.function_names == ()
    assert "'undecorated'" in module.problems[0] and "not a module" in module.problems[0]
    assert "pip requirement" in module.problems[1]


def test_module_name_must_be_an_identifier() -> None:
    for name in ("my-functions", "1abc", "", "a.b"):
        with pytest.raises(FunctionsError, match="not a Python identifier"):
            build_functions_module([undecorated], name)
    assert build_functions_module([undecorated], "tools").module_name == "tools"


def test_source_strings_are_never_executed(tmp_path: Path) -> None:
    marker = tmp_path / "executed"
    source = f"open({str(marker)!r}, 'w').close()\n\ndef side():\n    return 1\n"
    module = build_functions_module(
        [source, FunctionWithRequirementsStr(source.replace("side", "other"))]
    )
    assert module.function_names == ("side", "other")
    assert not marker.exists()


def test_string_imports_are_hoisted_and_deduplicated() -> None:
    a = "import json\nfrom os import path\n\ndef a():\n    return json, path\n"
    b = textwrap.dedent(
        """
        import json

        @some.decorator(
            "arg",
        )
        def b():
            return json
        """
    )
    module = build_functions_module([a, b], "functions")
    assert module.source.count("import json") == 1
    assert "@" not in module.source
    assert module.problems == ()


DETERMINISM_SCRIPT = """
import sys
from kernel_bridge.functions import Alias, ImportFromModule, with_requirements
from kernel_bridge.functions import build_functions_module

imports = ["zlib", "abc", Alias("numpy", "np"), ImportFromModule("os", ["path", "sep"]), "json",
           "from __future__ import annotations", "collections", "math", "re", "sys", "io"]

@with_requirements(python_packages=["zeta", "Alpha", "mid>=2", "beta"], global_imports=imports)
def first(x):
    return x

@with_requirements(python_packages=["beta", "gamma"], global_imports=list(reversed(imports)))
def second(y):
    return y

module = build_functions_module([first, second, "def third():\\n    return 3\\n"])
sys.stdout.write(module.source + "|" + ",".join(module.python_packages) + "|" + module.digest)
"""


def test_output_is_byte_identical_across_hash_seeds(tmp_path: Path) -> None:
    script = tmp_path / "build.py"
    script.write_text(DETERMINISM_SCRIPT)
    outputs = []
    for seed in ("1", "2", "12345"):
        env = {**os.environ, "PYTHONHASHSEED": seed, "PYTHONPATH": str(REPO)}
        done = subprocess.run(
            [sys.executable, str(script)], capture_output=True, text=True, env=env, timeout=60
        )
        assert done.returncode == 0, done.stderr
        outputs.append(done.stdout)
    assert outputs[0] == outputs[1] == outputs[2]
    source, packages, _ = outputs[0].split("|")
    lines = source.splitlines()
    imports = [line for line in lines if line.startswith(("import ", "from "))]
    assert imports[0] == "from __future__ import annotations"
    assert imports[1:] == sorted(imports[1:])
    assert len(imports) == len(set(imports)) == 11  # the future import is always there
    assert packages == "Alpha,beta,gamma,mid>=2,zeta"
