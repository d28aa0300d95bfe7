"""Docker executor: cells run in a hardened container, through the docker SDK.

``DockerCommandLineCodeExecutor`` keeps the public API of AutoGen's executor of that
name; the private modules hold the engine connection, image pulls and pins, container
hardening, file transfer and the attach-socket transport.
"""

from ._executor import DEFAULT_PIDS_LIMIT, DockerCommandLineCodeExecutor, DockerConfigurationError

__all__ = ["DEFAULT_PIDS_LIMIT", "DockerCommandLineCodeExecutor", "DockerConfigurationError"]
