"""AutoGen's wrapper types: with_requirements, FunctionWithRequirements(Str), imports."""

from __future__ import annotations

from pathlib import Path

import pytest

from kernel_bridge.errors import FunctionsError
from kernel_bridge.functions import (
    Alias,
    FunctionWithRequirements,
    FunctionWithRequirementsStr,
    ImportFromModule,
    build_functions_module,
    with_requirements,
)
from kernel_bridge.functions._imports import render_import


@with_requirements(python_packages=["pandas"], global_imports=["math"])
def decorated(x: int) -> int:
    """Double x."""
    return 2 * x


def plain(a: int) -> int:
    return a + 1


def test_with_requirements_keeps_metadata_and_calls_through() -> None:
    assert isinstance(decorated, FunctionWithRequirements)
    assert decorated(4) == 8
    assert decorated.__name__ == "decorated"
    assert decorated.__doc__ == "Double x."
    assert decorated.__wrapped__.__name__ == "decorated"  # type: ignore[attr-defined]
    assert decorated.python_packages == ("pandas",)
    assert decorated.global_imports == ("math",)


def test_from_callable_has_wrapped_and_builds() -> None:
    wrapped = FunctionWithRequirements.from_callable(plain, ["requests"], [Alias("numpy", "np")])
    assert wrapped.__wrapped__ is plain  # type: ignore[attr-defined]
    assert wrapped(1) == 2
    module = build_functions_module([wrapped])
    assert module.problems == ()
    assert "def plain(a: int) -> int:" in module.source
    assert "import numpy as np" in module.source
    assert module.python_packages == ("requests",)


def test_stacked_with_requirements_add_up() -> None:
    @with_requirements(python_packages=["b"], global_imports=["os"])
    @with_requirements(python_packages=["a"], global_imports=["sys"])
    def f() -> None: ...

    assert f.python_packages == ("a", "b")
    assert f.global_imports == ("sys", "os")


def test_string_function_is_parsed_never_executed(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    source = (
        f"open({str(marker)!r}, 'w').close()\n"
        "import not_installed_anywhere_kb\n\n"
        "def from_text(x):\n    return not_installed_anywhere_kb.go(x)\n"
    )
    func = FunctionWithRequirementsStr(source, ["pkg"], ["json"])
    assert func.name == "from_text"
    assert func.func == source
    assert func.python_packages == ("pkg",)
    assert not marker.exists()
    with pytest.raises(NotImplementedError, match="from_text"):
        func(1)
    assert FunctionWithRequirements.from_str("def g():\n    pass\n").name == "g"


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("x = 1\n", "exactly one top-level function \\(found none\\)"),
        ("def a(): pass\ndef b(): pass\n", "found 'a', 'b'"),
        ("def a(:\n  pass\n", "SyntaxError: .*line 1"),
    ],
)
def test_string_function_validation(source: str, message: str) -> None:
    with pytest.raises(FunctionsError, match=message):
        FunctionWithRequirementsStr(source)


def test_import_rendering() -> None:
    assert render_import("numpy") == "import numpy"
    assert render_import(Alias("numpy", "np")) == "import numpy as np"
    assert render_import(ImportFromModule("os", ["path", Alias("sep", "SEP")])) == (
        "from os import path, sep as SEP"
    )
    assert ImportFromModule("os", ["path"]) == ImportFromModule("os", ("path",))
    assert hash(ImportFromModule("os", ["path"])) == hash(ImportFromModule("os", ("path",)))
    assert render_import("from typing import Any") == "from typing import Any"
    with pytest.raises(FunctionsError, match="valid import"):
        render_import("not a module name")
    with pytest.raises(FunctionsError, match="global import"):
        render_import(42)


class AutogenAlias:
    def __init__(self, name: str, alias: str) -> None:
        self.name, self.alias = name, alias


class AutogenImportFromModule:
    def __init__(self, module: str, imports: tuple[object, ...]) -> None:
        self.module, self.imports = module, imports


class AutogenFunctionWithRequirements:
    """autogen's from_callable result: func/python_packages/global_imports, no __wrapped__."""

    def __init__(
        self, func: object, python_packages: list[str], global_imports: list[object]
    ) -> None:
        self.func, self.python_packages, self.global_imports = func, python_packages, global_imports

    def __call__(self, *args: object) -> object:
        return self.func(*args)  # type: ignore[operator]


class AutogenFunctionWithRequirementsStr:
    def __init__(self, func: str, python_packages: list[str], global_imports: list[object]) -> None:
        self.func, self.python_packages, self.global_imports = func, python_packages, global_imports


def test_autogen_objects_are_accepted_by_duck_typing() -> None:
    module = build_functions_module(
        [
            AutogenFunctionWithRequirements(
                plain, ["Scikit_Learn>=1"], [AutogenAlias("numpy", "np"), "json"]
            ),
            AutogenFunctionWithRequirementsStr(
                "def from_str(v):\n    return v\n",
                ["pandas"],
                [AutogenImportFromModule("os", ("path", AutogenAlias("sep", "SEP")))],
            ),
        ]
    )
    assert module.problems == ()
    assert module.function_names == ("plain", "from_str")
    assert module.python_packages == ("pandas", "Scikit_Learn>=1")
    assert "import numpy as np\n" in module.source
    assert "from os import path, sep as SEP\n" in module.source
