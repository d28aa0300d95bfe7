"""Build, install, find and remove kernel_bridge kernelspecs.

A kernelspec is a directory holding ``kernel.json`` and the three logos. Ours run
``python -m kernel_bridge -f {connection_file}`` followed by traitlets flags that choose and
configure the executor (``--BridgeKernel.executor=KIND`` and the ``--Class.trait=value``
arguments the executor's plug-in renders from its install options, see
:mod:`kernel_bridge.executors.plugin`). Used by the ``kernel-bridge`` CLI, by the tests'
fixtures and by the wheel's build hook (``hatch_build.py``), which loads this file *by
path* before the package is installed: so this module imports only the standard library
at import time (jupyter_client, the plug-in registry and kernel_bridge.errors are imported
inside the functions that need them), and :func:`bridge_kernel_json` needs no plug-in.

No secret is ever written: there is no ``env`` block and plug-ins refuse options that
would carry credentials; tokens come from the environment when the kernel runs.
"""

from __future__ import annotations

import itertools
import json
import keyword
import os
import re
import shutil
import sys
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from kernel_bridge.errors import ConfigurationError
    from kernel_bridge.executors.plugin import ExecutorPlugin

__all__ = [
    "DEFAULT_DISPLAY_NAME",
    "DEFAULT_SPEC_NAME",
    "KERNEL_MODULE",
    "LOGO_FILES",
    "RESOURCES_DIR",
    "BridgeKernelSpec",
    "SpecOptions",
    "bridge_kernel_json",
    "default_install_location",
    "find_bridge_kernelspecs",
    "install_kernelspec",
    "is_bridge_argv",
    "kernel_argv",
    "kernel_json",
    "remove_kernelspec",
    "validate_kernel_name",
    "validate_options",
    "write_kernel_json",
    "write_kernelspec",
]

#: The module the kernel runs as (``python -m kernel_bridge``).
KERNEL_MODULE = "kernel_bridge"

#: Name and display name of the spec shipped in the wheel.
DEFAULT_SPEC_NAME = "kernel-bridge-local"
DEFAULT_DISPLAY_NAME = "Python (kernel_bridge: local)"

#: Package data copied next to every kernel.json.
RESOURCES_DIR: Path = Path(__file__).resolve().parent / "resources"
LOGO_FILES: tuple[str, ...] = ("logo-32x32.png", "logo-64x64.png", "logo-svg.svg")

_NAME_RE = re.compile(r"^[a-z0-9._-]+$")
_REFERENCE_RE = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*:[A-Za-z_]\w*$")


def _error(message: str) -> ConfigurationError:
    """Build the ConfigurationError to raise (imported lazily: see the module docstring)."""
    from kernel_bridge.errors import ConfigurationError

    return ConfigurationError(message)


def _plugin(kind: str) -> ExecutorPlugin:
    """The executor plug-in of ``kind`` (imported lazily: see the module docstring)."""
    from kernel_bridge.executors.registry import executor_plugin

    return executor_plugin(kind)


@dataclass(frozen=True)
class SpecOptions:
    """Everything a kernel.json can say; the CLI's ``install`` options map one to one.

    ``executor_options`` holds the executor plug-in's install options by key
    (``{"image": "python:3.12-slim", "memory": "2g"}`` for docker, see
    :class:`~kernel_bridge.executors.plugin.InstallOption`); an option of another
    executor is rejected by validate_options, so a spec never carries silently ignored
    settings.
    """

    executor: str = "local"
    display_name: str | None = None
    functions: tuple[str, ...] = ()
    functions_module: str | None = None
    cell_timeout: float | None = None
    kernel_args: tuple[str, ...] = ()
    executor_options: Mapping[str, Any] = field(default_factory=dict)


def validate_kernel_name(name: str) -> str:
    """Check a kernelspec name against Jupyter's rule and return it lowercased.

    Called before anything is written; raises ConfigurationError naming the bad value.
    """
    lowered = name.lower()
    if not _NAME_RE.match(lowered):
        raise _error(
            f"invalid kernel name {name!r}: use only letters, digits, '.', '_' and '-' "
            "(Jupyter's [a-z0-9._-] rule), e.g. kernel-bridge-docker"
        )
    return lowered


