"""Stubs of user-defined functions for LLM prompts (``def name(sig): \"\"\"doc\"\"\" ...``).

Called by executors' ``format_functions_for_prompt`` and by users building prompts. A
stub is always valid Python (checked with :func:`ast.parse`): a lambda gets the name it
is assigned to, unrepresentable defaults become ``...`` and unrepresentable annotations
are dropped.
"""

from __future__ import annotations

import ast
import inspect
import string
import textwrap
from collections.abc import Callable, Sequence
from typing import Any

from ..errors import FunctionsError
from ._source import lambda_name, parse_function_text

__all__ = [
    "ACA_FUNCTION_PROMPT_TEMPLATE",
    "FUNCTION_PROMPT_TEMPLATE",
    "format_functions_for_prompt",
    "to_stub",
]

FUNCTION_PROMPT_TEMPLATE = """You have access to the following user defined functions. They can be accessed from the module called `$module_name` by their function names.

For example, if there was a function called `foo` you could import it by writing `from $module_name import foo`

$functions"""  # noqa: E501
"""AutoGen's local/Docker template (placeholders ``$module_name`` and ``$functions``)."""

ACA_FUNCTION_PROMPT_TEMPLATE = """You have access to the following user defined functions.

$functions"""
"""AutoGen's ACA template (placeholder ``$functions``)."""


def _parses(text: str, mode: str = "exec") -> bool:
    try:
        ast.parse(text, mode=mode)
    except SyntaxError:
        return False
    return True


def _docstring_lines(doc: str | None) -> list[str]:
    """The docstring laid out as AutoGen's ``to_stub`` does, so prompts read the same.

    AutoGen dedents the raw docstring (a no-op when its first line starts at once, so the
    other lines keep their source indentation), wraps it in triple quotes and indents
    every non-blank line by four spaces. A docstring that would not parse that way is
    escaped first.
    """
    if not doc or not doc.strip():
        return []
    doc = textwrap.dedent(doc)
    if not _parses('"""' + doc + '"""', "eval"):
        doc = doc.replace("\\", "\\\\").replace('"', '\\"')
    return textwrap.indent('"""' + doc + '"""', "    ").split("\n")


class _Verbatim:
    """Renders as the given text in a signature (an unquoted annotation, ``...``)."""

    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:
        return self.text


def _annotation(annotation: Any, empty: Any) -> Any:
    """Unquote string annotations (``'int'`` -> ``int``); drop unrepresentable ones."""
    if annotation is empty:
        return annotation
    if isinstance(annotation, str):
        return _Verbatim(annotation) if _parses(annotation, "eval") else empty
    return annotation if _parses(inspect.formatannotation(annotation), "eval") else empty


def _safe_signature(sig: inspect.Signature) -> str:
    """Render ``sig`` as valid Python: string annotations unquoted, annotations and
    defaults that are not valid Python dropped (a default becomes ``...``)."""
    params = []
    for p in sig.parameters.values():
        p = p.replace(annotation=_annotation(p.annotation, p.empty))
        if p.default is not p.empty and not _parses(repr(p.default), "eval"):
            p = p.replace(default=_Verbatim("..."))
        params.append(p)
    ret = _annotation(sig.return_annotation, sig.empty)
    text = str(sig.replace(parameters=params, return_annotation=ret))
    return text if _parses(f"def f{text}: ...") else "(*args, **kwargs)"


def _callable_stub(func: Callable[..., Any]) -> str:
    target = inspect.unwrap(func)
    name = getattr(target, "__name__", None) or type(target).__name__
    if name == "<lambda>":
        name = lambda_name(target) or "anonymous_lambda"
    if not name.isidentifier():
        name = "function"
    try:
        signature = _safe_signature(inspect.signature(func))
    except (TypeError, ValueError):
        signature = "(*args, **kwargs)"
    prefix = "async def" if inspect.iscoroutinefunction(target) else "def"
    doc = getattr(target, "__doc__", None) if inspect.isroutine(target) else None
    doc = doc if doc is not None else getattr(func, "__doc__", None)
    return "\n".join([f"{prefix} {name}{signature}:", *_docstring_lines(doc), "    ..."])


