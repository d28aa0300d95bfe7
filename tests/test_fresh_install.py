"""`pip install ".[test]"` alone gives everything the test suite imports or runs.

A dependency that is only on the developer's machine makes CI green there and red on a
fresh one. So this test reads every import in ``tests/`` (including imports inside
functions, where public clients such as autogen-ext are loaded), installs the project
into a brand-new virtualenv, and imports each of those modules, by its full dotted name,
in that venv.
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
import venv
from pathlib import Path

import pytest
from _support.checkout import copy_checkout

REPO = Path(__file__).resolve().parents[1]
TESTS = REPO / "tests"

# Run as commands or plug-ins by the suite rather than imported by a test module.
TOOLS = ["papermill", "nbval", "nbclient", "nbformat", "mypy", "ruff", "hatchling", "psutil"]


def imported_modules() -> list[str]:
    """Every non-stdlib module named by an import statement anywhere under tests/."""
    local = {"_support", "conftest"} | {p.stem for p in TESTS.rglob("*.py")}
    names: set[str] = set()
    for path in TESTS.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module)
    return sorted(
        n
        for n in names
        if n.split(".")[0] not in sys.stdlib_module_names and n.split(".")[0] not in local
    )


def test_the_import_scan_sees_imports_inside_functions() -> None:
    modules = imported_modules()
    # imported inside a test function, and the one a missing extra once broke
    assert "autogen_ext.code_executors.azure" in modules
    assert "kernel_bridge.executors.docker" in modules
    assert not any(m.startswith("_support") for m in modules)


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_test_extra_installs_every_module_the_suite_imports(tmp_path: Path) -> None:
    checkout = copy_checkout(tmp_path / "checkout")
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True).create(env_dir)
    python = env_dir / "bin" / "python"
    env = {
        **{
            k: v
            for k, v in os.environ.items()
            if k not in ("PYTHONPATH", "JUPYTER_PATH", "VIRTUAL_ENV", "PYTHONHOME")
        },
        "PIP_DISABLE_PIP_VERSION_CHECK": "1",
    }
    install = subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", f"{checkout}[test]"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=840,
    )
    assert install.returncode == 0, install.stdout[-3000:] + install.stderr[-3000:]

    modules = imported_modules() + TOOLS
    probe = (
        "import importlib, json, sys, traceback\n"
        "failed = {}\n"
        f"for name in {modules!r}:\n"
        "    try:\n"
        "        importlib.import_module(name)\n"
        "    except BaseException as exc:\n"
        "        failed[name] = f'{type(exc).__name__}: {exc}'\n"
        "print(json.dumps({'failed': failed, 'prefix': sys.prefix}))\n"
    )
    # From tmp_path, so the checkout's own kernel_bridge/ cannot shadow the installed one.
    proc = subprocess.run(
        [str(python), "-c", probe], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report["prefix"] == str(env_dir)
    assert report["failed"] == {}, json.dumps(report["failed"], indent=2)
