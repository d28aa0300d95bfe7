"""Getting the source of one user-defined function, without executing anything.

Two entry points, both used by the module builder and the stub writer:

* :func:`parse_function_text` takes source text (a string function, a function cut out
  of a file) and finds its single top-level function with :mod:`ast`;
* :func:`callable_source` takes a live callable, reads its source with
  :func:`inspect.getsource` on the unwrapped function and turns it into top-level text.

Both remove every decorator by AST (multi-line and stacked ones too) while keeping the
body's comments and formatting; both raise :class:`FunctionsError` with a message that
names the function and says what to do.
"""

from __future__ import annotations

import ast
import inspect
import textwrap
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..errors import FunctionsError

__all__ = ["FunctionText", "callable_source", "parse_function_text", "syntax_error_text"]

_FunctionNode = ast.FunctionDef | ast.AsyncFunctionDef


@dataclass(frozen=True)
class FunctionText:
    """One function as top-level source text, ready to go into the functions module.

    ``source`` has no decorators, no hoisted imports and no trailing newline;
    ``imports`` are the top-level import statements that were hoisted out of it;
    ``node`` is the parsed function (used for stubs).
    """

    name: str
    source: str
    imports: tuple[str, ...]
    node: _FunctionNode


def syntax_error_text(exc: SyntaxError) -> str:
    """Render a SyntaxError as ``SyntaxError: msg (line N: text)`` for problem messages."""
    where = f"line {exc.lineno}" if exc.lineno else "unknown line"
    text = (exc.text or "").strip()
    return f"{type(exc).__name__}: {exc.msg} ({where}{': ' + text if text else ''})"


def _dedent(source: str) -> str:
    """Dedent ``source`` so it parses at top level, even when a string literal in it
    starts at column 0 (which defeats :func:`textwrap.dedent`)."""
    text = textwrap.dedent(source)
    first = text.lstrip("\n").split("\n", 1)[0]
    indent = first[: len(first) - len(first.lstrip())]
    if indent:
        text = "\n".join(
            line[len(indent) :] if line.startswith(indent) else line for line in text.split("\n")
        )
    return text


def _remove_lines(lines: list[str], ranges: list[tuple[int, int]]) -> list[str]:
    """Drop the 1-based inclusive line ``ranges`` from ``lines``."""
    dropped = {n for start, end in ranges for n in range(start, end + 1)}
    return [line for n, line in enumerate(lines, 1) if n not in dropped]


def _shares_a_line(node: ast.stmt, body: list[ast.stmt]) -> bool:
    end = node.end_lineno or node.lineno
    return any(
        other is not node
        and other.lineno <= end
        and (other.end_lineno or other.lineno) >= node.lineno
        for other in body
    )


def _decorator_range(node: _FunctionNode) -> tuple[int, int] | None:
    if not node.decorator_list:
        return None
    return node.decorator_list[0].lineno, node.lineno - 1


def _check_compiles(source: str, name: str) -> None:
    try:
        compile(source, f"<function {name}>", "exec", dont_inherit=True)
    except SyntaxError as exc:
        raise FunctionsError(f"function {name!r}: {syntax_error_text(exc)}") from None


def parse_function_text(source: str, label: str = "the source string") -> FunctionText:
    """Parse source text that must define exactly one top-level function.

    Top-level imports in the text are hoisted out (they join the module's sorted import
    block) unless they share a line with other code; other top-level statements stay.
    ``label`` names the text in error messages when no function name is known yet.
    """
    text = _dedent(source.replace("\r\n", "\n"))
    try:
        tree = ast.parse(text)
    except SyntaxError as exc:
        raise FunctionsError(f"{label}: {syntax_error_text(exc)}") from None
    functions = [n for n in tree.body if isinstance(n, _FunctionNode)]
    if len(functions) != 1:
        found = ", ".join(repr(f.name) for f in functions) or "none"
        raise FunctionsError(
            f"{label} must define exactly one top-level function (found {found}); "
            "pass one function per string"
        )
    node = functions[0]
    ranges: list[tuple[int, int]] = []
    imports: list[str] = []
    for stmt in tree.body:
        if isinstance(stmt, ast.Import | ast.ImportFrom) and not _shares_a_line(stmt, tree.body):
            if isinstance(stmt, ast.ImportFrom) and stmt.level:
                continue  # a relative import cannot be hoisted; leave it in place
            imports.append(ast.unparse(stmt))
            ranges.append((stmt.lineno, stmt.end_lineno or stmt.lineno))
    decorators = _decorator_range(node)
    if decorators:
        ranges.append(decorators)
    kept = "\n".join(_remove_lines(text.split("\n"), ranges)).strip("\n")
    kept = "\n".join(line.rstrip() for line in kept.split("\n"))
    _check_compiles(kept, node.name)
    return FunctionText(node.name, kept, tuple(imports), _reparse(kept, node.name))


