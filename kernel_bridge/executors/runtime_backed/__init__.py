"""What every executor that runs kb_runtime shares.

The runtime is the Python program that runs where the cells run (a subprocess or a
container); ``RuntimeChannel`` speaks its line protocol over a ``RuntimeTransport`` (the
seam a backend implements: a pipe pair, a container's attach socket), and
``RuntimeBackedExecutor`` turns that channel into the kernel's executor contract.
"""

from .channel import BackgroundHandler, RuntimeChannel, RuntimeInfo, RuntimeTransport
from .executor import RuntimeBackedExecutor

__all__ = [
    "BackgroundHandler",
    "RuntimeBackedExecutor",
    "RuntimeChannel",
    "RuntimeInfo",
    "RuntimeTransport",
]
