"""Loopback services for the "Docker as users run it" tests: registries and a TLS engine.

Each is started on first use by ``.ci/registry-and-engine.sh`` (which installs Debian's
``docker-registry``, ``apache2-utils`` and ``openssl`` when missing), in a private
temporary directory, and stopped by :func:`stop_services` when the test session ends
(tests/conftest.py). Ports and directories are chosen at import time, so kernelspecs
naming them can be written before any test runs. A service that cannot be brought up
fails the test that needs it, with the script's output: never a skip.
"""

from __future__ import annotations

import base64
import io
import json
import os
import secrets
import shutil
import socket
import subprocess
import tarfile
import tempfile
from pathlib import Path
from typing import Any

import pytest

from .environments import MINIMAL_IMAGE, require_docker

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / ".ci" / "registry-and-engine.sh"
ROOT = Path(tempfile.mkdtemp(prefix="kbtest-services-"))
REGISTRY_USER = "kbtest"
REGISTRY_PASSWORD = secrets.token_urlsafe(18)
"""Made per session; reaches htpasswd on stdin and the kernels through a Docker config file."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _script(*args: str, stdin: str | None = None, timeout: float = 900) -> None:
    proc = subprocess.run(
        ["bash", str(SCRIPT), *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if proc.returncode != 0:
        pytest.fail(
            f".ci/registry-and-engine.sh {' '.join(args)} exited {proc.returncode}:\n"
            f"{proc.stderr[-3000:]}"
        )


def build_marked_image(
    client: Any, tag: str, marker: str, *, blobs_mb: tuple[int, ...] = ()
) -> str:
    """Build ``tag`` on the main engine: the minimal image plus /opt/kbtest-marker.

    ``marker`` is the file's text (tells two images apart); each of ``blobs_mb`` adds
    a layer of that many MB of random bytes, which no engine has yet, so pulling the
    image really downloads. Returns the tag.
    """
    files = {"marker": marker.encode()}
    lines = [f"FROM {MINIMAL_IMAGE}", "COPY marker /opt/kbtest-marker"]
    for index, size in enumerate(blobs_mb):
        files[f"blob{index}"] = os.urandom(size * 2**20)
        lines.append(f"COPY blob{index} /opt/kbtest-blob{index}")
    files["Dockerfile"] = ("\n".join(lines) + "\n").encode()
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as context:
        for name, data in files.items():
            entry = tarfile.TarInfo(name)
            entry.size = len(data)
            context.addfile(entry, io.BytesIO(data))
    buffer.seek(0)
    client.images.build(fileobj=buffer, custom_context=True, tag=tag, rm=True, forcerm=True)
    return tag


class Registry:
    """A Docker registry (Debian's docker-registry) on 127.0.0.1, optionally with basic auth."""

    def __init__(self, name: str, *, auth: bool) -> None:
        self.dir = ROOT / name
        self.port = free_port()
        self.auth = auth
        self.started = False

    @property
    def address(self) -> str:
        """``127.0.0.1:PORT``, the registry part of image names."""
        return f"127.0.0.1:{self.port}"

    def ensure(self) -> Registry:
        """Start it (once) and return it; fails the test when it cannot."""
        if not self.started:
            require_docker()
            _script("packages")
            if self.auth:
                _script(
                    "registry", str(self.dir), str(self.port), REGISTRY_USER,
                    stdin=REGISTRY_PASSWORD,
                )  # fmt: skip
            else:
                _script("registry", str(self.dir), str(self.port))
            self.started = True
        return self

    def push(self, client: Any, source: str, repository: str, tag: str) -> str:
        """Push local image ``source`` as ``ADDRESS/repository:tag``; return its digest.

        The ``ADDRESS/repository:tag`` name is removed from the main engine afterwards,
        so a kernel on that name must pull it.
        """
        target = f"{self.address}/{repository}"
        client.images.get(source).tag(target, tag)
        auth = {"username": REGISTRY_USER, "password": REGISTRY_PASSWORD} if self.auth else None
        digest = ""
        for item in client.images.push(target, tag=tag, stream=True, decode=True, auth_config=auth):
            if item.get("error"):
                raise RuntimeError(f"push of {target}:{tag} failed: {item['error']}")
            digest = str((item.get("aux") or {}).get("Digest") or digest)
        assert digest.startswith("sha256:"), f"no digest from the push of {target}:{tag}"
        client.images.remove(f"{target}:{tag}")
        return digest

    def docker_config(self, directory: Path, *, with_credentials: bool = True) -> Path:
        """Write a Docker client config (``config.json``) into ``directory``; return it.

        With credentials it holds this registry's login, as ``docker login`` writes it.
        """
        directory.mkdir(parents=True, exist_ok=True)
        auths: dict[str, Any] = {}
        if with_credentials:
            token = base64.b64encode(f"{REGISTRY_USER}:{REGISTRY_PASSWORD}".encode()).decode()
            auths[self.address] = {"auth": token}
        path = directory / "config.json"
        path.write_text(json.dumps({"auths": auths}))
        path.chmod(0o600)
        return directory

    def stop(self) -> None:
        """Stop the registry process."""
        if self.started:
            self.started = False
            _script("stop", str(self.dir))


class RemoteEngine:
    """A second dockerd on tcp://127.0.0.1:PORT with TLS, holding the minimal test image."""

    def __init__(self) -> None:
        self.dir = ROOT / "engine"
        self.certs = ROOT / "certs"
        self.port = free_port()
        self.started = False

    @property
    def host(self) -> str:
        """``tcp://127.0.0.1:PORT``."""
        return f"tcp://127.0.0.1:{self.port}"

    @property
    def socket(self) -> str:
        """The engine's own unix socket (for the test tooling, not for kernels)."""
        return f"unix://{self.dir}/docker.sock"

    def environment(self) -> dict[str, str]:
        """DOCKER_HOST, DOCKER_TLS_VERIFY, DOCKER_CERT_PATH naming this engine."""
        return {
            "DOCKER_HOST": self.host,
            "DOCKER_TLS_VERIFY": "1",
            "DOCKER_CERT_PATH": str(self.certs),
        }

    def flags(self) -> tuple[str, ...]:
        """Kernel flags naming this engine without environment variables."""
        prefix = "--DockerCommandLineCodeExecutor."
        return (f"{prefix}docker_host={self.host}", f"{prefix}tls_cert_path={self.certs}")

    def ensure(self) -> RemoteEngine:
        """Start it (once) with the minimal image loaded; fails the test when it cannot."""
        if not self.started:
            require_docker()
            _script("packages")
            _script("certs", str(self.certs))
            _script("engine", str(self.dir), str(self.port), str(self.certs))
            self.started = True
            self._load(MINIMAL_IMAGE)
        return self

    def _load(self, image: str) -> None:
        """Copy ``image`` from the main engine: ``docker save | docker load`` (no registry)."""
        check = subprocess.run(
            ["docker", "-H", self.socket, "image", "inspect", image],
            capture_output=True,
            check=False,
        )
        if check.returncode == 0:
            return
        save = subprocess.Popen(["docker", "save", image], stdout=subprocess.PIPE)
        load = subprocess.run(
            ["docker", "-H", self.socket, "load"],
            stdin=save.stdout,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        assert save.stdout is not None
        save.stdout.close()
        if save.wait(timeout=600) != 0 or load.returncode != 0:
            pytest.fail(f"could not load {image} into the remote engine: {load.stderr[-2000:]}")

    def client(self) -> Any:
        """A docker SDK client for this engine, made the way the executor makes one."""
        from kernel_bridge.executors.docker._engine import EngineOptions, connect

        return connect(timeout=30, options=EngineOptions(self.host, str(self.certs)))

    def leftover_containers(self) -> list[str]:
        """Names of kernel_bridge containers still in this engine (cleaned up as found)."""
        if not self.started:
            return []
        client = self.client()
        try:
            left = client.containers.list(
                all=True, ignore_removed=True, filters={"label": "kernel_bridge.managed=1"}
            )
            names = [str(c.name) for c in left]
            for container in left:
                container.remove(force=True, v=True)
            return names
        finally:
            client.close()

    def stop(self) -> None:
        """Stop the engine (its containerd with it)."""
        if self.started:
            self.started = False
            _script("stop", str(self.dir))


REGISTRY = Registry("registry", auth=False)
AUTH_REGISTRY = Registry("registry-auth", auth=True)
REMOTE_ENGINE = RemoteEngine()


def stop_services() -> list[str]:
    """Stop every service started in this session; return containers left in the engine.

    Called once, when the session ends. The temporary directory goes too.
    """
    left: list[str] = []
    try:
        left = REMOTE_ENGINE.leftover_containers()
    finally:
        for service in (REMOTE_ENGINE, REGISTRY, AUTH_REGISTRY):
            try:
                service.stop()
            except BaseException as exc:  # pytest.fail from the script: report, go on
                print(f"\ncould not stop a test service: {exc}")
        shutil.rmtree(ROOT, ignore_errors=True)
    return left
