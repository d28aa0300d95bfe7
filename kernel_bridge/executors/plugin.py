"""What an executor plug-in declares: its kind, its class and its ``install`` options.

An executor reaches kernel_bridge as an :class:`ExecutorPlugin` named in the
``kernel_bridge.executors`` entry-point group (``ENTRY_POINT_GROUP``), the way
jupyter_client finds kernel provisioners. The built-in executors (local, docker, aca)
register there too, in kernel_bridge's own pyproject.toml::

    [project.entry-points."kernel_bridge.executors"]
    podman = "kb_podman:plugin"

The kernel learns from the plug-in which class to build for ``--BridgeKernel.executor``;
``kernel-bridge install`` learns the options to offer, how to check them and how they
become ``--Class.trait=value`` arguments in kernel.json; ``--help-all`` lists the class's
traits. Only the plug-in object is imported to install a spec or list kinds: the executor
class (and what it needs, such as the docker SDK) is imported when a kernel builds it.

This module imports only the standard library (the errors module is imported when an
error is raised), so ``kernel-bridge install`` stays fast.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from ..errors import ConfigurationError
    from .base import RemoteExecutor

__all__ = [
    "ENTRY_POINT_GROUP",
    "ExecutorPlugin",
    "InstallOption",
    "OptionValues",
    "configuration_error",
    "render_value",
]

ENTRY_POINT_GROUP = "kernel_bridge.executors"
"""The entry-point group every executor plug-in (built-in or not) is registered in."""

OptionValues = dict[str, Any]
"""The install options given for one executor, by :attr:`InstallOption.dest`; options
left at their default (None, False, an empty list) are absent."""


def configuration_error(message: str) -> ConfigurationError:
    """Build the ConfigurationError a plug-in raises for a bad option value."""
    from ..errors import ConfigurationError

    return ConfigurationError(message)


@dataclass(frozen=True)
class InstallOption:
    """One ``kernel-bridge install`` option of an executor, e.g. docker's ``--image``.

    ``trait`` names the executor trait the value sets (written into kernel.json as
    ``--Class.trait=value``); None when the plug-in's :meth:`ExecutorPlugin.kernel_args`
    renders the option itself, or when it only steers installation (docker's ``--pin``).
    ``type`` converts the command-line text (``str``, ``int``, ``float``); ``action`` is
    argparse's: ``store``, ``store_true`` (a switch) or ``append`` (repeatable).
    """

    flag: str
    help: str
    trait: str | None = None
    type: Callable[[str], Any] = str
    action: Literal["store", "store_true", "append"] = "store"
    metavar: str | None = None
    choices: tuple[str, ...] | None = None
    required: bool = False

    @property
    def dest(self) -> str:
        """The option's key in :data:`OptionValues` (``--pids-limit`` -> ``pids_limit``)."""
        return self.flag.lstrip("-").replace("-", "_")


def render_value(value: Any) -> str:
    """Write a trait value as traitlets parses it on the command line (1.0 -> ``1``)."""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, float):
        return repr(int(value)) if value.is_integer() else repr(value)
    return str(value)


