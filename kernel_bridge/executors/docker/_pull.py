"""Getting the image onto the engine: a pull the user can watch, errors that say what to do.

The engine pulls (not this process), with the credentials the docker SDK read from the
user's Docker config (``$DOCKER_CONFIG/config.json`` or ``~/.docker/config.json``,
credential helpers included): kernel_bridge never takes registry credentials from a
kernelspec. The engine's stream of JSON items (thousands for a big image) is folded by
:class:`PullProgress` into a few lines, one per layer plus a total, which the executor
shows as one display that it updates. Blocking: the executor calls
:func:`ensure_image` through ``asyncio.to_thread``.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from ...errors import ExecutorStartError
from ._engine import image_help

__all__ = ["PROGRESS_INTERVAL_S", "PullProgress", "ensure_image", "pull_error", "registry_of"]

PROGRESS_INTERVAL_S = 0.25
"""Least time between two progress updates caused by byte counts alone."""

_LAYER_ID = re.compile(r"^[0-9a-f]{12,64}$")
_DONE = ("pull complete", "already exists")
_UNREACHABLE = (
    "connection refused",
    "no such host",
    "i/o timeout",
    "network is unreachable",
    "no route to host",
    "timeout exceeded",
    "server gave http response to https client",
    "x509:",
    "tls:",
    "dial tcp",
)
_UNAUTHORIZED = ("no basic auth credentials", "unauthorized", "authentication required")
_NOT_FOUND = ("manifest unknown", "name unknown", "not found", "does not exist")


def registry_of(image: str) -> str:
    """The registry an image reference pulls from (``docker.io`` for Docker Hub names)."""
    from docker.auth import resolve_repository_name
    from docker.utils import parse_repository_tag

    repository, _ = parse_repository_tag(image)
    try:
        return str(resolve_repository_name(repository)[0])
    except Exception:
        return str(repository).split("/", 1)[0]


def _size(n: int) -> str:
    value = float(n)
    for unit in ("B", "kB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{n} B"


@dataclass
class _Layer:
    status: str = "Waiting"
    current: int = 0
    total: int = 0
    downloaded: int = 0
    size: int = 0


class PullProgress:
    """The engine's pull stream folded into one line per layer and a total line.

    Fed each JSON item of the engine's ``/images/create`` stream by :func:`ensure_image`;
    :meth:`render` gives the text the cell shows (and updates) while the pull runs.
    """

    def __init__(self, image: str, engine: str) -> None:
        self.image = image
        self.engine = engine
        self.layers: dict[str, _Layer] = {}
        self.digest = ""
        self.started = time.monotonic()

    def feed(self, item: Mapping[str, Any]) -> bool:
        """Take one item of the stream; True when a layer changed state (show it now)."""
        status = str(item.get("status") or "")
        layer_id = str(item.get("id") or "")
        if status.startswith("Digest: "):
            self.digest = status.removeprefix("Digest: ").strip()
            return True
        if not status or not _LAYER_ID.match(layer_id):
            return False  # "Pulling from ...", "Status: Downloaded newer image ..."
        layer = self.layers.setdefault(layer_id, _Layer())
        changed = layer.status != status
        layer.status = status
        detail = item.get("progressDetail") or {}
        current, total = detail.get("current"), detail.get("total")
        layer.current = int(current) if isinstance(current, int) else 0
        layer.total = int(total) if isinstance(total, int) else 0
        if status == "Downloading" and layer.total:
            layer.downloaded, layer.size = layer.current, layer.total
        elif status in ("Download complete", "Verifying Checksum") and layer.size:
            layer.downloaded = layer.size
        elif status == "Extracting" and layer.total:
            layer.size = max(layer.size, layer.total)
            layer.downloaded = layer.size
        return changed

    def render(self, outcome: str | None = None) -> str:
        """The text to show: a header, one line per layer, a total (and ``outcome``)."""
        elapsed = time.monotonic() - self.started
        lines = [f"Pulling {self.image} onto the Docker engine at {self.engine}"]
        for layer_id, layer in self.layers.items():
            text = f"  {layer_id[:12]}  {layer.status}"
            if layer.total and layer.status in ("Downloading", "Extracting"):
                text += f"  {_size(layer.current)} / {_size(layer.total)}"
            lines.append(text)
        done = sum(1 for layer in self.layers.values() if layer.status.lower() in _DONE)
        size = sum(layer.size for layer in self.layers.values())
        downloaded = sum(layer.downloaded for layer in self.layers.values())
        total = f"  {done}/{len(self.layers)} layers done"
        if size:
            total += f", {_size(downloaded)} of {_size(size)} downloaded"
        lines.append(f"{total}, {elapsed:.1f} s")
        if self.digest:
            lines.append(f"  digest {self.digest}")
        if outcome:
            lines.append(outcome)
        return "\n".join(lines) + "\n"


def pull_error(image: str, reason: str, engine: str) -> str:
    """Word a failed pull: what went wrong with which image, and what the user can do."""
    registry = registry_of(image)
    lowered = reason.lower()
    head = f"docker executor: could not pull the image {image!r} onto the Docker engine at {engine}"
    if any(marker in lowered for marker in _UNREACHABLE):
        return (
            f"{head}: the registry {registry} cannot be reached from that engine ({reason}). "
            f"Check the registry address in the image name and that the registry runs; the "
            "engine, not this machine, connects to it (its network, proxy and "
            "insecure-registries settings apply). Or put the image on the engine without "
            f"a registry: `docker load -i FILE.tar`, or `docker build -t {image} DIR`."
        )
    if any(marker in lowered for marker in _UNAUTHORIZED):
        return (
            f"{head}: the registry {registry} requires credentials and none were accepted "
            f"({reason}). Log in as the user who runs Jupyter: `docker login {registry}` "
            "(kernel_bridge passes the credentials stored in ~/.docker/config.json, or "
            "$DOCKER_CONFIG/config.json, to the engine; they never belong in kernel.json), "
            "then run the cell again."
        )
    if "pull access denied" in lowered or "denied" in lowered:
        return (
            f"{head}: the registry {registry} refused it ({reason}): the repository does "
            f"not exist, or it is private and needs `docker login {registry}` as the user "
            "who runs Jupyter. Check the image name, then run the cell again."
        )
    if any(marker in lowered for marker in _NOT_FOUND):
        return (
            f"{head}: the registry {registry} has no such image ({reason}). Check the "
            "repository name and the tag (or digest) in the kernelspec's image; `docker "
            f"pull {image}` shows the same error, and the registry lists its tags at "
            "/v2/REPOSITORY/tags/list."
        )
    return f"{head}: {reason}. {image_help(image)}"


def _reason(exc: BaseException) -> str:
    text = str(getattr(exc, "explanation", None) or exc).strip() or type(exc).__name__
    return text if len(text) <= 400 else text[:400] + "..."


class _StreamError(Exception):
    """An error item in the engine's pull stream."""


