"""The Docker executor's plug-in: registered as ``docker`` in kernel_bridge's pyproject.toml.

It checks every install option before anything is written (image reference, sizes,
engine address, TLS files, volumes) and renders ``--volume`` as one ``extra_volumes``
argument. It imports only the standard library; ``--pin`` imports the engine code.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from ..plugin import ExecutorPlugin, InstallOption, OptionValues, configuration_error

__all__ = ["DockerPlugin", "VolumeSpec", "parse_volume", "plugin"]

_VOLUME_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
_MEMORY_RE = re.compile(r"^[0-9]+(\.[0-9]+)?[bkmg]?$", re.IGNORECASE)
_DIGEST_IMAGE_RE = re.compile(r"^[^@\s]+@sha256:[0-9a-f]{64}$")
_DOCKER_HOST_SCHEMES = ("unix", "tcp", "ssh", "npipe")
_TLS_FILES = ("ca.pem", "cert.pem", "key.pem")


@dataclass(frozen=True)
class VolumeSpec:
    """One bind mount for the Docker executor: ``HOST:CONTAINER[:ro|rw]``."""

    host: str
    container: str
    mode: str = "rw"


def parse_volume(text: str) -> VolumeSpec:
    """Parse ``HOST:CONTAINER[:ro|rw]``; called for every ``--volume`` before anything is written.

    As with ``docker run -v``, a HOST starting with ``/``, ``.`` or ``~`` is a path (made
    absolute against the current directory) and a bare name is a named Docker volume. The
    container path must be absolute. Raises ConfigurationError naming the bad value.
    """
    parts = text.split(":")
    hint = "expected HOST:CONTAINER or HOST:CONTAINER:ro|rw, e.g. ./data:/data:ro"
    if len(parts) not in (2, 3) or not parts[0] or not parts[1]:
        raise configuration_error(f"invalid --volume {text!r}: {hint}")
    host, container = parts[0], parts[1]
    mode = parts[2] if len(parts) == 3 else "rw"
    if mode not in ("ro", "rw"):
        raise configuration_error(f"invalid --volume {text!r}: mode {mode!r} must be 'ro' or 'rw'")
    if not container.startswith("/"):
        raise configuration_error(
            f"invalid --volume {text!r}: the container path {container!r} must be absolute"
        )
    if host.startswith(("/", ".", "~")):
        host = os.path.abspath(os.path.expanduser(host))
    elif not _VOLUME_NAME_RE.match(host):
        raise configuration_error(
            f"invalid --volume {text!r}: {host!r} is neither a path (start it with /, ./ "
            "or ~) nor a Docker volume name"
        )
    return VolumeSpec(host=host, container=container, mode=mode)


def _check_engine(values: OptionValues) -> None:
    """Check --docker-host and --tls-cert-path; make the certificate folder absolute."""
    docker_host = values.get("docker_host")
    if docker_host is not None:
        url = urlsplit(docker_host)
        if url.scheme not in _DOCKER_HOST_SCHEMES or not (url.netloc or url.path):
            raise configuration_error(
                f"invalid --docker-host {docker_host!r}: give an engine address such "
                "as tcp://host:2376, ssh://user@host or unix:///var/run/docker.sock"
            )
        if url.password is not None or url.query or url.fragment:
            raise configuration_error(
                "invalid --docker-host: it must not contain a password, a query string or a "
                "fragment (kernel.json is not a place for secrets; use ssh keys or TLS "
                "certificates)"
            )
    tls_cert_path = values.get("tls_cert_path")
    if tls_cert_path is not None:
        if docker_host is None:
            raise configuration_error(
                "--tls-cert-path needs --docker-host (the engine the certificates are for), "
                "e.g. --docker-host tcp://engine.example:2376"
            )
        path = Path(tls_cert_path).expanduser()
        missing = [name for name in _TLS_FILES if not (path / name).is_file()]
        if missing:
            raise configuration_error(
                f"invalid --tls-cert-path {tls_cert_path!r}: it lacks "
                f"{', '.join(missing)}; give a directory holding ca.pem, cert.pem and key.pem "
                "(as DOCKER_CERT_PATH)"
            )
        values["tls_cert_path"] = str(path.resolve())


class DockerPlugin(ExecutorPlugin):
    """``--executor docker``: checks the image and limits, pins on request, names the image."""

    def validate(self, values: Mapping[str, Any]) -> OptionValues:
        """Check every Docker option; lowercase --memory, parse --volume, absolutise paths."""
        checked = super().validate(values)
        image = str(checked["image"])
        if "@" in image and not _DIGEST_IMAGE_RE.match(image):
            raise configuration_error(
                f"invalid --image {image!r}: a pinned image is NAME@sha256:<64 hex "
                "digits>, e.g. python@sha256:0123...; or give NAME:TAG"
            )
        memory = checked.get("memory")
        if memory is not None:
            if not _MEMORY_RE.match(memory):
                raise configuration_error(
                    f"invalid --memory {memory!r}: give a size such as 512m or 2g"
                )
            checked["memory"] = memory.lower()
        cpus = checked.get("cpus")
        if cpus is not None and not cpus > 0:
            raise configuration_error(f"invalid --cpus {cpus!r}: give a number greater than 0")
        pids_limit = checked.get("pids_limit")
        if pids_limit is not None and pids_limit <= 0:
            raise configuration_error(
                f"invalid --pids-limit {pids_limit!r}: give a whole number above 0"
            )
        for dest, flag in (("network", "--network"), ("user_id", "--user-id")):
            value = checked.get(dest)
            if value is not None and not value.strip():
                raise configuration_error(f"invalid {flag} {value!r}: give a non-empty value")
        if checked.get("volume"):
            checked["volume"] = [
                v if isinstance(v, VolumeSpec) else parse_volume(v) for v in checked["volume"]
            ]
        _check_engine(checked)
        return checked

    def before_install(self, values: Mapping[str, Any]) -> tuple[OptionValues, list[str]]:
        """With ``--pin``, resolve the image's tag to its digest now (asks the engine)."""
        resolved = dict(values)
        if not resolved.pop("pin", False):
            return resolved, []
        from ._engine import EngineOptions
        from ._pin import pin_image

        image = str(resolved["image"])
        engine = EngineOptions(resolved.get("docker_host"), resolved.get("tls_cert_path"))
        pinned = pin_image(image, engine)
        resolved["image"] = pinned
        return resolved, ([f"Pinned {image} to {pinned}"] if pinned != image else [])

    def kernel_args(self, values: Mapping[str, Any]) -> list[str]:
        """The traits, plus all volumes as one ``extra_volumes`` JSON object.

        One JSON object for all volumes: traitlets parses it into the extra_volumes Dict
        trait with nested {bind, mode} dicts (repeated HOST=VALUE flags would leave those
        values as strings).
        """
        args = super().kernel_args(values)
        volumes: list[VolumeSpec] = list(values.get("volume") or [])
        if volumes:
            mounts = {v.host: {"bind": v.container, "mode": v.mode} for v in volumes}
            args.append(f"--{self.class_name}.extra_volumes={json.dumps(mounts, sort_keys=True)}")
        return args

    def display_name(self, values: Mapping[str, Any]) -> str:
        """``Python (kernel_bridge: docker, IMAGE)``: specs for two images differ in Jupyter."""
        return f"Python (kernel_bridge: docker, {values.get('image')})"


