"""Kernel launcher of the anchor system: a stock ipykernel running inside a container.

This is how Enterprise Gateway's Docker provisioner and dockernel run a kernel in a
container: the kernel's five ZMQ ports are published on the host, the client connects
to them as to any local kernel. A kernelspec runs::

    python bench/_ipykernel_docker.py --image IMAGE --name-prefix PREFIX {connection_file}

The launcher copies the connection file with ``ip`` set to ``0.0.0.0`` (so the kernel
listens on the container's interface), mounts its private directory (ipykernel rewrites
the file at start), publishes each port
on 127.0.0.1 only, and runs Debian's ipykernel (``python3 -m ipykernel_launcher``) in the
foreground. SIGTERM/SIGINT given to the launcher go to the container; when the kernel
ends the container is removed (``--rm``) and the copy deleted. The kernelspec uses
``interrupt_mode: message``: ipykernel then interrupts itself inside the container.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

_PORTS = ("shell_port", "iopub_port", "stdin_port", "control_port", "hb_port")


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--image", required=True, help="image with python3-ipykernel")
    parser.add_argument("--name-prefix", required=True, help="container name, before a random part")
    parser.add_argument("connection_file", type=Path)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Run the containerised kernel until it ends; return its exit status."""
    args = _parse(sys.argv[1:] if argv is None else argv)
    info = json.loads(args.connection_file.read_text())
    if info.get("transport", "tcp") != "tcp":
        sys.exit("ipykernel-in-container: only the tcp transport can be published")
    inside = dict(info, ip="0.0.0.0")
    workdir = Path(tempfile.mkdtemp(prefix="kb-bench-ipk-"))
    conn = workdir / "kernel.json"
    # Holds the HMAC key: readable by the owner only (the container runs as root).
    fd = os.open(conn, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(inside, f)
    publish: list[str] = []
    for key in _PORTS:
        port = int(info[key])
        publish += ["-p", f"127.0.0.1:{port}:{port}"]
    argv_docker = [
        "docker",
        "run",
        "--rm",
        "--name",
        args.name_prefix + secrets.token_hex(4),
        *publish,
        "-v",
        f"{workdir}:/kernel",
        args.image,
        "python3",
        "-m",
        "ipykernel_launcher",
        "-f",
        "/kernel/kernel.json",
    ]
    child = subprocess.Popen(argv_docker)

    def forward(signum: int, _frame: object) -> None:
        # docker run proxies the signals it receives to the container's main process.
        child.send_signal(signum)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    try:
        return child.wait()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