def _pull(client: Any, image: str, engine: str, on_progress: Callable[[str], None]) -> None:
    from docker.errors import DockerException
    from docker.utils import parse_repository_tag
    from requests.exceptions import RequestException

    repository, tag = parse_repository_tag(image)
    progress = PullProgress(image, engine)
    on_progress(progress.render())
    shown = time.monotonic()
    try:
        # The tag may be a digest ("sha256:..."): the engine accepts either.
        stream = client.api.pull(repository, tag=tag or "latest", stream=True, decode=True)
        for item in stream:
            if not isinstance(item, dict):
                continue
            if item.get("error") or item.get("errorDetail"):
                detail = item.get("errorDetail") or {}
                raise _StreamError(str(item.get("error") or detail.get("message") or item))
            changed = progress.feed(item)
            now = time.monotonic()
            if changed or now - shown >= PROGRESS_INTERVAL_S:
                on_progress(progress.render())
                shown = now
        client.images.get(image)
    except (DockerException, RequestException, _StreamError) as exc:
        on_progress(progress.render("Pull failed; the error below says why."))
        raise ExecutorStartError(pull_error(image, _reason(exc), engine)) from exc
    elapsed = time.monotonic() - progress.started
    on_progress(progress.render(f"Pulled {image} in {elapsed:.1f} s."))


def ensure_image(
    client: Any, image: str, pull: str, engine: str, on_progress: Callable[[str], None]
) -> None:
    """Make sure ``image`` is on the engine, pulling it when ``pull`` allows.

    ``pull``: ``"missing"`` (pull only when absent), ``"always"``, ``"never"``. While
    pulling, ``on_progress`` gets the whole progress text each time it changes (a layer
    changed state, or every :data:`PROGRESS_INTERVAL_S` as bytes arrive), and a last time
    with the outcome. ``engine`` names the engine in messages. Raises
    :class:`ExecutorStartError` naming the image, the cause and what to do.
    """
    from docker.errors import DockerException, ImageNotFound
    from requests.exceptions import RequestException

    if pull != "always":
        try:
            client.images.get(image)
            return
        except ImageNotFound:
            if pull == "never":
                raise ExecutorStartError(
                    f"docker executor: the image {image!r} is not on the Docker engine at "
                    f"{engine} and pull='never'. {image_help(image)}"
                ) from None
        except (DockerException, RequestException) as exc:
            raise ExecutorStartError(
                f"docker executor: cannot look up the image {image!r} on the Docker engine at "
                f"{engine}: {_reason(exc)}"
            ) from exc
    _pull(client, image, engine, on_progress)
