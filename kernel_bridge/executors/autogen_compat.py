"""The AutoGen-compatible executor API, kept apart from the kernel contract.

The kernel and its session never call anything here: they use the small contract of
:mod:`kernel_bridge.executors.base`. What is here serves people and agents that use an
executor the way they use AutoGen's (``autogen_ext.code_executors``):

- :class:`WorkspaceFiles`: files between the host and where the code runs (also used
  by the ``%bridge upload``/``download`` magics);
- :class:`AutoGenCompatible`: ``execute_code_blocks``, ``restart``, the async context
  manager, ``to_config``/``from_config``, prompt formatting and the package list;
- :func:`autogen_base`: when ``autogen_core`` can be imported, the class that makes an
  executor one of AutoGen's own types (``autogen_core.code_executor.CodeExecutor`` and
  ``autogen_core.Component``), so ``isinstance`` holds and ``dump_component()`` /
  ``load_component()`` round-trip it, also inside an agent or tool that holds it.
  Without AutoGen nothing of it is imported and an empty class takes its place.
"""

from __future__ import annotations

import abc
import importlib
import types
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, ClassVar, Self

if TYPE_CHECKING:
    from ._blocks import CodeResult

__all__ = [
    "AutoGenCompatible",
    "AutoGenComponent",
    "WorkspaceFiles",
    "autogen_available",
    "autogen_base",
]


class WorkspaceFiles(abc.ABC):
    """Moving files between the host's ``work_dir`` and the code's working directory.

    Called by users of the AutoGen-compatible API and by the ``%bridge upload`` /
    ``%bridge download`` magics (kernel_bridge.magics), never by the session.
    """

    @abc.abstractmethod
    async def upload_files(self, files: Sequence[Path | str]) -> None:
        """Copy files from the host's work_dir into the runtime's working directory.

        Names are relative to work_dir; a name that escapes it raises
        :class:`~kernel_bridge.errors.ConfigurationError`.
        """

    @abc.abstractmethod
    async def download_files(self, files: Sequence[Path | str]) -> list[str]:
        """Copy files from the runtime's working directory into the host's work_dir.

        Returns the host paths written; names that escape either directory are refused.
        """

    @abc.abstractmethod
    async def get_file_list(self) -> list[str]:
        """List the file names in the runtime's working directory."""


class AutoGenCompatible(WorkspaceFiles):
    """The public surface of AutoGen's code executors, on top of the kernel contract.

    Implemented by the Docker and ACA executors next to
    :class:`~kernel_bridge.executors.base.RemoteExecutor`. Everything here is called by
    AutoGen users (an agent, a tool, a script), never by the kernel.
    """

    SUPPORTED_LANGUAGES: ClassVar[list[str]]
    """Block languages ``execute_code_blocks`` accepts (AutoGen's list for this executor)."""
    FUNCTION_PROMPT_TEMPLATE: ClassVar[str]
    """Default template of :meth:`format_functions_for_prompt`."""

    @abc.abstractmethod
    async def start(self) -> None:
        """Start the runtime (the kernel contract's ``start``); ``async with`` calls it."""

    @abc.abstractmethod
    async def stop(self) -> None:
        """Release everything (the kernel contract's ``stop``); called on ``async with`` exit."""

    @abc.abstractmethod
    async def restart(self) -> None:
        """Replace the runtime by a fresh one (all state lost), functions injected again.

        Called by AutoGen when an agent holding the executor is reset, and by the
        ``%bridge restart`` magic.
        """

    @abc.abstractmethod
    async def execute_code_blocks(
        self, code_blocks: Sequence[Any], cancellation_token: Any = None
    ) -> CodeResult:
        """Run code blocks in order and return AutoGen's result (``exit_code``, ``output``).

        Called by AutoGen's ``CodeExecutorAgent`` and ``PythonCodeExecutionTool``. Raises
        ``ValueError`` (a :class:`~kernel_bridge.errors.ConfigurationValueError`) for bad
        input, as AutoGen's API says; a timeout or a cancellation is a result (exit code
        124, or 1 with "Code execution was cancelled."), and the code really stops.
        """

    @abc.abstractmethod
    def format_functions_for_prompt(self, prompt_template: str = ...) -> str:
        """The user-defined functions as stubs in ``prompt_template``, for an LLM prompt.

        Same text as AutoGen's executor for the same functions (``$functions``, and
        ``$module_name`` where the functions are imported from a module).
        """

    @abc.abstractmethod
    def to_config(self) -> dict[str, Any]:
        """The executor's settings as JSON-compatible values (no functions, no secrets)."""

    @classmethod
    @abc.abstractmethod
    def from_config(cls, config: Mapping[str, Any]) -> Self:
        """Build an executor from :meth:`to_config` output (unknown keys are an error)."""

    @abc.abstractmethod
    async def get_available_packages(self) -> set[str]:
        """Return the normalised names of the distributions importable where code runs."""

    async def __aenter__(self) -> Self:
        """``async with executor:`` starts it."""
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Leaving the ``async with`` block stops it."""
        await self.stop()

    # AutoGen's component hooks: dump_component() calls _to_config() and wants the
    # class's pydantic model; load_component() hands _from_config() that model.

    def _to_config(self) -> Any:
        """:meth:`to_config` as the class's ``component_config_schema`` model (AutoGen
        installed), else as the plain dict; called by AutoGen's ``dump_component()``."""
        config = self.to_config()
        schema = getattr(type(self), "component_config_schema", None)
        return config if schema is None else schema.model_validate(config)

    @classmethod
    def _from_config(cls, config: Any) -> Self:
        """Build from AutoGen's validated config model (or a plain mapping); called by
        AutoGen's ``load_component()``."""
        values = config.model_dump() if hasattr(config, "model_dump") else dict(config)
        return cls.from_config(values)


class AutoGenComponent:
    """What :func:`autogen_base` returns when AutoGen is not installed: nothing at all.

    Also the base the type checker sees, so that an executor's class statement names
    one static class either way.
    """


def autogen_available() -> bool:
    """True when ``autogen_core`` (with its pydantic) can be imported here."""
    try:
        importlib.import_module("autogen_core.code_executor")
    except ImportError:
        return False
    return True


def autogen_base(provider: str, config_schema: Callable[[], type[Any]]) -> type:
    """The base class that makes an executor one of AutoGen's own types, when it can.

    Called once per AutoGen-compatible executor, at its class definition. With
    ``autogen_core`` importable, returns a class deriving from
    ``autogen_core.code_executor.CodeExecutor`` and ``autogen_core.Component[schema]``,
    declaring ``component_config_schema`` (``config_schema()``, a pydantic model
    imported only then) and ``component_provider_override`` (``provider``, the public
    import path, which ``load_component()`` imports). Without it, returns
    :class:`AutoGenComponent` and imports nothing of AutoGen.
    """
    if not autogen_available():
        return AutoGenComponent
    from autogen_core import Component
    from autogen_core.code_executor import CodeExecutor

    schema = config_schema()
    name = provider.rsplit(".", 1)[-1]

    def body(namespace: dict[str, Any]) -> None:
        namespace["__module__"] = __name__
        namespace["__doc__"] = f"AutoGen's CodeExecutor and Component types for {name}."
        namespace["component_config_schema"] = schema
        namespace["component_provider_override"] = provider

    component: Any = Component  # subscripted with a class known only at run time
    return types.new_class(f"AutoGen{name}Base", (CodeExecutor, component[schema]), {}, body)
