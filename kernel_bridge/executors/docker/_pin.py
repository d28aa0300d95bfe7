"""Pinning an image tag to the digest it names today (``kernel-bridge install --pin``).

A tag moves when someone pushes to it; a digest (``NAME@sha256:...``) names one image
for good, so a notebook run next month uses the same image as today. Blocking; called
by the CLI before the kernelspec is written.
"""

from __future__ import annotations

from typing import Any

from ...errors import ConfigurationError
from ._engine import EngineOptions, connect

__all__ = ["pin_image"]


def _reason(exc: BaseException) -> str:
    text = str(getattr(exc, "explanation", None) or exc).strip() or type(exc).__name__
    return text if len(text) <= 300 else text[:300] + "..."


def _local_digest(client: Any, image: str, repository: str) -> str | None:
    """The digest the engine recorded for ``repository`` when it pushed or pulled ``image``."""
    from docker.errors import ImageNotFound

    try:
        local = client.images.get(image)
    except ImageNotFound:
        return None
    for repo_digest in local.attrs.get("RepoDigests") or []:
        name, _, digest = str(repo_digest).partition("@")
        if name == repository and digest.startswith("sha256:"):
            return digest
    return None


def pin_image(image: str, options: EngineOptions | None = None) -> str:
    """Return ``image`` as ``REPOSITORY@sha256:...``; an already pinned one is returned as is.

    The digest is asked of the registry through the engine (its distribution API, with
    the user's Docker credentials), so it is what the tag names there now; when the
    registry cannot answer, the digest the engine recorded when it pulled or pushed the
    image is used. Raises :class:`ConfigurationError` when the image has no registry
    digest (built, imported or loaded locally and never pushed), and
    :class:`~kernel_bridge.errors.ExecutorStartError` when no engine answers.
    """
    from docker.errors import DockerException
    from docker.utils import parse_repository_tag
    from requests.exceptions import RequestException

    if "@" in image:
        return image
    repository, tag = parse_repository_tag(image)
    reference = f"{repository}:{tag or 'latest'}"
    client = connect(timeout=60, options=options)
    try:
        try:
            descriptor = client.api.inspect_distribution(reference)["Descriptor"]
            return f"{repository}@{descriptor['digest']}"
        except (DockerException, RequestException, KeyError, TypeError) as exc:
            registry_said = _reason(exc)
        digest = _local_digest(client, reference, repository)
        if digest is not None:
            return f"{repository}@{digest}"
    finally:
        client.close()
    raise ConfigurationError(
        f"cannot pin {image!r}: it has no registry digest. The registry could not tell "
        f"({registry_said}), and the engine's copy of the image was never pushed to or "
        "pulled from a registry (it was built, imported or loaded locally). Push it "
        f"(`docker push {reference}`) and pin again, or install without --pin (the tag "
        "may then name other content later)."
    )
