"""Import declarations of user-defined functions and how they render as Python lines.

The three kinds mirror ``autogen_core.code_executor``: a plain string (``"numpy"`` renders
``import numpy``), :class:`Alias` and :class:`ImportFromModule`. autogen's own objects
of these kinds are accepted by duck typing (``name``/``alias``, ``module``/``imports``).
A string that already is an import statement (``"from os import path"``) is kept as is.
"""

from __future__ import annotations

import ast
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypeAlias

from ..errors import FunctionsError

__all__ = ["Alias", "Import", "ImportFromModule", "render_import", "sort_imports"]


@dataclass(frozen=True)
class Alias:
    """``import name as alias`` (or ``name as alias`` inside :class:`ImportFromModule`)."""

    name: str
    alias: str


@dataclass(frozen=True, init=False)
class ImportFromModule:
    """``from module import a, b as c``; ``imports`` holds names (str) or :class:`Alias`.

    A list (or a single name) given to the constructor is stored as a tuple, so the
    object stays hashable like autogen's.
    """

    module: str
    imports: tuple[str | Alias, ...]

    def __init__(self, module: str, imports: Sequence[str | Alias] | str | Alias) -> None:
        object.__setattr__(self, "module", module)
        if isinstance(imports, str | Alias):
            object.__setattr__(self, "imports", (imports,))
        else:
            object.__setattr__(self, "imports", tuple(imports))


Import: TypeAlias = str | Alias | ImportFromModule
"""One global import of a user-defined function."""


def _render_name(item: object) -> str:
    if isinstance(item, str):
        return item.strip()
    name, alias = getattr(item, "name", None), getattr(item, "alias", None)
    if isinstance(name, str) and isinstance(alias, str):
        return f"{name} as {alias}"
    raise FunctionsError(
        f"cannot use {item!r} as an imported name: give a str or an Alias(name, alias)"
    )


def render_import(item: object) -> str:
    """Return the single import line for ``item``; called while building the module.

    Raises :class:`FunctionsError` when ``item`` is not an import declaration or does not
    render to one valid import statement.
    """
    if isinstance(item, str):
        text = item.strip()
        line = text if text.startswith(("import ", "from ")) else f"import {text}"
    elif hasattr(item, "module") and hasattr(item, "imports"):
        module, names = getattr(item, "module"), getattr(item, "imports")  # noqa: B009
        if isinstance(names, str) or not isinstance(names, Sequence):
            names = (names,)
        line = f"from {module} import {', '.join(_render_name(n) for n in names)}"
    elif hasattr(item, "name") and hasattr(item, "alias"):
        line = f"import {_render_name(item)}"
    else:
        raise FunctionsError(
            f"cannot use {item!r} as a global import: give a module name (str), "
            "Alias(name, alias) or ImportFromModule(module, imports)"
        )
    try:
        tree = ast.parse(line)
    except SyntaxError:
        tree = None
    if (
        tree is None
        or len(tree.body) != 1
        or not isinstance(tree.body[0], ast.Import | ast.ImportFrom)
    ):
        raise FunctionsError(f"global import {item!r} does not make a valid import line: {line!r}")
    return ast.unparse(tree.body[0])


def sort_imports(lines: set[str] | Sequence[str]) -> list[str]:
    """Return the import lines deduplicated and sorted, ``from __future__`` ones first."""
    return sorted(set(lines), key=lambda line: (not line.startswith("from __future__ "), line))
