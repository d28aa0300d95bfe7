"""The ACA executor's plug-in: registered as ``aca`` in kernel_bridge's pyproject.toml.

It imports only the standard library (the executor needs httpx), so an ACA spec can be
written without the ``aca`` extra; ``API_VERSIONS`` mirrors ``_client.API_VERSIONS``
for that reason (a test keeps them equal).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from ..plugin import ExecutorPlugin, InstallOption, OptionValues, configuration_error

__all__ = ["API_VERSIONS", "ACAPlugin", "plugin"]

API_VERSIONS: tuple[str, ...] = (
    "2024-02-02-preview",
    "2024-10-02-preview",
    "2025-02-02-preview",
    "2025-10-02-preview",
    "auto",
)
"""The api-versions a spec can choose; the first is the executor's default."""


def pool_name(endpoint: str) -> str:
    """The session pool's name: the endpoint's last path segment (``.../sessionPools/NAME``)."""
    url = urlsplit(endpoint)
    segments = [s for s in url.path.split("/") if s]
    return segments[-1] if segments else url.netloc


class ACAPlugin(ExecutorPlugin):
    """``--executor aca``: checks the endpoint carries no secret; names the pool."""

    def validate(self, values: Mapping[str, Any]) -> OptionValues:
        """Check --endpoint (an http(s) URL without credentials), --timeout, --api-version."""
        checked = super().validate(values)
        endpoint = str(checked["endpoint"])
        url = urlsplit(endpoint)
        if url.scheme not in ("http", "https") or not url.netloc:
            raise configuration_error(
                f"invalid --endpoint {endpoint!r}: give an http(s) URL of the "
                "session pool's management endpoint"
            )
        if url.username is not None or url.password is not None or url.query or url.fragment:
            raise configuration_error(
                "invalid --endpoint: it must not contain credentials, a query string or a "
                "fragment (kernel.json is not a place for secrets; the token is obtained "
                "from the environment when the kernel runs)"
            )
        timeout = checked.get("timeout")
        if timeout is not None and timeout < 1:
            raise configuration_error(
                f"invalid --timeout {timeout!r}: give a whole number of seconds >= 1"
            )
        version = checked.get("api_version")
        if version is not None and version not in API_VERSIONS:
            raise configuration_error(
                f"invalid --api-version {version!r}: use one of " + ", ".join(API_VERSIONS)
            )
        return checked

    def display_name(self, values: Mapping[str, Any]) -> str:
        """``Python (kernel_bridge: aca, POOL)``: specs for two pools differ in Jupyter."""
        return f"Python (kernel_bridge: aca, {pool_name(str(values.get('endpoint', '')))})"


plugin = ACAPlugin(
    "aca",
    "kernel_bridge.executors.aca:ACADynamicSessionsCodeExecutor",
    description="an Azure Container Apps dynamic session (needs kernel_bridge[aca])",
    install_hint="pip install 'kernel_bridge[aca]'",
    options=(
        InstallOption(
            "--endpoint",
            "the session pool's management endpoint (required)",
            trait="pool_management_endpoint",
            metavar="URL",
            required=True,
        ),
        InstallOption(
            "--timeout",
            "seconds one cell may run remotely (>= 1): the limit of every notebook cell and "
            "of each execute_code_blocks block",
            trait="timeout",
            type=int,
            metavar="S",
        ),
        InstallOption(
            "--api-version",
            "data-plane api-version: " + ", ".join(API_VERSIONS) + " (default "
            f"{API_VERSIONS[0]}; the newer ones run cells past the synchronous 220 s limit, "
            "see docs/aca.md)",
            trait="api_version",
            metavar="V",
        ),
    ),
)
"""The entry point ``aca`` names this object."""
