"""The Docker executor's settings as AutoGen's component config (a pydantic model).

Imported only when ``autogen_core`` (and so pydantic) is importable, by
:func:`~kernel_bridge.executors.autogen_compat.autogen_base`. The fields are those of
:meth:`DockerCommandLineCodeExecutor.to_config`, with its defaults: a config written by
hand that leaves a field out gets what the constructor would give. "No limit" cannot be
None here (AutoGen's ``dump_component()`` drops None values, which would bring the
default limit back), so it is spelled ``mem_limit=""`` and ``pids_limit=0``.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, model_validator

from ._hardening import DEFAULT_MEM_LIMIT

__all__ = ["DockerExecutorConfig"]


class DockerExecutorConfig(BaseModel):
    """Configuration of kernel_bridge's DockerCommandLineCodeExecutor (AutoGen component)."""

    model_config = ConfigDict(extra="forbid")

    image: str = "python:3-slim"
    container_name: str | None = None
    timeout: int = 60
    work_dir: str | None = None
    bind_dir: str | None = None
    auto_remove: bool = True
    stop_container: bool = True
    device_requests: list[dict[str, Any]] | None = None
    functions_module: str = "functions"
    extra_volumes: dict[str, dict[str, str]] | None = None
    extra_hosts: dict[str, str] | None = None
    init_command: str | None = None
    delete_tmp_files: bool = False
    mem_limit: str = DEFAULT_MEM_LIMIT
    """"" for no limit."""
    cpus: float | None = None
    pids_limit: int = 4096
    """0 for the engine's default."""
    network_mode: str | None = None
    user: str | None = None
    read_only: bool | None = None
    mount_notebook_dir: bool = False
    pull: str = "missing"
    environment: dict[str, str] = {}
    profile: str = "default"
    no_new_privileges: bool = True
    cap_drop: list[str] = ["ALL"]
    cap_add: list[str] = []
    docker_host: str | None = None
    tls_cert_path: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _spell_no_limit(cls, data: Any) -> Any:
        """``to_config()`` says "no limit" with None; this model spells it "" and 0."""
        if isinstance(data, dict):
            data = dict(data)
            if "mem_limit" in data and data["mem_limit"] is None:
                data["mem_limit"] = ""
            if "pids_limit" in data and data["pids_limit"] is None:
                data["pids_limit"] = 0
        return data
