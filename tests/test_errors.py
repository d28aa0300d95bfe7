"""The exception tree (kernel_bridge/errors.py) is closed and drawn as it is."""

from __future__ import annotations

import ast
import inspect
import re
from pathlib import Path

import kernel_bridge
from kernel_bridge import errors

PACKAGE = Path(kernel_bridge.__file__).parent

NOT_ERRORS = {
    ("magics/_parse.py", "HelpRequested"): "control flow: --help was asked for",
    ("executors/docker/_pull.py", "_StreamError"): "private: ends one pull stream",
    ("executors/docker/_reading.py", "LineTooLongError"): "caught by the Docker transport",
}
"""Exception classes outside errors.py on purpose (none is ever shown to anyone)."""


def _exception_classes_outside_errors() -> set[tuple[str, str]]:
    found: set[tuple[str, str]] = set()
    for path in PACKAGE.rglob("*.py"):
        relative = path.relative_to(PACKAGE).as_posix()
        if relative in (
            "errors.py",
            "runtime/kb_runtime.py",
        ):  # the runtime imports nothing of ours
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ClassDef):
                bases = {ast.unparse(base).rsplit(".", 1)[-1] for base in node.bases}
                if any(b.endswith(("Error", "Exception")) or b in ("PoolFull",) for b in bases):
                    found.add((relative, node.name))
    return found


def test_every_exception_class_lives_in_errors_py() -> None:
    assert _exception_classes_outside_errors() == set(NOT_ERRORS)


def test_the_docstring_draws_every_class_under_its_real_parent() -> None:
    classes = {
        name: cls
        for name, cls in vars(errors).items()
        if inspect.isclass(cls)
        and issubclass(cls, BaseException)
        and cls.__module__ == errors.__name__
    }
    assert set(errors.__all__) == set(classes)
    drawn: dict[str, int] = {}
    parents: dict[str, str] = {}
    stack: list[tuple[int, str]] = []
    for line in (errors.__doc__ or "").splitlines():
        match = re.match(r"^    ([│ ]*)(?:[├└]── )?([A-Z]\w+)\s", line + " ")
        if not match or match.group(2) not in classes:
            continue
        depth, name = len(match.group(1)) // 4 + (1 if "──" in line else 0), match.group(2)
        while stack and stack[-1][0] >= depth:
            stack.pop()
        if stack:
            parents[name] = stack[-1][1]
        stack.append((depth, name))
        drawn[name] = depth
    missing = set(classes) - set(drawn) - {"StdinNotAllowedError"}  # drawn apart, an EOFError
    assert not missing, f"not in the drawing: {missing}"
    for name, parent in parents.items():
        assert classes[parent] in classes[name].__bases__, f"{name} is drawn under {parent}"


def test_autogen_compatible_bases_stay_where_autogens_api_promised_them() -> None:
    assert issubclass(errors.ConfigurationValueError, ValueError)
    assert issubclass(errors.DockerConfigurationError, ValueError)
    assert issubclass(errors.InvalidCodeBlocksError, ValueError)
    assert issubclass(errors.ServiceTimeoutError, TimeoutError)
    assert not issubclass(errors.CodeMayHaveRunError, TimeoutError)


def test_old_import_names_still_work() -> None:
    from kernel_bridge.emulator._app import DroppedConnection
    from kernel_bridge.emulator._sessions import PoolFull
    from kernel_bridge.executors.docker import DockerConfigurationError
    from kernel_bridge.magics import MagicUsageError

    assert DockerConfigurationError is errors.DockerConfigurationError
    assert PoolFull is errors.EmulatedPoolFull
    assert DroppedConnection is errors.DroppedConnection
    assert MagicUsageError is errors.MagicUsageError
