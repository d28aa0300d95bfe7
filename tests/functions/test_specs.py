"""load_function_specs: files, module:function references, source text, errors."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import pytest

from kernel_bridge.errors import FunctionsError
from kernel_bridge.functions import build_functions_module, load_function_specs

REPO = Path(__file__).resolve().parents[2]


def test_file_spec_gives_every_top_level_function(tmp_path: Path) -> None:
    marker = tmp_path / "executed"
    path = tmp_path / "tools.py"
    path.write_text(
        textwrap.dedent(
            f'''
            """Tools.

            requirements: pandas>=1.0
            """
            # requirements: numpy, Requests
            from __future__ import annotations

            import math
            from os import path as p
            from . import sibling

            open({str(marker)!r}, "w").close()
            CONSTANT = 3

            @some_decorator
            def area(r: float) -> float:
                """Area of a circle."""
                return math.pi * r * r

            async def name(x: str) -> str:
                return p.basename(x)

            if __name__ == "__main__":
                area(1)
            '''
        )
    )
    functions = load_function_specs([str(path)])
    assert [f.name for f in functions] == ["area", "name"]
    assert functions[0].python_packages == ("numpy", "Requests", "pandas>=1.0")
    assert functions[0].global_imports == (
        "from __future__ import annotations",
        "import math",
        "from os import path as p",
    )
    assert not marker.exists()
    module = build_functions_module(functions)
    assert module.problems == ()
    assert module.function_names == ("area", "name")
    assert "some_decorator" not in module.source and "sibling" not in module.source
    assert module.python_packages == ("numpy", "pandas>=1.0", "Requests")


def test_demo_functions_file_loads() -> None:
    functions = load_function_specs([str(REPO / "notebooks" / "demo_functions.py")])
    module = build_functions_module(functions)
    assert module.problems == ()
    assert {"circle_area", "shout"} <= set(module.function_names)
    assert "import math" in module.source


def test_module_reference_is_read_without_importing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    marker = tmp_path / "module-executed"
    package = tmp_path / "kbspec_pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "helpers.py").write_text("def util():\n    return 1\n")
    (package / "tools.py").write_text(
        textwrap.dedent(
            f"""
            # requirements: attrs
            import json
            from .helpers import util

            open({str(marker)!r}, "w").close()
            raise SystemExit("the module must not be executed")

            def first():
                return 1

            def dump(value):
                \"\"\"Dump value.\"\"\"
                return json.dumps(value) + str(util())
            """
        )
    )
    (tmp_path / "kbspec_flat.py").write_text(
        f"open({str(marker)!r}, 'w').close()\n\ndef flat(x):\n    return x\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    functions = load_function_specs(["kbspec_pkg.tools:dump", "kbspec_flat:flat"])
    assert not marker.exists()
    assert "kbspec_pkg.tools" not in sys.modules and "kbspec_flat" not in sys.modules
    assert [f.name for f in functions] == ["dump", "flat"]
    assert functions[0].python_packages == ("attrs",)
    assert "from kbspec_pkg.helpers import util" in functions[0].global_imports
    module = build_functions_module(functions)
    assert module.problems == ()
    assert "def first" not in module.source


def test_source_text_spec() -> None:
    functions = load_function_specs(
        [
            "def one():\n    return 1\n",
            "# requirements: rich\nimport os\ndef two():\n    return os.sep\n",
        ]
    )
    assert [f.name for f in functions] == ["one", "two"]
    assert functions[1].python_packages == ("rich",)
    assert "import os" in build_functions_module(functions).source


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (
            "not a spec at all",
            "cannot understand function spec 'not a spec at all'.*accepted forms",
        ),
        ("/no/such/file.py", "does not exist.*accepted forms"),
        ("kb_no_such_module_anywhere:f", "not importable.*accepted forms"),
        ("json:no_such_function", "has no top-level function 'no_such_function'"),
        ("sys:exit", "no Python source"),
        ("", "empty"),
    ],
)
def test_bad_specs_are_named(spec: str, message: str) -> None:
    with pytest.raises(FunctionsError, match=message):
        load_function_specs([spec])


def test_broken_file_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.py"
    path.write_text("def ok():\n    pass\n\ndef bad(:\n    pass\n")
    with pytest.raises(FunctionsError, match=r"bad\.py.*SyntaxError.*line 4"):
        load_function_specs([str(path)])
    empty = tmp_path / "empty.py"
    empty.write_text("X = 1\n")
    with pytest.raises(FunctionsError, match="defines no top-level function"):
        load_function_specs([str(empty)])
