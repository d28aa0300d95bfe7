"""Functions that carry their requirements: AutoGen's public wrapper types.

:class:`FunctionWithRequirements` wraps a live callable, :class:`FunctionWithRequirementsStr`
holds source text (parsed with :mod:`ast`, never executed on the host), and
:func:`with_requirements` is the decorator form. ``python_packages`` are pip requirement
strings installed where the code runs; ``global_imports`` become import lines of the
functions module.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any, Generic, ParamSpec, TypeVar

from ._imports import Import
from ._source import FunctionText, parse_function_text

__all__ = ["FunctionWithRequirements", "FunctionWithRequirementsStr", "with_requirements"]

T = TypeVar("T")
P = ParamSpec("P")


class FunctionWithRequirementsStr:
    """A user-defined function given as source text, with its requirements.

    The text must define exactly one top-level function (its name comes from the AST);
    it may also hold imports and other top-level code. It is parsed with :mod:`ast` and
    never executed on the host, so its imports need not be installed there. Raises
    :class:`~kernel_bridge.errors.FunctionsError` for a syntax error or a wrong number
    of functions. Calling the object raises NotImplementedError (it only runs remotely).
    """

    func: str
    """The source text, as given (the attribute name autogen uses)."""
    name: str
    python_packages: tuple[str, ...]
    global_imports: tuple[Import, ...]

    def __init__(
        self,
        func_src: str,
        python_packages: Sequence[str] = (),
        global_imports: Sequence[Import] = (),
    ) -> None:
        self.func = func_src
        self.python_packages = tuple(python_packages)
        self.global_imports = tuple(global_imports)
        self._text: FunctionText = parse_function_text(func_src)
        self.name = self._text.name
        self.__name__ = self._text.name

    @property
    def text(self) -> FunctionText:
        """The parsed function (decorators removed, imports hoisted)."""
        return self._text

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Refuse: a string function only exists where the code runs."""
        raise NotImplementedError(
            f"{self.name}() is a string function; it can only be called in the executed code"
        )

    def __repr__(self) -> str:
        return (
            f"FunctionWithRequirementsStr(name={self.name!r}, "
            f"python_packages={list(self.python_packages)!r}, "
            f"global_imports={list(self.global_imports)!r})"
        )


class FunctionWithRequirements(Generic[T, P]):
    """A callable that forwards to ``func`` and carries its requirements.

    Metadata is copied from ``func`` with :func:`functools.update_wrapper`, so
    ``__name__``, ``__doc__`` and ``__wrapped__`` exist however the object was made
    (``with_requirements``, ``from_callable`` or the constructor). Stacked
    ``with_requirements`` decorators add up their requirements.
    """

    func: Callable[P, T]
    python_packages: tuple[str, ...]
    global_imports: tuple[Import, ...]

    def __init__(
        self,
        func: Callable[P, T],
        python_packages: Sequence[str] = (),
        global_imports: Sequence[Import] = (),
    ) -> None:
        functools.update_wrapper(self, func)  # first: it copies func's __dict__ onto self
        self.func = func
        inner = func if isinstance(func, FunctionWithRequirements) else None
        self.python_packages = (*(inner.python_packages if inner else ()), *python_packages)
        self.global_imports = (*(inner.global_imports if inner else ()), *global_imports)

    @classmethod
    def from_callable(
        cls,
        func: Callable[P, T],
        python_packages: Sequence[str] = (),
        global_imports: Sequence[Import] = (),
    ) -> FunctionWithRequirements[T, P]:
        """Wrap an existing callable with requirements (same as the constructor)."""
        return cls(func, python_packages, global_imports)

    @staticmethod
    def from_str(
        func: str,
        python_packages: Sequence[str] = (),
        global_imports: Sequence[Import] = (),
    ) -> FunctionWithRequirementsStr:
        """Build a :class:`FunctionWithRequirementsStr` from source text."""
        return FunctionWithRequirementsStr(func, python_packages, global_imports)

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> T:
        """Call the wrapped function."""
        return self.func(*args, **kwargs)

    def __repr__(self) -> str:
        name = getattr(self.func, "__qualname__", repr(self.func))
        return (
            f"FunctionWithRequirements({name}, python_packages={list(self.python_packages)!r}, "
            f"global_imports={list(self.global_imports)!r})"
        )


def with_requirements(
    python_packages: Sequence[str] = (),
    global_imports: Sequence[Import] = (),
) -> Callable[[Callable[P, T]], FunctionWithRequirements[T, P]]:
    """Decorate a function with the packages and imports it needs where the code runs.

    Used at definition time::

        @with_requirements(python_packages=["pandas"], global_imports=["pandas"])
        def load() -> "pandas.DataFrame": ...

    The result is a :class:`FunctionWithRequirements` (still callable on the host).
    """

    def wrapper(func: Callable[P, T]) -> FunctionWithRequirements[T, P]:
        return FunctionWithRequirements(func, python_packages, global_imports)

    return wrapper
