"""Azure Container Apps dynamic sessions executor: cells run through the sessions REST API.

``ACADynamicSessionsCodeExecutor`` keeps the public API of AutoGen's executor of that
name; the private modules hold the HTTP client, credentials, the at-most-once guard,
the in-session shim, result parsing, comms and completion.
"""

from ._executor import ACADynamicSessionsCodeExecutor

__all__ = ["ACADynamicSessionsCodeExecutor"]