class ExecutorPlugin:
    """An executor kind: what the kernel builds for it and what ``install`` offers for it.

    Name an instance (or an instance of a subclass) in the ``kernel_bridge.executors``
    entry-point group; the entry point's name must equal ``kind``. ``executor`` is the
    class as ``"module:ClassName"``, imported only when a kernel needs it; it must be a
    :class:`~kernel_bridge.executors.base.RemoteExecutor` and a traitlets
    ``Configurable`` (the kernel builds it with itself as parent, so its traits are
    configured from the kernelspec's ``--ClassName.trait=value`` arguments and from
    config files). ``install_hint`` is the command to suggest when the class cannot be
    imported (``pip install 'kernel_bridge[docker]'``). ``can_debug`` is written into kernel.json
    for JupyterLab's debugger button.

    Subclasses override :meth:`validate` to check and normalise option values,
    :meth:`kernel_args` when an option is not one trait, and :meth:`display_name`.
    """

    def __init__(
        self,
        kind: str,
        executor: str,
        *,
        options: Sequence[InstallOption] = (),
        description: str = "",
        install_hint: str | None = None,
        can_debug: bool = False,
    ) -> None:
        self.kind = kind
        self.executor = executor
        self.options: tuple[InstallOption, ...] = tuple(options)
        self.description = description
        self.install_hint = install_hint
        self.can_debug = can_debug

    def __repr__(self) -> str:
        return f"{type(self).__name__}(kind={self.kind!r}, executor={self.executor!r})"

    @property
    def class_name(self) -> str:
        """The executor class's name: its configuration section (``--ClassName.trait``)."""
        return self.executor.rpartition(":")[2]

    def executor_class(self) -> type[RemoteExecutor]:
        """Import and return the executor class; called when a kernel builds the executor.

        Raises ConfigurationError naming the plug-in and what to install when the class
        cannot be imported, or when it is not a configurable RemoteExecutor.
        """
        from traitlets.config import Configurable

        from .base import RemoteExecutor

        module_name, _, class_name = self.executor.partition(":")
        try:
            module = importlib.import_module(module_name)
            cls = getattr(module, class_name)
        except ImportError as exc:
            hint = (
                f"install its dependencies with `{self.install_hint}`"
                if self.install_hint
                else "reinstall the package that provides it"
            )
            raise configuration_error(
                f"the {self.kind} executor cannot be loaded ({exc}); {hint}"
            ) from exc
        except Exception as exc:
            raise configuration_error(
                f"the {self.kind} executor's class {self.executor!r} cannot be loaded: "
                f"{type(exc).__name__}: {exc}"
            ) from exc
        if not (
            isinstance(cls, type)
            and issubclass(cls, RemoteExecutor)
            and issubclass(cls, Configurable)
        ):
            raise configuration_error(
                f"the {self.kind} executor's class {self.executor!r} is not a configurable "
                "RemoteExecutor (subclass kernel_bridge's RemoteExecutor and traitlets' "
                "LoggingConfigurable)"
            )
        return cls

    def option(self, dest: str) -> InstallOption | None:
        """The install option whose key is ``dest``, if this plug-in declares it."""
        return next((o for o in self.options if o.dest == dest), None)

    def validate(self, values: Mapping[str, Any]) -> OptionValues:
        """Check the given option values and return them normalised (absolute paths...).

        Called by ``kernel-bridge install`` before anything is written. The default checks
        required options and choices; raises ConfigurationError naming the bad value.
        """
        checked = dict(values)
        for option in self.options:
            value = checked.get(option.dest)
            if option.required and value in (None, "", [], ()):
                raise configuration_error(
                    f"--executor {self.kind} needs {option.flag} "
                    f"{option.metavar or option.dest.upper()}: {option.help}"
                )
            if option.choices is not None and value is not None and value not in option.choices:
                raise configuration_error(
                    f"invalid {option.flag} {value!r}: choose one of {', '.join(option.choices)}"
                )
        return checked

    def before_install(self, values: Mapping[str, Any]) -> tuple[OptionValues, list[str]]:
        """Do what installing needs beyond checking, e.g. ask a registry; return the values
        to write and lines to print.

        Called by ``kernel-bridge install`` after :meth:`validate`, before the spec is
        written (docker's ``--pin`` resolves the image's tag here). The default does nothing.
        """
        return dict(values), []

    def kernel_args(self, values: Mapping[str, Any]) -> list[str]:
        """The kernel.json arguments for validated ``values``: ``--Class.trait=value`` each.

        Called when the spec is written. An ``append`` option gives one argument per value.
        """
        args: list[str] = []
        for option in self.options:
            value = values.get(option.dest)
            if option.trait is None or value is None or value is False:
                continue
            items = value if option.action == "append" else [value]
            args += [f"--{self.class_name}.{option.trait}={render_value(v)}" for v in items]
        return args

    def display_name(self, values: Mapping[str, Any]) -> str:
        """The name Jupyter shows when ``install`` is given no ``--display-name``."""
        return f"Python (kernel_bridge: {self.kind})"