def _is_path_like(value: str) -> bool:
    return value.endswith(".py") or os.sep in value or "/" in value or os.path.exists(value)


def _resolve_functions(specs: tuple[str, ...]) -> tuple[str, ...]:
    """Make file entries absolute (they must exist); check 'package.module:function' syntax.

    Mirrors the forms kernel_bridge.functions accepts, minus source text (which belongs in
    a file, not in kernel.json).
    """
    resolved = []
    for spec in specs:
        if _is_path_like(spec):
            path = Path(spec).expanduser()
            if not path.is_file():
                raise _error(
                    f"--functions file {spec!r} does not exist (or is not a file); give an "
                    "existing .py file or a 'package.module:function' reference"
                )
            resolved.append(str(path.resolve()))
        elif _REFERENCE_RE.match(spec):
            resolved.append(spec)
        else:
            raise _error(
                f"invalid --functions value {spec!r}: give an existing .py file or a "
                "'package.module:function' reference (put function source in a .py file)"
            )
    return tuple(resolved)


def _positive(value: float | None, flag: str) -> None:
    if value is not None and not value > 0:
        raise _error(f"invalid {flag} {value!r}: give a number of seconds greater than 0")


def _check_executor_options(options: SpecOptions, plugin: ExecutorPlugin) -> None:
    """Refuse option keys the chosen executor's plug-in does not declare, naming their owner."""
    from kernel_bridge.executors.registry import executor_plugins

    for key in options.executor_options:
        if plugin.option(key) is not None:
            continue
        owners = [
            (p.kind, option)
            for p in executor_plugins().values()
            if (option := p.option(key)) is not None
        ]
        if owners:
            flag = owners[0][1].flag
            kinds = " or ".join(f"--executor {kind}" for kind, _ in owners)
            raise _error(f"{flag} applies only to {kinds}, not to --executor {options.executor}")
        raise _error(f"--{key.replace('_', '-')} is not an option of --executor {options.executor}")


def validate_options(options: SpecOptions) -> SpecOptions:
    """Check every option and return a normalised copy (absolute paths, lowercased memory).

    The common options are checked here, the executor's by its plug-in. Called by
    install_kernelspec before anything is written, and by the CLI. Raises
    ConfigurationError with one message naming the bad value and what is accepted.
    """
    plugin = _plugin(options.executor)
    _check_executor_options(options, plugin)
    functions = _resolve_functions(options.functions)
    if options.functions_module is not None and (
        not options.functions_module.isidentifier() or keyword.iskeyword(options.functions_module)
    ):
        raise _error(
            f"invalid --functions-module {options.functions_module!r}: "
            "give a Python identifier, e.g. functions"
        )
    _positive(options.cell_timeout, "--cell-timeout")
    for arg in options.kernel_args:
        if not arg.startswith("--"):
            raise _error(
                f"invalid --kernel-arg {arg!r}: give a traitlets flag such as "
                f"--{plugin.class_name}.some_trait=VALUE"
            )
    if options.display_name is not None and not options.display_name.strip():
        raise _error("invalid --display-name '': give a non-empty name")
    executor_options = plugin.validate(options.executor_options)
    return replace(options, functions=functions, executor_options=executor_options)


def _fmt(value: float) -> str:
    return repr(int(value)) if float(value).is_integer() else repr(float(value))


def _common_argv(options: SpecOptions, python: str) -> list[str]:
    """The interpreter, the kernel module and the BridgeKernel flags of ``options``."""
    argv = [python, "-m", KERNEL_MODULE, "-f", "{connection_file}"]
    argv.append(f"--BridgeKernel.executor={options.executor}")
    argv += [f"--BridgeKernel.functions={spec}" for spec in options.functions]
    if options.functions_module is not None:
        argv.append(f"--BridgeKernel.functions_module={options.functions_module}")
    if options.cell_timeout is not None:
        argv.append(f"--BridgeKernel.cell_timeout={_fmt(options.cell_timeout)}")
    return argv


