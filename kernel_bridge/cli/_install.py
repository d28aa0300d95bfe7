"""``kernel-bridge install``: write a kernelspec that runs kernel_bridge with one executor.

Every option is validated before anything is written; a bad value gives one message on
stderr naming it and exit code 2.
"""

from __future__ import annotations

import argparse
import sys

from kernel_bridge.errors import BridgeError, ConfigurationError
from kernel_bridge.kernelspecs import (
    ACA_API_VERSIONS,
    EXECUTOR_KINDS,
    SpecOptions,
    default_install_location,
    install_kernelspec,
    parse_volume,
)

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Declare the install options; called by kernel_bridge.cli before parsing."""
    parser.description = (
        "Install a Jupyter kernelspec that runs cells through kernel_bridge with the chosen "
        "executor. Without --user/--sys-prefix/--prefix the spec goes to "
        f"--{default_install_location()} (sys-prefix inside a virtual or conda environment, "
        "otherwise user, or system when run as root). No secret is ever written to kernel.json."
    )
    parser.add_argument(
        "--executor",
        default="local",
        choices=EXECUTOR_KINDS,
        help="where cells run (default: %(default)s)",
    )
    parser.add_argument(
        "--name", help="kernelspec name, [a-z0-9._-] (default: kernel-bridge-EXECUTOR)"
    )
    parser.add_argument(
        "--display-name", help="name shown in Jupyter (default: 'Python (kernel_bridge: EXECUTOR)')"
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

    local = parser.add_argument_group("--executor local")
    local.add_argument("--python", metavar="PATH", help="interpreter that runs the cells")
    local.add_argument("--cwd", metavar="DIR", help="working directory of the runtime")

    docker = parser.add_argument_group("--executor docker")
    docker.add_argument(
        "--image", help="image with python3 (required): NAME:TAG, or NAME@sha256:DIGEST"
    )
    docker.add_argument(
        "--pin",
        action="store_true",
        help="resolve --image's tag to the digest it names now (asked of the registry "
        "through the engine) and write NAME@sha256:... into the spec",
    )
    docker.add_argument("--memory", metavar="SIZE", help="memory limit, e.g. 512m or 2g")
    docker.add_argument("--cpus", type=float, help="CPU limit, e.g. 1.5")
    docker.add_argument("--pids-limit", type=int, metavar="N", help="maximum number of processes")
    docker.add_argument("--network", metavar="MODE", help="network mode, e.g. none or bridge")
    docker.add_argument("--user-id", metavar="USER", help="user[:group] the code runs as")
    docker.add_argument(
        "--read-only", action="store_true", help="mount the container's root filesystem read-only"
    )
    docker.add_argument(
        "--profile",
        choices=("default", "strict"),
        help="hardening profile: default (isolated network) or strict (no network, "
        "read-only root); see docs/docker.md",
    )
    docker.add_argument(
        "--mount-notebook-dir",
        action="store_true",
        help="mount the notebook's folder read-write at the code's working directory "
        "(/workspace): the code can read and change every file there; off by default",
    )
    docker.add_argument(
        "--volume",
        action="append",
        default=[],
        metavar="HOST:CONTAINER[:ro|rw]",
        help="extra mount (a host path, or a named volume); repeatable",
    )
    docker.add_argument(
        "--init-command", metavar="CMD", help="shell command run at container start"
    )
    docker.add_argument(
        "--docker-host",
        metavar="URL",
        help="the Docker engine (tcp://host:2376, ssh://user@host, unix://PATH); default: "
        "DOCKER_HOST when the kernel runs",
    )
    docker.add_argument(
        "--tls-cert-path",
        metavar="DIR",
        help="with --docker-host tcp://...: directory with ca.pem, cert.pem, key.pem (TLS)",
    )

    aca = parser.add_argument_group("--executor aca")
    aca.add_argument(
        "--endpoint", metavar="URL", help="the session pool's management endpoint (required)"
    )
    aca.add_argument(
        "--timeout", type=int, metavar="S", help="seconds one cell may run remotely (>= 1)"
    )
    aca.add_argument(
        "--api-version",
        metavar="V",
        help="data-plane api-version: " + ", ".join(ACA_API_VERSIONS) + " (default "
        f"{ACA_API_VERSIONS[0]}; the newer ones run cells past the synchronous 220 s limit, "
        "see docs/aca.md)",
    )


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


def _pinned(options: SpecOptions) -> SpecOptions:
    """Return ``options`` with the image resolved to its digest (``--pin``)."""
    from dataclasses import replace

    from kernel_bridge.executors.docker._engine import EngineOptions
    from kernel_bridge.executors.docker._pin import pin_image
    from kernel_bridge.kernelspecs import validate_options

    if options.executor != "docker":
        raise ConfigurationError("--pin applies only to --executor docker")
    options = validate_options(options)  # the image and engine options first
    assert options.image is not None
    pinned = pin_image(options.image, EngineOptions(options.docker_host, options.tls_cert_path))
    if pinned != options.image:
        print(f"Pinned {options.image} to {pinned}")
    return replace(options, image=pinned)


def run(args: argparse.Namespace) -> int:
    """Validate the options, install the spec and print where it went; return the exit code."""
    try:
        options = SpecOptions(
            executor=args.executor,
            display_name=args.display_name,
            functions=tuple(args.functions),
            functions_module=args.functions_module,
            cell_timeout=args.cell_timeout,
            kernel_args=tuple(args.kernel_arg),
            python=args.python,
            cwd=args.cwd,
            image=args.image,
            memory=args.memory,
            cpus=args.cpus,
            pids_limit=args.pids_limit,
            network=args.network,
            user=args.user_id,
            read_only=args.read_only,
            profile=args.profile,
            mount_notebook_dir=args.mount_notebook_dir,
            volumes=tuple(parse_volume(v) for v in args.volume),
            init_command=args.init_command,
            docker_host=args.docker_host,
            tls_cert_path=args.tls_cert_path,
            endpoint=args.endpoint,
            timeout=args.timeout,
            api_version=args.api_version,
        )
        if args.pin:
            options = _pinned(options)
        user, prefix = _location(args)
        name = args.name or f"kernel-bridge-{args.executor}"
        destination = install_kernelspec(name, options, user=user, prefix=prefix)
    except ConfigurationError as exc:
        print(f"kernel-bridge install: error: {exc}", file=sys.stderr)
        return 2
    except BridgeError as exc:  # --pin: no engine answered
        print(f"kernel-bridge install: error: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(
            f"kernel-bridge install: error: could not write the kernelspec: {exc}", file=sys.stderr
        )
        return 1
    print(f"Installed kernelspec {name.lower()} ({args.executor}) in {destination}")
    return 0
