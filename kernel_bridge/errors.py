"""The one exception tree of kernel_bridge.

Every exception kernel_bridge raises on purpose is one of these; callers branch on the
type, never on the message text::

    BridgeError                          root: anything kernel_bridge raises on purpose
    ├── ConfigurationError               a bad option, found before anything starts
    │   └── ConfigurationValueError      ... also a ValueError, where AutoGen's API raises one
    │       └── DockerConfigurationError     a bad Docker executor option
    ├── FunctionsError                   a user-defined function cannot be built or injected
    ├── InvalidCodeBlocksError           bad input to execute_code_blocks (also a ValueError)
    ├── MagicUsageError                  a ``%bridge`` line that cannot be understood
    ├── DebuggerUnavailableError         the debugger cannot run where this executor runs code
    ├── ExecutorError                    the executor could not do what was asked
    │   ├── ExecutorStartError           the runtime, container or remote session did not start
    │   │   └── RuntimeProtocolError     the runtime speaks another protocol version
    │   ├── RuntimeDiedError             the runtime went away; its state is lost
    │   ├── ExecutorClosedError          the executor was used after stop()
    │   └── RemoteServiceError           a remote service answered with an error (``status``)
    │       ├── ServiceThrottledError        429/503 kept coming after the retries
    │       ├── SessionPoolFullError         no new session: the pool is full
    │       ├── ServiceTimeoutError          no answer in time (also a TimeoutError)
    │       └── CodeMayHaveRunError          a request carrying code failed after it may
    │                                        have arrived: the code may or may not have run
    └── EmulatorError                    raised inside the ACA emulator (never reaches a kernel)
        ├── EmulatedPoolFull             a new identifier while ``max_sessions`` sessions live
        └── DroppedConnection            a fault rule closes the connection on purpose

    StdinNotAllowedError (an EOFError, not a BridgeError: it travels through user code's
    ``input()``) is raised by the kernel's input handler when the frontend has no stdin.

A failure that fits several leaves gets the one a caller most needs to act on: a code
execution throttled after it may have arrived is a :class:`CodeMayHaveRunError` (do not
blindly run it again), and its message also says it was throttled.

User code failing is *not* an exception: it is an ``Error`` event. Every message says
what happened and what to do about it, and never contains a secret.
"""

from __future__ import annotations

__all__ = [
    "BridgeError",
    "CodeMayHaveRunError",
    "ConfigurationError",
    "ConfigurationValueError",
    "DebuggerUnavailableError",
    "DockerConfigurationError",
    "DroppedConnection",
    "EmulatedPoolFull",
    "EmulatorError",
    "ExecutorClosedError",
    "ExecutorError",
    "ExecutorStartError",
    "FunctionsError",
    "InvalidCodeBlocksError",
    "MagicUsageError",
    "RemoteServiceError",
    "RuntimeDiedError",
    "RuntimeProtocolError",
    "ServiceThrottledError",
    "ServiceTimeoutError",
    "SessionPoolFullError",
    "StdinNotAllowedError",
]


class BridgeError(Exception):
    """Root of every exception kernel_bridge raises on purpose."""


class ConfigurationError(BridgeError):
    """Raised when an option is invalid, before anything is started.

    The session shows it in the cell with a hint to fix the kernelspec; the kernel lives on.
    """


class ConfigurationValueError(ConfigurationError, ValueError):
    """A bad option value where AutoGen's executor API promises ``ValueError``.

    Raised by the AutoGen-compatible executors' constructors and methods (a timeout below
    1 s, a functions_module that is not an identifier, a malformed endpoint), so code
    written for AutoGen that catches ``ValueError`` keeps working.
    """


class DockerConfigurationError(ConfigurationValueError):
    """A bad Docker executor option (also a ValueError, as AutoGen's Docker executor raises)."""


class FunctionsError(BridgeError):
    """Raised when a user-defined function cannot be turned into the functions module."""


class InvalidCodeBlocksError(BridgeError, ValueError):
    """Bad input to ``execute_code_blocks``: no blocks, something that is not a block, a
    ``# filename:`` outside the workspace. Also a ValueError, as AutoGen's API promises."""


class MagicUsageError(BridgeError):
    """A ``%bridge`` line that cannot be understood; the message says what to write instead.

    Raised by kernel_bridge.magics, shown in the cell as a usage error; the code after
    the line does not run.
    """


class DebuggerUnavailableError(BridgeError):
    """The debugger cannot run where this executor runs code; the message says why and
    what to do (shown in the debugger panel's log)."""


class ExecutorError(BridgeError):
    """Raised when an executor cannot carry out a request."""


class ExecutorStartError(ExecutorError):
    """Raised when the runtime, container or remote session cannot be started."""


class RuntimeProtocolError(ExecutorStartError):
    """Raised when a runtime announces a protocol version the host does not speak.

    Raised by :meth:`RuntimeChannel.open`; the runtime is stopped, nothing runs in it.
    """

    def __init__(self, message: str, runtime_version: object, host_version: int) -> None:
        super().__init__(message)
        self.runtime_version = runtime_version
        self.host_version = host_version


class RuntimeDiedError(ExecutorError):
    """Raised when the runtime process ended unexpectedly; its state is lost."""


class ExecutorClosedError(ExecutorError):
    """Raised when an executor is used after ``stop()``."""


class RemoteServiceError(ExecutorError):
    """Raised when a remote service (the ACA data plane) answers with an error.

    ``status`` is the HTTP status (0 when no answer arrived).
    """

    def __init__(self, message: str, status: int = 0) -> None:
        super().__init__(message)
        self.status = status


class ServiceThrottledError(RemoteServiceError):
    """The service kept answering 429 or 503 after the retries; try again later."""


class SessionPoolFullError(RemoteServiceError):
    """No new session could be allocated: the pool reached maxConcurrentSessions (404)."""


class ServiceTimeoutError(RemoteServiceError, TimeoutError):
    """The service did not answer within the HTTP timeout (a request without code in it).

    Also a :class:`TimeoutError`, which AutoGen's ACA executor raises for a slow service.
    """


class CodeMayHaveRunError(RemoteServiceError):
    """A request carrying code failed after the code may have reached the session.

    It was not sent again (or the session's run-once check could not tell), so whether
    it ran is unknown: check the session's state before running it again.
    """


class StdinNotAllowedError(EOFError):
    """Raised by the kernel's input handler when the frontend does not allow stdin.

    The runtime then raises IPython's ``StdinNotImplementedError`` in the code (as
    ipykernel does), or ``EOFError`` where IPython is not importable.
    """


class EmulatorError(BridgeError):
    """Raised inside the ACA emulator; turned into an HTTP answer, never seen by a kernel."""


class EmulatedPoolFull(EmulatorError):
    """A new identifier arrived while ``max_sessions`` sessions are live (the route answers 404)."""


class DroppedConnection(EmulatorError):
    """Raised after the response headers to make the emulator close the connection."""
