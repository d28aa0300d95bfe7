"""Hatch build hook: ship the ``kernel-bridge-local`` kernelspec inside the wheel.

Writes ``build/data_kernelspec/kernel-bridge-local/{kernel.json, logos}``; pyproject.toml
maps ``build/data_kernelspec`` to ``share/jupyter/kernels`` as wheel shared-data, so a
plain ``pip install kernel_bridge`` puts the spec into ``{sys.prefix}/share/jupyter/kernels``
where Jupyter finds it. argv[0] is the literal "python", which jupyter_client replaces with
the launching interpreter. kernel_bridge/kernelspecs.py is loaded by path (the package is
not installed yet and the build environment holds only hatchling); it imports only the
standard library.
"""

from __future__ import annotations

import importlib.util
import shutil
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

from hatchling.builders.hooks.plugin.interface import BuildHookInterface

SPEC_DIR = Path("build") / "data_kernelspec"


def _load_kernelspecs(root: Path) -> ModuleType:
    """Import kernel_bridge/kernelspecs.py from the source tree without importing the package."""
    path = root / "kernel_bridge" / "kernelspecs.py"
    spec = importlib.util.spec_from_file_location("_kernel_bridge_build_kernelspecs", path)
    if spec is None or spec.loader is None:
        raise RuntimeError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


class CustomHook(BuildHookInterface):  # type: ignore[type-arg]
    """Writes the wheel's shared-data kernelspec before hatch collects the files."""

    PLUGIN_NAME = "custom"

    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        """Called by hatchling before each build target; acts for wheels (standard/editable)."""
        if self.target_name != "wheel":
            return
        root = Path(self.root)
        kernelspecs = _load_kernelspecs(root)
        out = root / SPEC_DIR
        shutil.rmtree(out, ignore_errors=True)
        # The local executor with no option; its plug-in (which cannot be asked here: the
        # package is not installed yet) says it can host the debugger. test_kernelspecs
        # checks this equals what `kernel-bridge install` writes.
        content = kernelspecs.bridge_kernel_json(
            kernelspecs.SpecOptions(executor="local"),
            "python",
            executor_args=(),
            display_name=kernelspecs.DEFAULT_DISPLAY_NAME,
            debugger=True,
        )
        kernelspecs.write_kernel_json(out / kernelspecs.DEFAULT_SPEC_NAME, content)

    def clean(self, versions: list[str]) -> None:
        """Called by ``hatch clean``: remove the generated spec directory."""
        shutil.rmtree(Path(self.root) / SPEC_DIR, ignore_errors=True)
