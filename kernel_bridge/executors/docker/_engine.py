"""Talking to the Docker engine: connecting, images, labels and orphaned containers.

Everything here is blocking (the docker SDK is); the executor calls it through
``asyncio.to_thread``. ``kernel-bridge gc`` uses :func:`remove_orphans` directly.
"""

from __future__ import annotations

import contextlib
import os
import re
import socket
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from ...errors import ConfigurationError, ExecutorStartError
from .._processes import process_alive, process_start_time

__all__ = [
    "LABEL_HOST",
    "LABEL_LINGER",
    "LABEL_MANAGED",
    "LABEL_PID",
    "LABEL_STARTED",
    "TLS_FILES",
    "ContainerOwner",
    "EngineOptions",
    "check_cert_path",
    "connect",
    "describe_engine",
    "find_orphans",
    "image_help",
    "open_workspace",
    "owner_labels",
    "remove_orphans",
    "validate_volumes",
]

LABEL_MANAGED = "kernel_bridge.managed"
"""Set to "1" on every container kernel_bridge creates."""
LABEL_HOST = "kernel_bridge.host"
"""Hostname of the machine whose kernel process owns the container."""
LABEL_PID = "kernel_bridge.pid"
"""Process id of the owning kernel (the process that created the container)."""
LABEL_STARTED = "kernel_bridge.started"
"""Start time of that process (guards against a reused pid)."""
LABEL_LINGER = "kernel_bridge.linger"
"""Set to "1" when the container should outlive its kernel (``stop_container=False``)."""

_VOLUME_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
_VOLUME_MODES = {
    "ro",
    "rw",
    "z",
    "Z",
    "shared",
    "rshared",
    "slave",
    "rslave",
    "private",
    "rprivate",
    "nocopy",
}


@dataclass(frozen=True)
class EngineOptions:
    """Which Docker engine to talk to, as a kernelspec names it.

    ``docker_host`` empty: the environment decides (``DOCKER_HOST``, ``DOCKER_TLS_VERIFY``,
    ``DOCKER_CERT_PATH``, as the docker CLI). Otherwise ``docker_host`` (``unix://``,
    ``tcp://``, ``ssh://``) and, for TLS, ``tls_cert_path``: a directory holding
    ``ca.pem``, ``cert.pem`` and ``key.pem`` (the server is verified against ``ca.pem``,
    the client presents ``cert.pem``); the environment is then ignored, so two
    kernelspecs can target two engines. Built by the Docker executor and ``kernel-bridge
    install --pin``.
    """

    docker_host: str | None = None
    tls_cert_path: str | None = None

    def describe(self) -> str:
        """Name the engine for messages (no secrets: hosts and paths only)."""
        if self.docker_host:
            tls = f" with TLS certificates from {self.tls_cert_path}" if self.tls_cert_path else ""
            return f"{self.docker_host}{tls}"
        host = os.environ.get("DOCKER_HOST")
        if host:
            return f"DOCKER_HOST={host}"
        return "unix:///var/run/docker.sock (DOCKER_HOST is not set)"

    @property
    def host(self) -> str:
        """The engine's address (``docker_host``, else ``DOCKER_HOST``, else the local socket)."""
        return self.docker_host or os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"

    @property
    def remote(self) -> bool:
        """True when the engine runs elsewhere (tcp/ssh): no path of this machine is assumed."""
        return self.host.split("://", 1)[0].lower() in ("tcp", "ssh", "http", "https")


TLS_FILES = ("ca.pem", "cert.pem", "key.pem")
"""The files of a TLS certificate directory (as DOCKER_CERT_PATH)."""


def check_cert_path(path: str) -> None:
    """Raise :class:`ConfigurationError` unless ``path`` holds ca.pem, cert.pem and key.pem."""
    missing = [name for name in TLS_FILES if not os.path.isfile(os.path.join(path, name))]
    if missing:
        raise ConfigurationError(
            f"the TLS certificate directory {path!r} lacks {', '.join(missing)}; give a "
            "directory holding ca.pem (the engine's CA), cert.pem and key.pem (this "
            "client's certificate and key), as DOCKER_CERT_PATH does"
        )


def describe_engine(options: EngineOptions | None = None) -> str:
    """Name the engine the SDK will talk to, for error messages (no secrets in it)."""
    return (options or EngineOptions()).describe()


def _client_kwargs(options: EngineOptions) -> dict[str, Any]:
    from docker.tls import TLSConfig
    from docker.utils import kwargs_from_env

    if not options.docker_host:
        return dict(kwargs_from_env())
    kwargs: dict[str, Any] = {"base_url": options.docker_host}
    if options.tls_cert_path:
        check_cert_path(options.tls_cert_path)
        path = options.tls_cert_path
        kwargs["tls"] = TLSConfig(
            client_cert=(os.path.join(path, "cert.pem"), os.path.join(path, "key.pem")),
            ca_cert=os.path.join(path, "ca.pem"),
            verify=True,
        )
    return kwargs


