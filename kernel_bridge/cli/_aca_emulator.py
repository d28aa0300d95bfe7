"""``kernel-bridge aca-emulator``: serve the ACA dynamic-sessions emulator locally.

Prints the pool management endpoint to give the ACA executor (or any public ACA
client), then serves until interrupted (Ctrl-C).
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import sys

__all__ = ["TOKEN_ENV", "add_arguments", "run"]

TOKEN_ENV = "KERNEL_BRIDGE_EMULATOR_TOKEN"
"""Environment variable holding the only bearer token the emulator accepts."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Declare the emulator's options on ``parser`` (called by the CLI table)."""
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (127.0.0.1)")
    parser.add_argument(
        "--port", type=int, default=0, help="port to listen on (0, the default, picks a free one)"
    )
    parser.add_argument(
        "--token",
        default=None,
        help=f"the only bearer token accepted. Prefer the {TOKEN_ENV} environment variable: "
        "a --token value is visible to every user in `ps`. Without either, any token is "
        "accepted (expired JWTs are still refused). Clients read theirs from "
        "KERNEL_BRIDGE_ACA_TOKEN.",
    )
    parser.add_argument(
        "--backend",
        choices=("local", "docker"),
        default="local",
        help="where sessions run: local subprocesses (default) or Docker containers",
    )
    parser.add_argument(
        "--cooldown",
        type=float,
        default=300.0,
        help="idle seconds after which a session is replaced by a fresh one (300)",
    )
    parser.add_argument(
        "--max-sessions", type=int, default=600, help="live sessions allowed (600); 404 beyond"
    )
    parser.add_argument(
        "--image", default="python:3-slim", help="image of the docker backend's sessions"
    )
    parser.add_argument(
        "--execution-cap",
        type=float,
        default=220.0,
        help="longest synchronous execution in seconds (220, the service's limit); "
        "asynchronous executions (api-version 2024-10-02-preview+) are not bound by it",
    )
    parser.add_argument(
        "--async-execution-cap",
        type=float,
        default=3600.0,
        help="longest asynchronous execution in seconds (3600)",
    )
    parser.add_argument(
        "--max-output-length",
        type=int,
        default=1024 * 1024,
        help="largest outputStreamsMaxLength honoured on 2025-10-02-preview (1048576)",
    )
    parser.add_argument(
        "--tls",
        action="store_true",
        help="serve https with a self-signed certificate made at start; its path is "
        "printed for clients' SSL_CERT_FILE / REQUESTS_CA_BUNDLE",
    )
    parser.add_argument("--verbose", action="store_true", help="log every session event")


def run(args: argparse.Namespace) -> int:
    """Start the emulator, print its endpoint, and serve until interrupted; returns 0."""
    from ..emulator import Emulator, EmulatorConfig

    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if (
        args.cooldown <= 0
        or args.max_sessions < 1
        or args.execution_cap <= 0
        or args.async_execution_cap <= 0
        or args.max_output_length < 1
    ):
        print(
            "kernel-bridge aca-emulator: error: --cooldown, --execution-cap, "
            "--async-execution-cap and --max-output-length must be positive and "
            "--max-sessions at least 1",
            file=sys.stderr,
        )
        return 2
    token = args.token
    if token is not None:
        print(
            "kernel-bridge aca-emulator: warning: --token is visible to every user of this "
            f"machine in `ps`; set the {TOKEN_ENV} environment variable instead.",
            file=sys.stderr,
            flush=True,
        )
    else:
        token = os.environ.get(TOKEN_ENV) or None
    config = EmulatorConfig(
        token=token,
        backend=args.backend,
        cooldown=args.cooldown,
        max_sessions=args.max_sessions,
        execution_cap=args.execution_cap,
        async_execution_cap=args.async_execution_cap,
        max_output_length=args.max_output_length,
        image=args.image,
        tls=args.tls,
    )
    try:
        emulator = Emulator(config, host=args.host, port=args.port)
    except OSError as exc:
        print(
            f"kernel-bridge aca-emulator: error: cannot listen on {args.host}:{args.port} "
            f"({exc.strerror or exc}); choose another --port",
            file=sys.stderr,
        )
        return 1
    print(emulator.endpoint, flush=True)
    if emulator.ca_file is not None:
        print(
            f"TLS certificate (self-signed, made now): {emulator.ca_file}\n"
            f"  trust it with SSL_CERT_FILE={emulator.ca_file} "
            f"REQUESTS_CA_BUNDLE={emulator.ca_file}",
            file=sys.stderr,
            flush=True,
        )
    print(
        "ACA emulator ready. Use it with:\n"
        f"  --ACADynamicSessionsCodeExecutor.pool_management_endpoint={emulator.endpoint}\n"
        "  and KERNEL_BRIDGE_ACA_TOKEN=<"
        + ("the emulator's token" if token else "any token")
        + ">. Press Ctrl-C to stop.",
        file=sys.stderr,
        flush=True,
    )
    with contextlib.suppress(KeyboardInterrupt):
        emulator.serve_forever()
    return 0
