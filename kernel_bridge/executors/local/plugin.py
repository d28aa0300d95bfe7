"""The local executor's plug-in: registered as ``local`` in kernel_bridge's pyproject.toml."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..plugin import ExecutorPlugin, InstallOption, OptionValues, configuration_error

__all__ = ["LocalPlugin", "plugin"]


class LocalPlugin(ExecutorPlugin):
    """``--executor local``: an interpreter and a working directory, both checked on install."""

    def validate(self, values: Mapping[str, Any]) -> OptionValues:
        """Make --python (when a path) and --cwd absolute; they must exist."""
        checked = super().validate(values)
        python = checked.get("python")
        if python is not None and ("/" in python or os.sep in python):
            path = Path(python).expanduser()
            if not (path.is_file() and os.access(path, os.X_OK)):
                raise configuration_error(f"--python {python!r} is not an executable file")
            checked["python"] = str(path.absolute())
        cwd = checked.get("cwd")
        if cwd is not None:
            folder = Path(cwd).expanduser()
            if not folder.is_dir():
                raise configuration_error(f"--cwd {cwd!r} is not an existing directory")
            checked["cwd"] = str(folder.resolve())
        return checked


plugin = LocalPlugin(
    "local",
    "kernel_bridge.executors.local:LocalExecutor",
    description="a subprocess of the kernel, on this host",
    can_debug=True,
    options=(
        InstallOption(
            "--python", "interpreter that runs the cells", trait="python", metavar="PATH"
        ),
        InstallOption("--cwd", "working directory of the runtime", trait="cwd", metavar="DIR"),
    ),
)
"""The entry point ``local`` names this object."""
