"""A local emulator of the Azure Container Apps dynamic-sessions data plane.

It serves what the public Python clients call (api-version 2024-02-02-preview:
``code/execute``, ``files/upload``, ``files``, ``files/content/{name}``) plus the newer
versions' ``executions`` (synchronous and asynchronous, ``outputStreamsMaxLength``) and
``session`` routes, with the service's behaviour: bearer token required, sessions created
implicitly, idle expiry after a cooldown, a maximum number of sessions, upload size limit,
the 220 s cap on synchronous executions, optional https (``tls``), and fault injection
for tests.
Start it with ``kernel-bridge aca-emulator`` or, in Python::

    from kernel_bridge.emulator import Emulator, EmulatorConfig
    with Emulator(EmulatorConfig(cooldown=60)) as emu:
        print(emu.endpoint)
"""

from __future__ import annotations

from ._app import EmulatorState, create_app
from ._auth import TokenUse
from ._backends import mount_namespace_available
from ._config import DEFAULT_POOL_PATH, EmulatorConfig
from ._faults import Fault, FaultQueue
from ._server import Emulator

__all__ = [
    "DEFAULT_POOL_PATH",
    "Emulator",
    "EmulatorConfig",
    "EmulatorState",
    "Fault",
    "FaultQueue",
    "TokenUse",
    "create_app",
    "mount_namespace_available",
]
