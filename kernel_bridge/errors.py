"""The one exception tree of kernel_bridge.

::

    BridgeError                      root: anything kernel_bridge raises on purpose
    ├── ConfigurationError           a bad option: unknown executor, bad volume spec, ...
    ├── FunctionsError               a user-defined function cannot be built or injected
    └── ExecutorError                the executor could not do what was asked
        ├── ExecutorStartError       the runtime, container or remote session did not start
        ├── RuntimeDiedError         the runtime went away; its state is lost
        ├── ExecutorClosedError      the executor was used after stop()
        └── RemoteServiceError       a remote service answered with an error (status, hint)

User code failing is *not* an exception: it is an ``Error`` event. Every message says
what happened and what to do about it, and never contains a secret.
"""

from __future__ import annotations

__all__ = [
    "BridgeError",
    "ConfigurationError",
    "ExecutorClosedError",
    "ExecutorError",
    "ExecutorStartError",
    "FunctionsError",
    "RemoteServiceError",
    "RuntimeDiedError",
    "StdinNotAllowedError",
]


class BridgeError(Exception):
    """Root of every exception kernel_bridge raises on purpose."""


class ConfigurationError(BridgeError):
    """Raised when an option is invalid, before anything is started."""


class FunctionsError(BridgeError):
    """Raised when a user-defined function cannot be turned into the functions module."""


class ExecutorError(BridgeError):
    """Raised when an executor cannot carry out a request."""


class ExecutorStartError(ExecutorError):
    """Raised when the runtime, container or remote session cannot be started."""


class RuntimeDiedError(ExecutorError):
    """Raised when the runtime process ended unexpectedly; its state is lost."""


class ExecutorClosedError(ExecutorError):
    """Raised when an executor is used after ``stop()``."""


class StdinNotAllowedError(EOFError):
    """Raised by the kernel's input handler when the frontend does not allow stdin.

    The runtime then raises IPython's ``StdinNotImplementedError`` in the code (as
    ipykernel does), or ``EOFError`` where IPython is not importable.
    """


class RemoteServiceError(ExecutorError):
    """Raised when a remote service (the ACA data plane) answers with an error.

    ``status`` is the HTTP status (0 when no answer arrived).
    """

    def __init__(self, message: str, status: int = 0) -> None:
        super().__init__(message)
        self.status = status


class DebuggerUnavailableError(BridgeError):
    """The debugger cannot run where this executor runs code; the message says why and
    what to do (shown in the debugger panel's log)."""