def kernel_argv(options: SpecOptions, python: str = "python") -> list[str]:
    """Return the kernel's command line for already validated ``options``.

    ``python`` is argv[0]: the literal "python" (jupyter_client substitutes the launching
    interpreter) or an absolute interpreter path. The executor's arguments come from its
    plug-in (:meth:`~kernel_bridge.executors.plugin.ExecutorPlugin.kernel_args`).
    """
    executor_args = _plugin(options.executor).kernel_args(options.executor_options)
    return [*_common_argv(options, python), *executor_args, *options.kernel_args]


def bridge_kernel_json(
    options: SpecOptions,
    python: str,
    *,
    executor_args: Sequence[str],
    display_name: str,
    debugger: bool,
) -> dict[str, Any]:
    """The kernel.json content with the executor's part given, not asked of its plug-in.

    Used by :func:`kernel_json` and by the wheel's build hook, which runs before the
    package (and so the plug-in registry) is installed.
    """
    return {
        "argv": [*_common_argv(options, python), *executor_args, *options.kernel_args],
        "display_name": display_name,
        "language": "python",
        "interrupt_mode": "signal",
        "metadata": {
            "kernel_bridge": {"executor": options.executor},
            "debugger": debugger,
        },
        "kernel_protocol_version": "5.5",
    }


def kernel_json(options: SpecOptions, python: str = "python") -> dict[str, Any]:
    """Return the kernel.json content for already validated ``options``.

    Without a display name the plug-in's default applies (docker names the image, aca
    the pool, so two specs of one executor can be told apart in JupyterLab).
    """
    plugin = _plugin(options.executor)
    return bridge_kernel_json(
        options,
        python,
        executor_args=plugin.kernel_args(options.executor_options),
        display_name=options.display_name or plugin.display_name(options.executor_options),
        debugger=plugin.can_debug,
    )


def write_kernel_json(directory: Path, content: Mapping[str, Any]) -> Path:
    """Write ``content`` as kernel.json, and the logos, into ``directory`` (created).

    Used by write_kernelspec and by hatch_build.py (into
    build/data_kernelspec/kernel-bridge-local).
    """
    directory.mkdir(parents=True, exist_ok=True)
    text = json.dumps(content, indent=1, sort_keys=True) + "\n"
    (directory / "kernel.json").write_text(text, encoding="utf-8")
    for logo in LOGO_FILES:
        shutil.copyfile(RESOURCES_DIR / logo, directory / logo)
    return directory


def write_kernelspec(directory: Path, options: SpecOptions, python: str = "python") -> Path:
    """Write kernel.json and the logos into ``directory`` (created); return the directory.

    Used by install_kernelspec (into a temporary directory). ``options`` must be
    validated already.
    """
    return write_kernel_json(directory, kernel_json(options, python))


def is_bridge_argv(argv: Any) -> bool:
    """Tell whether a kernel.json ``argv`` runs kernel_bridge (``... -m kernel_bridge ...``)."""
    if not isinstance(argv, list):
        return False
    return any(a == "-m" and b == KERNEL_MODULE for a, b in itertools.pairwise(argv))


def _in_environment() -> bool:
    """True in a virtualenv/venv or a conda environment."""
    return sys.prefix != sys.base_prefix or (Path(sys.prefix) / "conda-meta").is_dir()


def default_install_location() -> str:
    """Return where ``install`` writes without --user/--sys-prefix/--prefix.

    "sys-prefix" inside a virtual or conda environment (the spec lives and dies with the
    environment that has kernel_bridge installed), otherwise "user" -- or "system" when
    running as root (bash_kernel's convention).
    """
    if _in_environment():
        return "sys-prefix"
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        return "system"
    return "user"


