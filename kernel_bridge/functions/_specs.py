"""Reading user-defined functions from the kernel configuration (``functions`` option).

:func:`load_function_specs` is called when the kernel builds its executor. Each spec is
one of three forms, tried in this order:

1. **Source text**: a spec that contains a newline or starts with ``def ``,
   ``async def `` or ``@`` is one function's source (as ``FunctionWithRequirementsStr``).
2. **A path to a .py file** (``~`` expanded, relative to the current directory): every
   top-level function in the file becomes one function; the file's top-level imports
   become their ``global_imports`` (relative imports are left out); other top-level code
   (constants, classes, ``if __name__ == "__main__"``) is ignored.
3. **``package.module:function``**: the module's source is located with
   :func:`importlib.util.find_spec` and the function is cut out of it by AST, with the
   module's top-level imports (relative ones resolved to absolute). The module itself is
   never imported, but for a dotted name Python imports the *parent packages* to find it
   (their ``__init__`` runs), so use this form for packages whose import is harmless.

Requirements: in a file, module or source text, a comment line
``# requirements: pandas>=1.0, numpy`` (or a line ``requirements: ...`` in the module
docstring) lists the ``python_packages`` of the functions it defines. Nothing is executed
on the host except the parent-package imports of form 3.
"""

from __future__ import annotations

import ast
import importlib.util
import re
from collections.abc import Sequence
from pathlib import Path

from ..errors import FunctionsError
from ._requirements import FunctionWithRequirementsStr
from ._source import syntax_error_text

__all__ = ["load_function_specs"]

_FORMS = (
    "accepted forms are: a path to a .py file, 'package.module:function', or the source "
    "of one function (text starting with 'def ', 'async def ' or '@', or several lines)"
)
_REFERENCE = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*:[A-Za-z_]\w*$")
_COMMENT_REQUIREMENTS = re.compile(r"^\s*#\s*requirements\s*:(.*)$", re.IGNORECASE)
_DOC_REQUIREMENTS = re.compile(r"^\s*requirements\s*:(.*)$", re.IGNORECASE)


def _split(values: str) -> list[str]:
    return [v.strip() for v in values.split(",") if v.strip()]


def _requirements(source: str, tree: ast.Module | None) -> tuple[str, ...]:
    found: list[str] = []
    for line in source.splitlines():
        match = _COMMENT_REQUIREMENTS.match(line)
        if match:
            found += _split(match.group(1))
    doc = ast.get_docstring(tree) if tree is not None else None
    for line in (doc or "").splitlines():
        match = _DOC_REQUIREMENTS.match(line)
        if match:
            found += _split(match.group(1))
    return tuple(dict.fromkeys(found))


def _module_imports(tree: ast.Module, package: str | None) -> list[str]:
    lines = []
    for stmt in tree.body:
        if isinstance(stmt, ast.Import):
            lines.append(ast.unparse(stmt))
        elif isinstance(stmt, ast.ImportFrom):
            if stmt.level:
                if not package:
                    continue
                base = importlib.util.resolve_name("." * stmt.level + (stmt.module or ""), package)
                stmt = ast.ImportFrom(module=base, names=stmt.names, level=0)
            lines.append(ast.unparse(stmt))
    return lines


def _function_source(source: str, node: ast.FunctionDef | ast.AsyncFunctionDef) -> str:
    start = node.decorator_list[0].lineno if node.decorator_list else node.lineno
    return "\n".join(source.split("\n")[start - 1 : node.end_lineno])


def _parse(source: str, where: str) -> ast.Module:
    try:
        return ast.parse(source)
    except SyntaxError as exc:
        raise FunctionsError(
            f"cannot load functions from {where}: {syntax_error_text(exc)}"
        ) from None


def _make(
    source: str, packages: Sequence[str], imports: Sequence[str], where: str
) -> FunctionWithRequirementsStr:
    try:
        return FunctionWithRequirementsStr(source, packages, imports)
    except FunctionsError as exc:
        raise FunctionsError(f"cannot load function spec {where}: {exc}") from None