def _api_version(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split(".") if part.isdigit())


def connect(timeout: float = 60.0, options: EngineOptions | None = None) -> Any:
    """Return a ``docker.DockerClient`` for the engine ``options`` name (default: the env).

    Raises :class:`ExecutorStartError` naming the engine and what to do when the SDK is
    missing or no engine answers, :class:`ConfigurationError` for a bad TLS directory.
    """
    options = options or EngineOptions()
    try:
        import docker
        from docker.constants import DEFAULT_DOCKER_API_VERSION, MINIMUM_DOCKER_API_VERSION
        from docker.errors import DockerException
        from requests.exceptions import RequestException
    except ImportError as exc:
        raise ExecutorStartError(
            f"docker executor: the docker SDK is not installed ({exc}); install it with "
            "`pip install 'kernel_bridge[docker]'`"
        ) from exc
    try:
        kwargs = _client_kwargs(options)
        if kwargs.get("tls"):
            # requests lets REQUESTS_CA_BUNDLE/CURL_CA_BUNDLE override the engine's CA
            # (set machine-wide on many hosts): so no environment for this session, which
            # means asking the engine's API version before the real client is made.
            probe = docker.APIClient(
                version=MINIMUM_DOCKER_API_VERSION, timeout=int(timeout), **kwargs
            )
            probe.trust_env = False
            try:
                server = str(probe.version(api_version=False)["ApiVersion"])
            finally:
                probe.close()
            version = min(server, DEFAULT_DOCKER_API_VERSION, key=_api_version)
            client = docker.DockerClient(version=version, timeout=int(timeout), **kwargs)
            client.api.trust_env = False
        else:
            client = docker.DockerClient(timeout=int(timeout), **kwargs)
        client.ping()
    except (DockerException, RequestException) as exc:
        raise ExecutorStartError(
            f"docker executor: cannot reach the Docker engine at {options.describe()}: "
            f"{_short(exc)}. Start Docker (e.g. `sudo systemctl start docker`, or run "
            "`dockerd` as root), or point the kernel at a running engine: "
            "--DockerCommandLineCodeExecutor.docker_host (tcp://host:2376 with tls_cert_path, "
            "or ssh://user@host), or DOCKER_HOST in the environment."
        ) from exc
    return client


