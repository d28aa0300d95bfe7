"""``kernel-bridge gc``: remove what dead kernels left behind (containers, work dirs).

Every container the Docker executor creates carries labels naming the host, pid and
process start time of the kernel that owns it. A container whose kernel on *this* host
no longer runs is an orphan (the kernel was SIGKILLed while the engine kept the
container, or ``auto_remove`` was off). Containers of live kernels, of other hosts and
unlabelled ones are never touched; those created with ``stop_container=False`` are kept
unless ``--include-lingering`` is given.

Temporary work dirs (``kernel_bridge_docker_*``, ``kb-aca-*`` in the temp dir) record
their owner's pid and start time in their name; those of dead kernels are removed too
(only this user's, only real directories). The executors run the same checks once per
process when they start.
``--docker-host``/``--tls-cert-path`` clean a remote engine (only this host's orphans
there, by the same labels).
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
        help="list what would be removed without removing it",
    )
    parser.add_argument(
        "--include-lingering",
        action="store_true",
        help="also remove what stop_container=False kernels left (meant to outlive them)",
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
    """Remove (or list) orphaned containers and work dirs; 0 on success, 1 when Docker fails.

    Work dirs are handled first, so they are cleaned even when no Docker engine answers;
    2 for ``--tls-cert-path`` without ``--docker-host``.
    """
    from kernel_bridge.errors import BridgeError
    from kernel_bridge.executors._temp_dirs import remove_dead_temp_dirs
    from kernel_bridge.executors.docker import _engine as engine

    host = getattr(args, "docker_host", None)
    cert_path = getattr(args, "tls_cert_path", None)
    if cert_path and not host:
        print("kernel-bridge gc: --tls-cert-path needs --docker-host", file=sys.stderr)
        return 2
    verb = "would remove" if args.dry_run else "removed"
    lingering, dry_run = bool(args.include_lingering), bool(args.dry_run)
    directories = remove_dead_temp_dirs(include_lingering=lingering, dry_run=dry_run)
    for directory in directories:
        print(f"{verb} work dir {directory}")
    if not directories:
        print("kernel-bridge gc: no work dirs of dead kernels")
    try:
        client = engine.connect(timeout=30, options=engine.EngineOptions(host, cert_path))
    except BridgeError as exc:
        print(f"kernel-bridge gc: {exc}", file=sys.stderr)
        return 1
    try:
        names = engine.remove_orphans(client, include_lingering=lingering, dry_run=dry_run)
    except Exception as exc:
        print(f"kernel-bridge gc: the Docker engine failed: {exc}", file=sys.stderr)
        return 1
    finally:
        client.close()
    if not names:
        print("kernel-bridge gc: no orphaned containers")
    for name in names:
        print(f"{verb} {name}")
    return 0
