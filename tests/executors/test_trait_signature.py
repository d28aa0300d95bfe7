"""TraitSignature: a constructor signature whose defaults are the traits' own."""

from __future__ import annotations

import inspect
from typing import Any

import pytest
from traitlets import Int, Unicode
from traitlets.config import Config, LoggingConfigurable

from kernel_bridge.executors._trait_signature import TraitSignature


class Box(LoggingConfigurable):
    name = Unicode("box", config=True, help="The name.")
    size = Int(3, config=True, help="The size.")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        given, passthrough = SIGNATURE.bind(self, args, kwargs)
        self.extras = given.pop("extras", ())
        super().__init__(**passthrough, **given)


SIGNATURE = TraitSignature(positional=("name",), keyword=("size", "extras"), others={"extras": ()})
SIGNATURE.install(Box)


def test_the_signature_shows_the_trait_defaults() -> None:
    assert str(inspect.signature(Box)) == "(name='box', *, size=3, extras=(), **kwargs)"


def test_only_given_arguments_override_the_configuration() -> None:
    config = Config()
    config.Box.name = "configured"
    config.Box.size = 9
    parent = LoggingConfigurable(config=config)
    assert (Box(parent=parent).name, Box(parent=parent).size) == ("configured", 9)
    box = Box("given", parent=parent, extras=(1,))
    assert (box.name, box.size, box.extras) == ("given", 9, (1,))


def test_a_wrong_call_fails_as_python_would() -> None:
    with pytest.raises(TypeError):
        Box("a", 4)  # size is keyword-only


def test_a_name_that_is_no_trait_is_refused_at_install() -> None:
    with pytest.raises(TypeError, match="has no configurable trait 'colour'"):
        TraitSignature(positional=("colour",), keyword=()).install(Box)
