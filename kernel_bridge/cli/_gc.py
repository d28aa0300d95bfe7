"""``kernel-bridge gc``: remove Docker containers whose kernel process is gone.

Every container the Docker executor creates carries labels naming the host, pid and
process start time of the kernel that owns it. A container whose kernel on *this* host
no longer runs is an orphan (the kernel was SIGKILLed while the engine kept the
container, or ``auto_remove`` was off). Containers of live kernels, of other hosts and
unlabelled ones are never touched; those created with ``stop_container=False`` are kept
unless ``--include-lingering`` is given. The Docker executor runs the same check once
per process when it starts its first container. ``--docker-host``/``--tls-cert-path``
clean a remote engine (only this host's orphans there, by the same labels).
"""

from __future__ import annotations

import argparse
import sys

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Declare the options of ``kernel-bridge gc``; called when the subcommand is parsed."""
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="list the orphaned containers without removing them",
    )
    parser.add_argument(
        "--include-lingering",
        action="store_true",
        help="also remove orphans made with stop_container=False (meant to outlive their kernel)",
    )
    parser.add_argument(
        "--docker-host",
        metavar="URL",
        help="the engine to clean (tcp://host:2376, ssh://user@host); default: DOCKER_HOST",
    )
    parser.add_argument(
        "--tls-cert-path",
        metavar="DIR",
        help="with --docker-host: directory with ca.pem, cert.pem, key.pem (TLS)",
    )


def run(args: argparse.Namespace) -> int:
    """Remove (or list) orphaned kernel_bridge containers; 0 on success, 1 when Docker fails.

    2 for ``--tls-cert-path`` without ``--docker-host``.
    """
    from kernel_bridge.errors import BridgeError
    from kernel_bridge.executors import _docker_engine as engine

    host = getattr(args, "docker_host", None)
    cert_path = getattr(args, "tls_cert_path", None)
    if cert_path and not host:
        print("kernel-bridge gc: --tls-cert-path needs --docker-host", file=sys.stderr)
        return 2
    try:
        client = engine.connect(timeout=30, options=engine.EngineOptions(host, cert_path))
    except BridgeError as exc:
        print(f"kernel-bridge gc: {exc}", file=sys.stderr)
        return 1
    try:
        names = engine.remove_orphans(
            client, include_lingering=bool(args.include_lingering), dry_run=bool(args.dry_run)
        )
    except Exception as exc:
        print(f"kernel-bridge gc: the Docker engine failed: {exc}", file=sys.stderr)
        return 1
    finally:
        client.close()
    verb = "would remove" if args.dry_run else "removed"
    if not names:
        print("kernel-bridge gc: no orphaned containers")
    for name in names:
        print(f"{verb} {name}")
    return 0
