"""FunctionsModule.setup_code, executed for real in a fresh namespace of a subprocess."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest

from kernel_bridge.functions import (
    FunctionsModule,
    FunctionWithRequirementsStr,
    build_functions_module,
    with_requirements,
)

RUNNER = r"""
import json, os, subprocess, sys
namespace = {}
error = None
for path in sys.argv[1:]:
    try:
        exec(compile(open(path, encoding="utf-8").read(), "<setup>", "exec"), namespace)
    except BaseException as exc:
        error = type(exc).__name__ + ": " + str(exc)
report = {"error": error, "keys": sorted(k for k in namespace if k != "__builtins__")}
if error is None:
    import functions
    from functions import double
    report["same"] = namespace["double"] is double
    report["double"] = namespace["double"](21)
    report["file"] = functions.__file__
    report["tmpdir_entries"] = [p for p in sys.path if "kb-functions-" in p]
    report["pythonpath"] = os.environ["PYTHONPATH"]
    child = subprocess.run(
        [sys.executable, "-c", "from functions import double; print(double(5))"],
        capture_output=True, text=True,
    )
    report["child"] = child.stdout.strip() or child.stderr
    if "value" in namespace:
        report["value"] = namespace["value"]()
print("REPORT " + json.dumps(report))
"""


def double(x: int) -> int:
    """Return twice x."""
    return 2 * x


def annotated(frame: pandas.DataFrame) -> None:  # type: ignore[name-defined]  # noqa: F821
    """Only the annotation names pandas: the module must still import."""


def run_setup(
    tmp_path: Path,
    codes: list[str],
    python: str = sys.executable,
    env: dict[str, str] | None = None,
) -> dict[str, Any]:
    temp = tmp_path / "tmp"
    temp.mkdir(exist_ok=True)
    paths = []
    for i, code in enumerate(codes):
        path = tmp_path / f"setup{i}.py"
        path.write_text(code, encoding="utf-8")
        paths.append(str(path))
    runner = tmp_path / "runner.py"
    runner.write_text(RUNNER)
    clean = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    done = subprocess.run(
        [python, str(runner), *paths],
        capture_output=True,
        text=True,
        env={**clean, "TMPDIR": str(temp), **(env or {})},
        cwd=tmp_path,
        timeout=240,
    )
    assert done.returncode == 0, done.stderr
    line = next(line for line in done.stdout.splitlines() if line.startswith("REPORT "))
    report: dict[str, Any] = json.loads(line[len("REPORT ") :])
    report["stdout"] = done.stdout
    return report


def test_setup_binds_names_and_makes_the_module_importable(tmp_path: Path) -> None:
    module = build_functions_module([double, annotated])
    assert module.problems == ()
    report = run_setup(tmp_path, [module.setup_code()])
    assert report["error"] is None
    assert report["keys"] == ["annotated", "double"]  # no helper left behind
    assert report["same"] is True
    assert report["double"] == 42
    assert report["child"] == "10"  # subprocess scripts import it through PYTHONPATH
    assert report["file"].startswith(str(tmp_path / "tmp" / "kb-functions-"))
    assert report["pythonpath"].split(os.pathsep)[0] == str(Path(report["file"]).parent)
    # the private directory is removed when the process exits
    assert list((tmp_path / "tmp").iterdir()) == []


def test_setup_again_replaces_the_stale_module(tmp_path: Path) -> None:
    first = build_functions_module([double])
    second = build_functions_module([double, "def value():\n    return 'new'\n"])
    report = run_setup(tmp_path, [first.setup_code(), second.setup_code()])
    assert report["error"] is None
    assert report["keys"] == ["double", "value"]
    assert report["value"] == "new"
    assert len(report["tmpdir_entries"]) == 1
    assert report["pythonpath"].count("kb-functions-") == 1


def test_missing_packages_are_listed_when_installing_is_off(tmp_path: Path) -> None:
    needs = with_requirements(python_packages=["kb-no-such-dist-a>=1.0", "pytest", "KB_No.Such_B"])(
        double
    )
    module = build_functions_module([needs])
    report = run_setup(tmp_path, [module.setup_code(install_packages=False)])
    error = report["error"]
    assert error.startswith("ImportError: kernel_bridge functions:")
    assert "runs: KB_No.Such_B, kb-no-such-dist-a>=1.0." in error
    assert "pytest" not in error
    assert report["keys"] == []


def test_installed_packages_match_by_normalised_name(tmp_path: Path) -> None:
    # "Pytest", "PYTEST>=1" and "jupyter_client" are installed under other spellings
    needs = with_requirements(python_packages=["Pytest", "PYTEST>=1", "jupyter.client"])(double)
    report = run_setup(
        tmp_path, [build_functions_module([needs]).setup_code(install_packages=False)]
    )
    assert report["error"] is None


def test_a_module_that_fails_to_import_says_so(tmp_path: Path) -> None:
    broken = with_requirements(global_imports=["kb_module_that_does_not_exist"])(double)
    report = run_setup(tmp_path, [build_functions_module([broken]).setup_code()])
    assert report["error"].startswith("ImportError: kernel_bridge functions:")
    assert "kb_module_that_does_not_exist" in report["error"]
    assert report["keys"] == []


def test_setup_code_is_python38_compatible_stdlib_only() -> None:
    import ast

    code = build_functions_module([double]).setup_code()
    tree = ast.parse(code, feature_version=(3, 8))
    modules = {
        alias.name.split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.Import)
        for alias in node.names
    } | {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module}
    assert modules <= set(sys.stdlib_module_names)


def _wheel(directory: Path) -> None:
    """Write a minimal pure-Python wheel of distribution kbdemo-pkg 1.0."""
    files = {
        "kbdemo_pkg/__init__.py": b"VALUE = 41\n",
        "kbdemo_pkg-1.0.dist-info/METADATA": (
            b"Metadata-Version: 2.1\nName: kbdemo-pkg\nVersion: 1.0\n"
        ),
        "kbdemo_pkg-1.0.dist-info/WHEEL": (
            b"Wheel-Version: 1.0\nGenerator: kb-test\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
        ),
    }
    record = []
    for name, data in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record.append(f"{name},sha256={digest},{len(data)}")
    record.append("kbdemo_pkg-1.0.dist-info/RECORD,,")
    with zipfile.ZipFile(directory / "kbdemo_pkg-1.0-py3-none-any.whl", "w") as wheel:
        for name, data in files.items():
            wheel.writestr(name, data)
        wheel.writestr("kbdemo_pkg-1.0.dist-info/RECORD", "\n".join(record) + "\n")


@pytest.mark.slow
def test_missing_packages_are_pip_installed_with_streamed_output(tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    python = str(venv / "bin" / "python")
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    _wheel(wheels)
    source = "import kbdemo_pkg\n\ndef value():\n    return kbdemo_pkg.VALUE + 1\n"
    module: FunctionsModule = build_functions_module(
        [double, FunctionWithRequirementsStr(source, python_packages=["KBDemo_Pkg>=1.0"])]
    )
    env = {"PIP_NO_INDEX": "1", "PIP_FIND_LINKS": str(wheels)}
    report = run_setup(tmp_path, [module.setup_code()], python=python, env=env)
    assert report["error"] is None, report["stdout"]
    assert report["value"] == 42
    assert "kernel_bridge functions: installing KBDemo_Pkg>=1.0" in report["stdout"]
    assert "Successfully installed KBDemo_Pkg-1.0" in report["stdout"]  # pip's own output
