"""The bench's environment: machine description, private kernelspecs, the ACA emulator.

Everything lives in one temporary directory; kernelspecs are found through a private
``JUPYTER_PATH`` set for this process (and so for the kernels it starts). Nothing
listens anywhere but 127.0.0.1.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

MINIMAL_IMAGE = "kernel-bridge-test/minimal:bookworm"
IPYKERNEL_IMAGE = "kernel-bridge-bench/ipykernel:bookworm"
"""The anchor's image: Debian's python3-ipykernel (built by .ci/docker-setup.sh with
KB_BENCH_IMAGES=1; the same Debian Python 3.11 as the bridge's minimal image)."""
RUN_ID = secrets.token_hex(4)
BENCH_ENV = {"KB_BENCH_RUN": RUN_ID}
"""Set in every bridge container of this run (to find leftovers of this run only)."""
BENCH_ENV_ITEM = f"KB_BENCH_RUN={RUN_ID}"
CONTAINER_PREFIX = f"kb-bench-{RUN_ID}-"
"""Name prefix of the containers of executors built in-process (ours and AutoGen's)."""

IPYKERNEL = "bench-ipykernel"
BRIDGE_LOCAL = "bench-bridge-local"
BRIDGE_DOCKER = "bench-bridge-docker"
BRIDGE_ACA = "bench-bridge-aca"
IPYKERNEL_DOCKER = "bench-ipykernel-docker"

SYSTEM_LABELS = {
    IPYKERNEL: "local ipykernel",
    IPYKERNEL_DOCKER: "ipykernel in container",
    BRIDGE_LOCAL: "bridge local",
    BRIDGE_DOCKER: "bridge docker",
    BRIDGE_ACA: "bridge ACA→emulator",
}


def _run(cmd: list[str], **kwargs: Any) -> str:
    return subprocess.run(cmd, check=True, capture_output=True, text=True, **kwargs).stdout


def machine_description() -> list[tuple[str, str]]:
    """CPU model, cores, memory, OS, Python, key package versions, Docker version."""
    cpu = platform.processor() or "?"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem = "?"
    with contextlib.suppress(OSError):
        match = re.search(r"MemTotal:\s+(\d+) kB", Path("/proc/meminfo").read_text())
        if match:
            mem = f"{int(match.group(1)) / 2**20:.1f} GiB"
    docker = "not available"
    with contextlib.suppress(OSError, subprocess.CalledProcessError):
        docker = _run(["docker", "version", "--format", "{{.Server.Version}}"]).strip()
        docker = f"{docker} (server)"
    from importlib.metadata import PackageNotFoundError, version

    def ver(name: str) -> str:
        try:
            return version(name)
        except PackageNotFoundError:
            return "not installed"

    return [
        ("CPU", cpu),
        ("cores (os.cpu_count)", str(os.cpu_count())),
        ("memory", mem),
        ("OS", f"{platform.system()} {platform.release()} ({platform.machine()})"),
        ("Python", f"{platform.python_implementation()} {platform.python_version()}"),
        ("Docker", docker),
        (
            "packages",
            ", ".join(
                f"{n} {ver(n)}"
                for n in ("kernel_bridge", "ipykernel", "jupyter_client", "pyzmq", "autogen-ext")
            ),
        ),
    ]


def docker_available() -> bool:
    """True when a Docker engine answers and the minimal test image exists."""
    try:
        import docker

        client = docker.from_env()
        client.ping()
        client.images.get(MINIMAL_IMAGE)
        client.close()
        return True
    except Exception:
        return False


def ensure_ipykernel_image() -> None:
    """Build the anchor's image with .ci/docker-setup.sh when it is missing (minutes, once)."""
    if (
        subprocess.run(
            ["docker", "image", "inspect", IPYKERNEL_IMAGE], capture_output=True
        ).returncode
        == 0
    ):
        return
    setup = Path(__file__).resolve().parents[1] / ".ci" / "docker-setup.sh"
    print(f"bench: building {IPYKERNEL_IMAGE} (once; debootstrap, a few minutes)...", flush=True)
    subprocess.run(["bash", str(setup)], check=True, env={**os.environ, "KB_BENCH_IMAGES": "1"})


def _install_ipykernel_docker(ws: Workspace) -> None:
    """Write the anchor's kernelspec: bench/_ipykernel_docker.py with the image."""
    spec = ws.prefix / "share" / "jupyter" / "kernels" / IPYKERNEL_DOCKER
    spec.mkdir(parents=True)
    launcher = Path(__file__).resolve().parent / "_ipykernel_docker.py"
    argv = [sys.executable, str(launcher), "--image", IPYKERNEL_IMAGE]
    argv += ["--name-prefix", f"{CONTAINER_PREFIX}ipykernel-", "{connection_file}"]
    content = {
        "argv": argv,
        "display_name": "ipykernel in container (bench anchor)",
        "language": "python",
        "interrupt_mode": "message",
    }
    (spec / "kernel.json").write_text(json.dumps(content, indent=1))


def leftover_containers() -> list[str]:
    """Names of this run's containers that still exist.

    Only the bench's own: bridge containers carry ``KB_BENCH_RUN=<run id>`` in their
    environment, executors the bench builds in-process are named ``kb-bench-<run id>-...``.
    Containers of anything else running on the machine (e.g. test suites) are ignored.
    """
    try:
        import docker

        client = docker.from_env()
    except Exception:
        return []
    try:
        mine = set()
        for container in client.containers.list(all=True, ignore_removed=True):
            env = (container.attrs.get("Config") or {}).get("Env") or []
            if container.name.startswith(CONTAINER_PREFIX) or BENCH_ENV_ITEM in env:
                mine.add(container.name)
        return sorted(mine)
    finally:
        client.close()


@dataclass
class Emulator:
    """A ``kernel-bridge aca-emulator`` subprocess on 127.0.0.1."""

    process: subprocess.Popen[str]
    endpoint: str
    token: str

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT``."""
        match = re.match(r"(https?://[^/]+)", self.endpoint)
        assert match
        return match.group(1)

    @property
    def port(self) -> int:
        """The TCP port the emulator listens on."""
        return int(self.base_url.rsplit(":", 1)[1])

    def stats(self) -> dict[str, Any]:
        """The emulator's counters (``GET /_emulator/stats``)."""
        response = httpx.get(
            self.base_url + "/_emulator/stats",
            headers={"Authorization": f"Bearer {self.token}"},
            timeout=10,
        )
        response.raise_for_status()
        return dict(response.json())

    def stop(self) -> None:
        """End the emulator (SIGINT, as Ctrl-C) and its sessions."""
        if self.process.poll() is None:
            self.process.send_signal(2)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start_emulator(token: str) -> Emulator:
    """Start ``kernel-bridge aca-emulator --port 0`` (token in its environment, not argv)."""
    cmd = [sys.executable, "-m", "kernel_bridge.cli", "aca-emulator", "--port", "0"]
    process = subprocess.Popen(
        cmd,
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
        env={**os.environ, "KERNEL_BRIDGE_EMULATOR_TOKEN": token},
    )
    assert process.stdout is not None
    line = process.stdout.readline().strip()
    if not line.startswith("http"):
        process.kill()
        raise RuntimeError(f"the ACA emulator did not print its endpoint (got {line!r})")
    emulator = Emulator(process, line, token)
    deadline = time.monotonic() + 20
    while True:
        try:
            emulator.stats()
            return emulator
        except httpx.HTTPError:
            if time.monotonic() > deadline:
                emulator.stop()
                raise
            time.sleep(0.05)


@dataclass
class Workspace:
    """The temporary directory, private kernelspecs and the emulator of one bench run."""

    root: Path
    docker: bool
    emulator: Emulator | None = None
    systems: list[str] = field(default_factory=list)
    """Kernelspec names installed, in comparison order."""

    @property
    def prefix(self) -> Path:
        """The ``--prefix`` the kernelspecs were installed into."""
        return self.root / "prefix"

    def close(self) -> None:
        """Stop the emulator and remove the temporary directory."""
        if self.emulator is not None:
            self.emulator.stop()
        shutil.rmtree(self.root, ignore_errors=True)


def _install(args: list[str]) -> None:
    try:
        _run(args)
    except subprocess.CalledProcessError as exc:
        raise RuntimeError(f"{' '.join(args)} failed:\n{exc.stderr}") from exc


def prepare(use_docker: bool, use_aca: bool) -> Workspace:
    """Create the workspace: install the kernelspecs, start the emulator, set the env."""
    root = Path(tempfile.mkdtemp(prefix="kb-bench-"))
    ws = Workspace(root=root, docker=use_docker)
    prefix = str(ws.prefix)
    os.environ["JUPYTER_PATH"] = str(ws.prefix / "share" / "jupyter")
    # Kernels must not pick up the user's IPython profile or config.
    os.environ["IPYTHONDIR"] = str(root / "ipython")
    os.environ["JUPYTER_CONFIG_DIR"] = str(root / "jupyter-config")
    py = sys.executable
    kb = [py, "-m", "kernel_bridge.cli", "install", "--prefix", prefix]
    _install([py, "-m", "ipykernel", "install", "--prefix", prefix, "--name", IPYKERNEL])
    ws.systems.append(IPYKERNEL)
    _install([*kb, "--executor", "local", "--name", BRIDGE_LOCAL])
    ws.systems.append(BRIDGE_LOCAL)
    if use_docker:
        marker = "--kernel-arg=--DockerCommandLineCodeExecutor.environment=" + json.dumps(BENCH_ENV)
        _install(
            [*kb, "--executor", "docker", "--image", MINIMAL_IMAGE, "--name", BRIDGE_DOCKER, marker]
        )
        ws.systems.append(BRIDGE_DOCKER)
        ensure_ipykernel_image()
        _install_ipykernel_docker(ws)
        ws.systems.append(IPYKERNEL_DOCKER)
    if use_aca:
        token = secrets.token_urlsafe(24)
        ws.emulator = start_emulator(token)
        os.environ["KERNEL_BRIDGE_ACA_TOKEN"] = token
        _install(
            [*kb, "--executor", "aca", "--endpoint", ws.emulator.endpoint, "--name", BRIDGE_ACA]
        )
        ws.systems.append(BRIDGE_ACA)
    return ws
