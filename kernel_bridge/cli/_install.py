"""``kernel-bridge install``: write a kernelspec that runs kernel_bridge with one executor.

The executors and their options come from the executor plug-ins
(:mod:`kernel_bridge.executors.registry`): each plug-in's options form one group of
``--help``. Every option is validated before anything is written; a bad value gives one
message on stderr naming it and exit code 2.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from typing import Any

from kernel_bridge.errors import BridgeError, ConfigurationError
from kernel_bridge.executors.plugin import ExecutorPlugin, InstallOption
from kernel_bridge.executors.registry import broken_plugins, executor_plugin, executor_plugins
from kernel_bridge.kernelspecs import (
    SpecOptions,
    default_install_location,
    install_kernelspec,
    validate_options,
)

__all__ = ["add_arguments", "run"]


def _executor_help() -> str:
    kinds = "; ".join(
        f"{kind}: {plugin.description}" if plugin.description else kind
        for kind, plugin in executor_plugins().items()
    )
    return f"where cells run (default: %(default)s). {kinds}"


def _broken_note() -> str:
    broken = broken_plugins()
    if not broken:
        return ""
    listed = "; ".join(f"{b.kind} ({b.entry_point}): {b.reason}" for b in broken)
    return f" Executor plug-ins that could not be loaded: {listed}."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Declare the install options; called by kernel_bridge.cli before parsing."""
    parser.description = (
        "Install a Jupyter kernelspec that runs cells through kernel_bridge with the chosen "
        "executor. Without --user/--sys-prefix/--prefix the spec goes to "
        f"--{default_install_location()} (sys-prefix inside a virtual or conda environment, "
        "otherwise user, or system when run as root). No secret is ever written to kernel.json."
        + _broken_note()
    )
    parser.add_argument("--executor", default="local", metavar="KIND", help=_executor_help())
    parser.add_argument(
        "--name", help="kernelspec name, [a-z0-9._-] (default: kernel-bridge-EXECUTOR)"
    )
    parser.add_argument(
        "--display-name",
        help="name shown in Jupyter (default: 'Python (kernel_bridge: EXECUTOR)', with the "
        "image for docker and the pool for aca)",
    )
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--user", action="store_true", help="install for the current user")
    where.add_argument(
        "--sys-prefix", action="store_true", help="install into this Python environment"
    )
    where.add_argument("--prefix", metavar="DIR", help="install into DIR/share/jupyter/kernels")

    common = parser.add_argument_group("all executors")
    common.add_argument(
        "--functions",
        nargs="+",
        action="extend",
        default=[],
        metavar="FILE_OR_SPEC",
        help="functions made available in every session: a .py file (stored as an absolute "
        "path) or an importable 'module:name' spec; repeatable",
    )
    common.add_argument(
        "--functions-module", metavar="NAME", help="module name the functions are importable as"
    )
    common.add_argument(
        "--cell-timeout",
        type=float,
        metavar="S",
        help="seconds a cell may run before it is stopped",
    )
    common.add_argument(
        "--kernel-arg",
        action="append",
        default=[],
        metavar="--CLASS.TRAIT=VALUE",
        help="extra traitlets flag appended to the kernel's argv (write it as "
        "--kernel-arg=--Class.trait=value); repeatable; never put secrets here",
    )

    _add_executor_options(parser)


def _add_executor_options(parser: argparse.ArgumentParser) -> None:
    """One argument group per executor plug-in, holding its install options.

    An option several plug-ins declare alike (two container executors' ``--image``) is
    one argument; a plug-in option that clashes with another is left out and named.
    """
    own = {flag for action in parser._actions for flag in action.option_strings}
    own_dests = {action.dest for action in parser._actions}
    declared: dict[str, InstallOption] = {}
    clashes: list[str] = []
    for kind, plugin in executor_plugins().items():
        group = parser.add_argument_group(f"--executor {kind}")
        for option in plugin.options:
            known = declared.get(option.flag)
            if (
                option.flag in own
                or option.dest in own_dests
                or (
                    known is not None and (known.action, known.type) != (option.action, option.type)
                )
            ):
                clashes.append(f"{option.flag} of {kind}")
                continue
            if known is not None:
                continue
            declared[option.flag] = option
            kwargs: dict[str, Any] = {"help": option.help, "dest": option.dest}
            if option.action == "store_true":
                kwargs["action"] = "store_true"
            else:
                kwargs.update(type=option.type, metavar=option.metavar)
                if option.choices is not None:
                    kwargs["choices"] = option.choices
                if option.action == "append":
                    kwargs.update(action="append", default=[])
            group.add_argument(option.flag, **kwargs)
    parser.set_defaults(executor_option_keys=tuple(declared[f].dest for f in declared))
    if clashes:
        parser.epilog = "Options left out because another option has that name: " + ", ".join(
            clashes
        )


def _given_executor_options(args: argparse.Namespace) -> dict[str, Any]:
    """The executor options given on the command line (of any plug-in), by key."""
    given: dict[str, Any] = {}
    for key in args.executor_option_keys:
        value = getattr(args, key, None)
        if value is not None and value is not False and value != []:
            given[key] = value
    return given


def _location(args: argparse.Namespace) -> tuple[bool, str | None]:
    """Return (user, prefix) for install_kernelspec from the location flags."""
    if args.user:
        return True, None
    if args.prefix is not None:
        return False, args.prefix
    if args.sys_prefix:
        return False, sys.prefix
    default = default_install_location()
    if default == "user":
        return True, None
    if default == "sys-prefix":
        return False, sys.prefix
    return False, None


def _prepared(options: SpecOptions, plugin: ExecutorPlugin) -> SpecOptions:
    """Validate ``options`` and let the plug-in do what installing needs (docker's --pin)."""
    options = validate_options(options)
    values, notes = plugin.before_install(options.executor_options)
    for note in notes:
        print(note)
    return replace(options, executor_options=values)


def run(args: argparse.Namespace) -> int:
    """Validate the options, install the spec and print where it went; return the exit code."""
    try:
        plugin = executor_plugin(args.executor)
        options = SpecOptions(
            executor=args.executor,
            display_name=args.display_name,
            functions=tuple(args.functions),
            functions_module=args.functions_module,
            cell_timeout=args.cell_timeout,
            kernel_args=tuple(args.kernel_arg),
            executor_options=_given_executor_options(args),
        )
        options = _prepared(options, plugin)
        user, prefix = _location(args)
        name = args.name or f"kernel-bridge-{args.executor}"
        destination = install_kernelspec(name, options, user=user, prefix=prefix)
    except ConfigurationError as exc:
        print(f"kernel-bridge install: error: {exc}", file=sys.stderr)
        return 2
    except BridgeError as exc:  # a plug-in's install step failed (--pin: no engine answered)
        print(f"kernel-bridge install: error: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(
            f"kernel-bridge install: error: could not write the kernelspec: {exc}", file=sys.stderr
        )
        return 1
    print(f"Installed kernelspec {name.lower()} ({args.executor}) in {destination}")
    return 0