def install_kernelspec(
    name: str,
    options: SpecOptions,
    *,
    user: bool = False,
    prefix: str | None = None,
    python: str | None = None,
) -> str:
    """Validate, write and install a spec through jupyter_client; return the destination.

    ``user``/``prefix`` are passed to ``KernelSpecManager.install_kernel_spec`` (neither:
    the system location). ``python`` is argv[0]; by default the literal "python" for a
    prefix install (the environment's own interpreter runs it) and ``sys.executable``
    otherwise (a user or system spec must name the interpreter that has kernel_bridge).
    Refuses to replace a spec at the destination that is not a kernel_bridge spec. Raises
    ConfigurationError before anything is written.
    """
    from jupyter_client.kernelspec import KernelSpecManager

    if user and prefix:
        raise _error("give only one of --user, --sys-prefix and --prefix")
    name = validate_kernel_name(name)
    options = validate_options(options)
    manager = KernelSpecManager()
    destination = Path(manager._get_destination_dir(name, user=user, prefix=prefix))
    existing = destination / "kernel.json"
    if existing.is_file() and not is_bridge_argv(_read_argv(existing)):
        raise _error(
            f"{destination} already holds a kernelspec {name!r} that kernel_bridge did not "
            "write; choose another --name or remove it with 'jupyter kernelspec remove'"
        )
    argv0 = python if python is not None else ("python" if prefix else sys.executable)
    with tempfile.TemporaryDirectory() as tmp:
        spec_dir = Path(tmp) / name
        write_kernelspec(spec_dir, options, argv0)
        spec_dir.chmod(0o755)
        return str(
            manager.install_kernel_spec(str(spec_dir), kernel_name=name, user=user, prefix=prefix)
        )


def _read_argv(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8")).get("argv")
    except (OSError, ValueError, AttributeError):
        return None


@dataclass(frozen=True)
class BridgeKernelSpec:
    """One installed kernel_bridge spec, as ``kernel-bridge list`` shows it."""

    name: str
    executor: str
    display_name: str
    path: str


def _executor_of(spec: dict[str, Any]) -> str:
    meta = spec.get("metadata")
    if isinstance(meta, dict) and isinstance(meta.get("kernel_bridge"), dict):
        executor = meta["kernel_bridge"].get("executor")
        if isinstance(executor, str):
            return executor
    for arg in spec.get("argv", []):
        if isinstance(arg, str) and arg.startswith("--BridgeKernel.executor="):
            return arg.partition("=")[2]
    return "local"


def find_bridge_kernelspecs() -> list[BridgeKernelSpec]:
    """Return the kernel_bridge specs Jupyter can see (JUPYTER_PATH included), by name."""
    from jupyter_client.kernelspec import KernelSpecManager

    found = []
    for name, path in sorted(KernelSpecManager().find_kernel_specs().items()):
        try:
            spec = json.loads((Path(path) / "kernel.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if isinstance(spec, dict) and is_bridge_argv(spec.get("argv")):
            found.append(
                BridgeKernelSpec(
                    name=name,
                    executor=_executor_of(spec),
                    display_name=str(spec.get("display_name", name)),
                    path=str(path),
                )
            )
    return found


def remove_kernelspec(name: str) -> str:
    """Remove the kernel_bridge spec ``name`` and return the directory it was in.

    Raises LookupError when Jupyter sees no spec of that name, and ConfigurationError
    when the spec is not a kernel_bridge spec (it is left alone).
    """
    from jupyter_client.kernelspec import KernelSpecManager

    manager = KernelSpecManager()
    specs = manager.find_kernel_specs()
    lowered = name.lower()
    if lowered not in specs:
        raise LookupError(name)
    path = Path(specs[lowered])
    if not is_bridge_argv(_read_argv(path / "kernel.json")):
        raise _error(
            f"kernelspec {lowered!r} in {path} is not a kernel_bridge spec; "
            "remove it with 'jupyter kernelspec remove' if you mean to"
        )
    return str(manager.remove_kernel_spec(lowered))