plugin = DockerPlugin(
    "docker",
    "kernel_bridge.executors.docker:DockerCommandLineCodeExecutor",
    description="a hardened Docker container (needs kernel_bridge[docker])",
    install_hint="pip install 'kernel_bridge[docker]'",
    can_debug=True,
    options=(
        InstallOption(
            "--image",
            "image with python3 (required): NAME:TAG, or NAME@sha256:DIGEST",
            trait="image",
            required=True,
        ),
        InstallOption(
            "--pin",
            "resolve --image's tag to the digest it names now (asked of the registry "
            "through the engine) and write NAME@sha256:... into the spec",
            action="store_true",
        ),
        InstallOption(
            "--memory", "memory limit, e.g. 512m or 2g", trait="mem_limit", metavar="SIZE"
        ),
        InstallOption("--cpus", "CPU limit, e.g. 1.5", trait="cpus", type=float),
        InstallOption(
            "--pids-limit",
            "maximum number of processes",
            trait="pids_limit",
            type=int,
            metavar="N",
        ),
        InstallOption(
            "--network",
            "network mode, e.g. none or bridge",
            trait="network_mode",
            metavar="MODE",
        ),
        InstallOption("--user-id", "user[:group] the code runs as", trait="user", metavar="USER"),
        InstallOption(
            "--read-only",
            "mount the container's root filesystem read-only",
            trait="read_only",
            action="store_true",
        ),
        InstallOption(
            "--profile",
            "hardening profile: default (isolated network) or strict (no network, "
            "read-only root); see docs/docker.md",
            trait="profile",
            choices=("default", "strict"),
        ),
        InstallOption(
            "--mount-notebook-dir",
            "mount the notebook's folder read-write at the code's working directory "
            "(/workspace): the code can read and change every file there; off by default",
            trait="mount_notebook_dir",
            action="store_true",
        ),
        InstallOption(
            "--volume",
            "extra mount (a host path, or a named volume); repeatable",
            action="append",
            metavar="HOST:CONTAINER[:ro|rw]",
        ),
        InstallOption(
            "--init-command",
            "shell command run at container start",
            trait="init_command",
            metavar="CMD",
        ),
        InstallOption(
            "--docker-host",
            "the Docker engine (tcp://host:2376, ssh://user@host, unix://PATH); default: "
            "DOCKER_HOST when the kernel runs",
            trait="docker_host",
            metavar="URL",
        ),
        InstallOption(
            "--tls-cert-path",
            "with --docker-host tcp://...: directory with ca.pem, cert.pem, key.pem (TLS)",
            trait="tls_cert_path",
            metavar="DIR",
        ),
    ),
)
"""The entry point ``docker`` names this object."""