def _ast_signature(node: ast.FunctionDef | ast.AsyncFunctionDef) -> str:
    """The signature of a function given as source, as ``inspect`` would print it once
    compiled (AutoGen compiles it; we never run source on the host)."""
    args = node.args
    kind = inspect.Parameter
    params: list[inspect.Parameter] = []

    def add(arg: ast.arg, how: Any, default: ast.expr | None = None) -> None:
        params.append(
            kind(
                arg.arg,
                how,
                default=kind.empty if default is None else _Verbatim(ast.unparse(default)),
                annotation=(
                    kind.empty if arg.annotation is None else _Verbatim(ast.unparse(arg.annotation))
                ),
            )
        )

    positional = [*args.posonlyargs, *args.args]
    defaults: list[ast.expr | None] = [None] * (len(positional) - len(args.defaults))
    defaults += args.defaults
    for index, (arg, default) in enumerate(zip(positional, defaults, strict=True)):
        how = kind.POSITIONAL_ONLY if index < len(args.posonlyargs) else kind.POSITIONAL_OR_KEYWORD
        add(arg, how, default)
    if args.vararg is not None:
        add(args.vararg, kind.VAR_POSITIONAL)
    for arg, kw_default in zip(args.kwonlyargs, args.kw_defaults, strict=True):
        add(arg, kind.KEYWORD_ONLY, kw_default)
    if args.kwarg is not None:
        add(args.kwarg, kind.VAR_KEYWORD)
    returns = kind.empty if node.returns is None else _Verbatim(ast.unparse(node.returns))
    try:
        return str(inspect.Signature(params, return_annotation=returns))
    except ValueError:  # not a valid signature after all: let ast say it as written
        tail = f" -> {ast.unparse(node.returns)}" if node.returns else ""
        return f"({ast.unparse(args)}){tail}"


def _text_stub(source: str) -> str:
    node = parse_function_text(source).node
    prefix = "async def" if isinstance(node, ast.AsyncFunctionDef) else "def"
    header = f"{prefix} {node.name}{_ast_signature(node)}:"
    return "\n".join([header, *_docstring_lines(ast.get_docstring(node, clean=False)), "    ..."])


def to_stub(func: object) -> str:
    """Return a stub of ``func`` (signature, docstring, ``...``) as valid Python source.

    Accepts plain functions, ``FunctionWithRequirements``, ``FunctionWithRequirementsStr``
    (also autogen's, by duck typing) and source strings. Raises
    :class:`~kernel_bridge.errors.FunctionsError` when a source string does not parse.
    """
    if isinstance(func, str):
        stub = _text_stub(func)
    elif isinstance(getattr(func, "func", None), str):
        stub = _text_stub(getattr(func, "func"))  # noqa: B009
    elif callable(func):
        inner = getattr(func, "func", None)
        if (
            not hasattr(func, "__wrapped__")
            and callable(inner)
            and hasattr(func, "python_packages")
        ):
            func = inner  # autogen's FunctionWithRequirements made without update_wrapper
        stub = _callable_stub(func)  # type: ignore[arg-type]
    else:
        raise FunctionsError(f"cannot make a stub of {func!r}: it is not a function")
    if not _parses(stub):
        raise FunctionsError(f"the stub made for {func!r} is not valid Python:\n{stub}")
    return stub


def format_functions_for_prompt(
    functions: Sequence[object],
    prompt_template: str = FUNCTION_PROMPT_TEMPLATE,
    module_name: str = "functions",
) -> str:
    """Fill ``prompt_template`` with the stubs of ``functions`` (``$functions``, blank-line
    separated) and ``module_name`` (``$module_name``); called to build LLM prompts.

    Functions that cannot be stubbed (broken source strings) are left out: they are not
    in the functions module either (see ``FunctionsModule.problems``).
    """
    stubs = []
    for func in functions:
        try:
            stubs.append(to_stub(func))
        except FunctionsError:
            continue
    return string.Template(prompt_template).safe_substitute(
        functions="\n\n".join(stubs), module_name=module_name
    )
