"""to_stub and format_functions_for_prompt: valid Python, AutoGen's templates."""

from __future__ import annotations

import ast
import functools

from kernel_bridge.functions import (
    ACA_FUNCTION_PROMPT_TEMPLATE,
    FUNCTION_PROMPT_TEMPLATE,
    FunctionWithRequirements,
    FunctionWithRequirementsStr,
    format_functions_for_prompt,
    to_stub,
    with_requirements,
)

SENTINEL = object()


@with_requirements(python_packages=["x"])
def documented(a: int, b: str = "q", *rest: int, flag: bool = False, **kw: object) -> list[int]:
    """Summary line.

    Details that were
        indented more.
    """
    return []


def odd_defaults(x=SENTINEL, y=print, z=functools.partial(int)):  # type: ignore[no-untyped-def]  # noqa: B008
    '''Has """quotes""" and a \\ backslash.'''


async def coroutine(n: int) -> None:
    pass


triple = lambda v: v * 3  # noqa: E731


def test_stub_of_a_documented_function_is_laid_out_as_autogen_does() -> None:
    # AutoGen dedents the raw docstring (a no-op here: its first line starts at once) and
    # indents it by four: the source indentation of the other lines stays.
    stub = to_stub(documented)
    assert stub == (
        "def documented(a: int, b: str = 'q', *rest: int, flag: bool = False, "
        "**kw: object) -> list[int]:\n"
        '    """Summary line.\n'
        "\n"
        "        Details that were\n"
        "            indented more.\n"
        '    """\n'
        "    ..."
    )
    ast.parse(stub)


def test_stubs_are_valid_python_for_awkward_functions() -> None:
    for func in (
        odd_defaults,
        coroutine,
        triple,
        FunctionWithRequirements.from_callable(coroutine),
    ):
        stub = to_stub(func)
        tree = ast.parse(stub)
        assert len(tree.body) == 1
    assert to_stub(triple).startswith("def triple(v):")
    assert to_stub(coroutine).startswith("async def coroutine(n: int) -> None:")
    assert "x=..." in to_stub(odd_defaults)
    assert ast.get_docstring(ast.parse(to_stub(odd_defaults)).body[0]) == (  # type: ignore[arg-type]
        'Has """quotes""" and a \\ backslash.'
    )


def test_stub_of_string_functions() -> None:
    source = 'import os\n@dec\ndef from_text(p: str, n=2) -> str:\n    """Join."""\n    return p\n'
    for func in (source, FunctionWithRequirementsStr(source)):
        assert to_stub(func) == 'def from_text(p: str, n=2) -> str:\n    """Join."""\n    ...'


def test_prompt_templates() -> None:
    prompt = format_functions_for_prompt([triple, coroutine], module_name="tools")
    assert prompt.startswith(
        "You have access to the following user defined functions. They can be accessed from "
        "the module called `tools` by their function names.\n\nFor example, if there was a "
        "function called `foo` you could import it by writing `from tools import foo`\n\n"
    )
    assert prompt.endswith(to_stub(triple) + "\n\n" + to_stub(coroutine))
    aca = format_functions_for_prompt([triple], ACA_FUNCTION_PROMPT_TEMPLATE)
    assert aca == "You have access to the following user defined functions.\n\n" + to_stub(triple)
    assert "$module_name" in FUNCTION_PROMPT_TEMPLATE
    # a broken string function is left out (it is reported by build_functions_module)
    assert format_functions_for_prompt(["def broken(:"], "$functions") == ""
