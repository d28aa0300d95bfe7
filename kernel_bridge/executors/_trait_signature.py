"""Constructors whose parameters are the class's traits, so each option is declared once.

The AutoGen-compatible executors must keep AutoGen's constructor signatures
(``DockerCommandLineCodeExecutor("python:3-slim", "name", timeout=60, ...)``) while
being traitlets Configurables that the kernel builds with itself as parent. A
:class:`TraitSignature` lists the parameter names in AutoGen's order; the defaults
shown by ``inspect.signature`` are read from the traits, and a call's arguments are
bound to it so that only the arguments actually given are forwarded to the traits:
what is not given comes from the configuration (kernelspec flags, config files) or,
without one, from the trait's default.

Used by the Docker and ACA executors' ``__init__``; called at import (``install``) and
for every construction (``bind``).
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping, Sequence
from typing import Any

from traitlets import HasTraits, TraitType

__all__ = ["TraitSignature"]

_POSITIONAL = inspect.Parameter.POSITIONAL_OR_KEYWORD
_KEYWORD = inspect.Parameter.KEYWORD_ONLY


def _default_of(trait: TraitType[Any, Any]) -> Any:
    """The trait's default as a signature shows it (a container default is copied)."""
    value = trait.default()
    if isinstance(value, list | dict | set):
        return type(value)(value)
    return value


class TraitSignature:
    """An executor constructor's signature: trait names, plus a few non-trait parameters.

    ``positional`` are positional-or-keyword, ``keyword`` keyword-only, in order. A name
    found in ``others`` (e.g. ``functions``, which is code, not configuration) is a plain
    parameter with that default; every other name must be a configurable trait.
    ``**kwargs`` (``parent``, ``config``, ``log``) always ends the signature.
    """

    def __init__(
        self,
        positional: Sequence[str],
        keyword: Sequence[str],
        others: Mapping[str, Any] | None = None,
    ) -> None:
        self._positional = tuple(positional)
        self._keyword = tuple(keyword)
        self._others = dict(others or {})
        self.signature: inspect.Signature | None = None

    def install(self, cls: type[HasTraits]) -> None:
        """Give ``cls.__init__`` this signature (read by ``inspect.signature`` and IDEs)."""
        traits = cls.class_traits(config=True)
        parameters = [inspect.Parameter("self", _POSITIONAL)]
        for names, kind in ((self._positional, _POSITIONAL), (self._keyword, _KEYWORD)):
            for name in names:
                if name in self._others:
                    default = self._others[name]
                elif name in traits:
                    default = _default_of(traits[name])
                else:
                    raise TypeError(f"{cls.__name__} has no configurable trait {name!r}")
                parameters.append(inspect.Parameter(name, kind, default=default))
        parameters.append(inspect.Parameter("kwargs", inspect.Parameter.VAR_KEYWORD))
        self.signature = inspect.Signature(parameters)
        cls.__init__.__signature__ = self.signature  # type: ignore[attr-defined]

    def bind(
        self, instance: object, args: Sequence[Any], kwargs: Mapping[str, Any]
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """Return ``(given, passthrough)``: the named arguments given, and ``**kwargs``.

        Raises TypeError as a Python call would for a wrong argument (too many positional
        ones, an unknown keyword is passed through to the Configurable, which rejects it).
        """
        assert self.signature is not None, "install() was not called"
        bound = self.signature.bind(instance, *args, **kwargs)
        given = dict(bound.arguments)
        given.pop("self", None)
        passthrough = dict(given.pop("kwargs", {}))
        return given, passthrough