def _short(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text if len(text) <= 400 else text[:400] + "..."


def image_help(image: str) -> str:
    """Say how a user can provide ``image`` to the engine without a registry."""
    return (
        f"Provide the image on that engine: `docker pull {image}` where a registry is "
        f"reachable, `docker build -t {image} DIR` from a Dockerfile, or `docker load -i "
        "FILE.tar` from a saved image. Any image with python3 works; one can be built "
        "without a registry as kernel_bridge's .ci/docker-setup.sh does: `debootstrap "
        "--variant=minbase --include=python3 bookworm ROOTFS` then "
        f"`tar -C ROOTFS -c . | docker import - {image}`."
    )


# -- container owners: which kernel process a container belongs to ---------------------


@dataclass(frozen=True)
class ContainerOwner:
    """The kernel process a container belongs to, read from its labels."""

    host: str
    pid: int
    started: str
    linger: bool

    @classmethod
    def from_labels(cls, labels: Mapping[str, str]) -> ContainerOwner:
        """Read the owner from a container's labels."""
        try:
            pid = int(labels.get(LABEL_PID, "0"))
        except ValueError:
            pid = 0
        return cls(
            host=labels.get(LABEL_HOST, ""),
            pid=pid,
            started=labels.get(LABEL_STARTED, ""),
            linger=labels.get(LABEL_LINGER) == "1",
        )

    def is_gone(self, hostname: str | None = None) -> bool:
        """True when this is a process of this host and it no longer runs."""
        if self.host != (hostname or socket.gethostname()):
            return False  # another machine's kernel: we cannot tell
        return not process_alive(self.pid, self.started)


def owner_labels(*, linger: bool) -> dict[str, str]:
    """Labels marking a new container as owned by this process."""
    pid = os.getpid()
    labels = {
        LABEL_MANAGED: "1",
        LABEL_HOST: socket.gethostname(),
        LABEL_PID: str(pid),
        LABEL_STARTED: process_start_time(pid),
    }
    if linger:
        labels[LABEL_LINGER] = "1"
    return labels


def _managed(client: Any) -> Iterator[Any]:
    # The SDK inspects each listed container; one removed in between (its kernel just
    # stopped) is skipped instead of failing the whole listing with a 404.
    yield from client.containers.list(
        all=True, filters={"label": f"{LABEL_MANAGED}=1"}, ignore_removed=True
    )


def find_orphans(client: Any, *, include_lingering: bool = False) -> list[Any]:
    """Return the labelled containers whose kernel process on this host is gone.

    Containers of other hosts and of live kernels are never returned; lingering ones
    (``stop_container=False``) only with ``include_lingering``.
    """
    hostname = socket.gethostname()
    orphans = []
    for container in _managed(client):
        owner = ContainerOwner.from_labels(container.labels or {})
        if owner.linger and not include_lingering:
            continue
        if owner.is_gone(hostname):
            orphans.append(container)
    return orphans


def remove_orphans(
    client: Any, *, include_lingering: bool = False, dry_run: bool = False
) -> list[str]:
    """Force-remove the orphaned containers (see :func:`find_orphans`); return their names."""
    from docker.errors import DockerException

    removed: list[str] = []
    for container in find_orphans(client, include_lingering=include_lingering):
        if not dry_run:
            try:
                container.remove(force=True, v=True)
            except DockerException as exc:
                if getattr(exc, "status_code", None) not in (404, 409):
                    raise
        removed.append(str(container.name))
    return removed


# -- configuration checks ------------------------------------------------------------


def validate_volumes(volumes: Mapping[str, Any] | None) -> dict[str, dict[str, str]]:
    """Check ``extra_volumes`` (``{host_path_or_volume: {"bind": PATH, "mode": MODE}}``).

    Returns a normalised copy; raises :class:`ConfigurationError` naming the bad entry.
    """
    example = "e.g. {'/home/user/data': {'bind': '/mnt/data', 'mode': 'ro'}}"
    result: dict[str, dict[str, str]] = {}
    if volumes is None:
        return result
    if not isinstance(volumes, Mapping):
        raise ConfigurationError(
            f"extra_volumes must be a dict of host path -> {{'bind': ..., 'mode': ...}}, "
            f"not {type(volumes).__name__}; {example}"
        )
    for source, spec in volumes.items():
        where = f"extra_volumes[{source!r}]"
        if not isinstance(source, str) or not source:
            raise ConfigurationError(
                f"{where}: the host path must be a non-empty string; {example}"
            )
        if not (os.path.isabs(source) or _VOLUME_NAME.match(source)):
            raise ConfigurationError(
                f"{where}: {source!r} is neither an absolute host path nor a volume name; {example}"
            )
        if isinstance(spec, str):
            spec = {"bind": spec}
        if not isinstance(spec, Mapping) or not isinstance(spec.get("bind"), str):
            raise ConfigurationError(
                f"{where}: expected {{'bind': CONTAINER_PATH, 'mode': 'rw'|'ro'}}; {example}"
            )
        bind = str(spec["bind"])
        if not bind.startswith("/") or ":" in bind:
            raise ConfigurationError(
                f"{where}: the container path {bind!r} must be absolute (without ':'); {example}"
            )
        if bind.rstrip("/") == "/workspace":
            raise ConfigurationError(
                f"{where}: /workspace is where work_dir (or bind_dir) is mounted; "
                "choose another path"
            )
        mode = str(spec.get("mode", "rw"))
        if not mode or any(part not in _VOLUME_MODES for part in mode.split(",")):
            raise ConfigurationError(f"{where}: mode {mode!r} must be 'rw' or 'ro'; {example}")
        unknown = set(spec) - {"bind", "mode"}
        if unknown:
            raise ConfigurationError(f"{where}: unknown keys {sorted(unknown)}; {example}")
        result[source] = {"bind": bind, "mode": mode}
    return result


def open_workspace(client: Any, container_id: str, path: str) -> None:
    """Make the (volume) directory ``path`` of a created container writable for any user.

    A fresh volume is root's with mode 755; the code may run as another user, so before
    the container starts the directory is given /tmp's mode (1777) through the API,
    which works on any engine, remote ones included.
    """
    import io
    import tarfile

    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        # The directory itself, extracted into the volume: extracting into its parent
        # would write to the root filesystem, refused when it is read-only. The engine
        # applies a "/" entry's mode to the target directory (it skips a "." entry).
        entry = tarfile.TarInfo("/")
        entry.type = tarfile.DIRTYPE
        entry.mode = 0o1777
        archive.addfile(entry)
    client.api.put_archive(container_id, path, buffer.getvalue())


def remove_container(client: Any, container_id: str) -> None:
    """Force-remove a container and its anonymous volumes; a missing one is fine."""
    from docker.errors import DockerException

    with contextlib.suppress(DockerException):
        client.api.remove_container(container_id, force=True, v=True)
