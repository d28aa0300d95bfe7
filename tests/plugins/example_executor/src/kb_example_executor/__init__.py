"""An example kernel_bridge executor: cells run in a runtime subprocess that greets.

The whole plug-in: an executor class (a RuntimeBackedExecutor that says how to start
the runtime) and the ExecutorPlugin object the entry point names.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

from traitlets import Unicode
from traitlets.config import LoggingConfigurable

from kernel_bridge.executors import ExecutorPlugin, InstallOption
from kernel_bridge.executors.base import ExecutorMeta
from kernel_bridge.executors.local import SubprocessTransport
from kernel_bridge.executors.runtime_backed.channel import RuntimeTransport
from kernel_bridge.executors.runtime_backed.executor import RuntimeBackedExecutor
from kernel_bridge.runtime import bootstrap_argv


class ExampleExecutor(RuntimeBackedExecutor, LoggingConfigurable, metaclass=ExecutorMeta):
    """Runs cells in a runtime subprocess whose environment holds ``EXAMPLE_GREETING``."""

    kind = "example"
    greeting = Unicode("hello", config=True, help="What EXAMPLE_GREETING says to the code.")

    def __init__(self, **kwargs: object) -> None:
        functions: Sequence[object] = kwargs.pop("functions", ())  # type: ignore[assignment]
        module = kwargs.pop("functions_module", "functions")
        LoggingConfigurable.__init__(self, **kwargs)  # parent=the kernel: config flows in
        RuntimeBackedExecutor.__init__(self)
        self._functions = (list(functions), str(module))

    def _functions_source(self) -> tuple[Sequence[object], str]:
        return self._functions

    async def _spawn(self) -> RuntimeTransport:
        env = {**os.environ, "EXAMPLE_GREETING": self.greeting}
        return await SubprocessTransport.spawn(bootstrap_argv(sys.executable), cwd=None, env=env)


plugin = ExecutorPlugin(
    "example",
    "kb_example_executor:ExampleExecutor",
    description="a greeting subprocess (the example plug-in)",
    options=[
        InstallOption("--greeting", "what the code finds in EXAMPLE_GREETING", trait="greeting")
    ],
)