def _reparse(source: str, name: str) -> _FunctionNode:
    """Return the node of function ``name`` in ``source`` (after decorators were cut)."""
    for stmt in ast.parse(source).body:
        if isinstance(stmt, _FunctionNode) and stmt.name == name:
            return stmt
    raise FunctionsError(f"function {name!r}: it was lost while removing its decorators")


def _display_name(func: object) -> str:
    name = getattr(func, "__qualname__", None) or getattr(func, "__name__", None)
    return str(name) if name else repr(func)


def callable_source(func: Callable[..., Any]) -> FunctionText:
    """Return the top-level source of a live Python function (decorators removed).

    ``func`` is unwrapped first (``__wrapped__``, as set by ``with_requirements`` and
    ``functools.wraps``). Lambdas assigned to a name become a ``def`` of that name.
    Raises :class:`FunctionsError` for bound methods, closures over local variables,
    non-functions and functions whose source is unavailable (REPL, ``exec``).
    """
    target = inspect.unwrap(func)
    label = _display_name(target)
    if inspect.ismethod(target):
        raise FunctionsError(
            f"function {label!r} is a bound method; pass a module-level function "
            "(or the function from the class, e.g. Class.method) instead"
        )
    if not inspect.isfunction(target):
        raise FunctionsError(
            f"{label!r} (a {type(target).__name__}) is not a Python function; "
            "pass a function defined with def, a with_requirements-decorated function "
            "or its source as a string"
        )
    freevars = target.__code__.co_freevars
    if freevars:
        raise FunctionsError(
            f"function {label!r} uses variables of its enclosing function "
            f"({', '.join(freevars)}), which cannot be carried into the functions module; "
            "define it at module level and pass those values as arguments"
        )
    try:
        raw = inspect.getsource(target)
    except (OSError, TypeError) as exc:
        raise FunctionsError(
            f"function {label!r}: its source code is not available ({exc}); define it in a "
            ".py file, or pass its source as a string (FunctionWithRequirements.from_str)"
        ) from None
    text = _dedent(raw.replace("\r\n", "\n"))
    try:
        tree = ast.parse(text)
    except SyntaxError as exc:
        raise FunctionsError(
            f"function {label!r}: its source could not be isolated ({syntax_error_text(exc)})"
        ) from None
    if target.__name__ == "<lambda>":
        return _lambda_source(target, text, tree, label)
    node = tree.body[0] if tree.body else None
    if not isinstance(node, _FunctionNode):
        raise FunctionsError(f"function {label!r}: its source does not start with a def")
    lines = text.split("\n")[node.lineno - 1 : node.end_lineno]
    source = "\n".join(line.rstrip() for line in lines).strip("\n")
    _check_compiles(source, node.name)
    return FunctionText(node.name, source, (), _reparse(source, node.name))


def _lambda_args(node: ast.Lambda) -> list[str]:
    a = node.args
    names = [x.arg for x in (*a.posonlyargs, *a.args, *a.kwonlyargs)]
    names += [x.arg for x in (a.vararg, a.kwarg) if x is not None]
    return names


def lambda_name(func: Callable[..., Any]) -> str | None:
    """Return the name a lambda is assigned to in its source (``f = lambda ...``), or None."""
    try:
        return callable_source(func).name
    except FunctionsError:
        return None


def _lambda_source(target: Any, text: str, tree: ast.Module, label: str) -> FunctionText:
    code = target.__code__
    wanted = list(code.co_varnames[: code.co_argcount + code.co_kwonlyargcount])
    if code.co_flags & inspect.CO_VARARGS:
        wanted.append(code.co_varnames[len(wanted)])
    if code.co_flags & inspect.CO_VARKEYWORDS:
        wanted.append(code.co_varnames[len(wanted)])
    named: list[tuple[str, ast.Lambda]] = []
    for stmt in ast.walk(tree):
        value: ast.expr | None = None
        target_node: ast.expr | None = None
        if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1:
            value, target_node = stmt.value, stmt.targets[0]
        elif isinstance(stmt, ast.AnnAssign):
            value, target_node = stmt.value, stmt.target
        if (
            isinstance(value, ast.Lambda)
            and isinstance(target_node, ast.Name)
            and sorted(_lambda_args(value)) == sorted(wanted)
        ):
            named.append((target_node.id, value))
    if len(named) != 1:
        raise FunctionsError(
            f"{label!r} is a lambda that is not assigned to a name on its own line; "
            "write it as `name = lambda ...` at module level or define it with def"
        )
    name, node = named[0]
    body = ast.get_source_segment(text, node.body) or ast.unparse(node.body)
    source = f"def {name}({ast.unparse(node.args)}):\n    return ({body})"
    _check_compiles(source, name)
    return FunctionText(name, source, (), _reparse(source, name))