def _from_file(path: Path, spec: str) -> list[FunctionWithRequirementsStr]:
    try:
        source = path.read_text(encoding="utf-8").replace("\r\n", "\n")
    except (OSError, UnicodeDecodeError) as exc:
        raise FunctionsError(f"cannot read function file {spec!r}: {exc}") from None
    tree = _parse(source, repr(spec))
    packages = _requirements(source, tree)
    imports = _module_imports(tree, None)
    nodes = [n for n in tree.body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)]
    if not nodes:
        raise FunctionsError(f"function file {spec!r} defines no top-level function")
    return [_make(_function_source(source, n), packages, imports, repr(spec)) for n in nodes]


def _from_reference(spec: str) -> FunctionWithRequirementsStr:
    module_name, function_name = spec.split(":")
    try:
        found = importlib.util.find_spec(module_name)
    except (ImportError, ValueError) as exc:
        raise FunctionsError(f"cannot locate module {module_name!r} of {spec!r}: {exc}") from None
    if found is None:
        raise FunctionsError(
            f"cannot load function spec {spec!r}: module {module_name!r} is not importable "
            "on the host (check the name and sys.path/PYTHONPATH); " + _FORMS
        )
    source: str | None = None
    get_source = getattr(found.loader, "get_source", None)
    try:
        if callable(get_source):
            source = get_source(module_name)
        elif found.origin and found.origin.endswith(".py"):
            source = Path(found.origin).read_text(encoding="utf-8")
    except (ImportError, OSError, UnicodeDecodeError) as exc:
        raise FunctionsError(f"cannot read the source of module {module_name!r}: {exc}") from None
    if not source:
        raise FunctionsError(
            f"cannot load function spec {spec!r}: module {module_name!r} has no Python source "
            "(built-in or compiled); put the function in a .py file"
        )
    source = source.replace("\r\n", "\n")
    tree = _parse(source, f"module {module_name!r}")
    nodes = [
        n
        for n in tree.body
        if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef) and n.name == function_name
    ]
    if not nodes:
        raise FunctionsError(
            f"cannot load function spec {spec!r}: module {module_name!r} has no top-level "
            f"function {function_name!r}"
        )
    package = module_name if found.submodule_search_locations is not None else found.parent
    imports = _module_imports(tree, package)
    return _make(
        _function_source(source, nodes[-1]), _requirements(source, tree), imports, repr(spec)
    )


def _is_source(spec: str) -> bool:
    stripped = spec.lstrip()
    return "\n" in spec or stripped.startswith(("def ", "async def ", "@"))


def load_function_specs(specs: Sequence[str]) -> list[FunctionWithRequirementsStr]:
    """Turn the configured function specs into string functions (see the module docstring).

    Raises :class:`FunctionsError` naming the spec, for an unknown form, an unreadable
    or unparsable file, or a missing module or function.
    """
    result: list[FunctionWithRequirementsStr] = []
    for spec in specs:
        if not isinstance(spec, str) or not spec.strip():
            raise FunctionsError(f"function spec {spec!r} is empty or not a string; {_FORMS}")
        if _is_source(spec):
            tree: ast.Module | None
            try:
                tree = ast.parse(spec)
            except SyntaxError:
                tree = None
            result.append(_make(spec, _requirements(spec, tree), (), "(source text)"))
            continue
        path = Path(spec.strip()).expanduser()
        if path.suffix == ".py" or path.is_file():
            if not path.is_file():
                raise FunctionsError(f"function file {spec!r} does not exist; {_FORMS}")
            result.extend(_from_file(path, spec))
        elif _REFERENCE.match(spec.strip()):
            result.append(_from_reference(spec.strip()))
        else:
            raise FunctionsError(f"cannot understand function spec {spec!r}; {_FORMS}")
    return result
