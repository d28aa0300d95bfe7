"""The ACA executor's settings as AutoGen's component config (a pydantic model).

Imported only when ``autogen_core`` (and so pydantic) is importable, by
:func:`~kernel_bridge.executors.autogen_compat.autogen_base`. No secret is part of it:
neither the credential nor a token nor the session identifier (anyone holding it and a
token reaches the session). A loaded executor gets the default credential
(``KERNEL_BRIDGE_ACA_TOKEN``, else ``DefaultAzureCredential``) and a new session.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

__all__ = ["ACAExecutorConfig"]


class ACAExecutorConfig(BaseModel):
    """Configuration of kernel_bridge's ACADynamicSessionsCodeExecutor (AutoGen component)."""

    model_config = ConfigDict(extra="forbid")

    pool_management_endpoint: str
    timeout: int = 60
    work_dir: str | None = None
    functions_module: str = "functions"
    suppress_result_output: bool = False
    api_version: str = "2024-02-02-preview"
    output_streams_max_length: int = 1024 * 1024
    status_line_after: float = 3.0
    delete_sessions: bool = True
    max_retries: int = 4
    http_timeout: float = 240.0
