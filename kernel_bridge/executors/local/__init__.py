"""Local executor: cells run in a subprocess of the kernel, on this host."""

from ._executor import LocalExecutor, SubprocessTransport, describe_returncode

__all__ = ["LocalExecutor", "SubprocessTransport", "describe_returncode"]
