"""The test kernelspecs: one per executor configuration, all injecting the demo functions.

Each spec says what it needs (see environments.py). Importing this module changes
nothing: the session fixture ``jupyter_path`` (tests/conftest.py, autouse, so
unittest-style suites such as jupyter_kernel_test find the specs in setUpClass) calls
:func:`install_test_kernelspecs` into a private folder put first on JUPYTER_PATH, and
tests that write extra specs put them into :func:`jupyter_root`.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

from kernel_bridge.executors.registry import executor_plugin

from .environments import ACA_TOKEN, EMULATORS, MINIMAL_IMAGE, RICH_IMAGE, require
from .services import REMOTE_ENGINE

REPO = Path(__file__).resolve().parents[2]
DEMO_FUNCTIONS = REPO / "notebooks" / "demo_functions.py"
FUNCTIONS_FLAG = f"--BridgeKernel.functions={DEMO_FUNCTIONS}"


@dataclass(frozen=True)
class BridgeSpec:
    """A kernelspec used by the kernel-level tests."""

    name: str
    flags: tuple[str, ...]
    needs: tuple[str, ...] = ()
    env: dict[str, str] = field(default_factory=dict)
    interrupt_mode: str = "signal"

    def ready(self) -> str:
        """Bring up what the spec needs (or fail/skip) and return its name."""
        require(self.needs)
        return self.name


def _docker(image: str) -> tuple[str, ...]:
    return (
        "--BridgeKernel.executor=docker",
        f"--DockerCommandLineCodeExecutor.image={image}",
        FUNCTIONS_FLAG,
    )


ACA_NEWEST_VERSION = "2025-10-02-preview"


def _aca(backend: str, api_version: str | None = None) -> tuple[str, ...]:
    version = (
        ()
        if api_version is None
        else (f"--ACADynamicSessionsCodeExecutor.api_version={api_version}",)
    )
    return (
        "--BridgeKernel.executor=aca",
        f"--ACADynamicSessionsCodeExecutor.pool_management_endpoint={EMULATORS[backend].endpoint}",
        *version,
        FUNCTIONS_FLAG,
    )


LOCAL = BridgeSpec("kbtest-local", ("--BridgeKernel.executor=local", FUNCTIONS_FLAG))
LOCAL_MSG = BridgeSpec(
    "kbtest-local-msg", ("--BridgeKernel.executor=local", FUNCTIONS_FLAG), interrupt_mode="message"
)
DOCKER = BridgeSpec("kbtest-docker", _docker(MINIMAL_IMAGE), needs=("docker",))
DOCKER_RICH = BridgeSpec("kbtest-docker-rich", _docker(RICH_IMAGE), needs=("docker",))
ACA_LOCAL = BridgeSpec(
    "kbtest-aca", _aca("local"), needs=("aca-local",), env={"KERNEL_BRIDGE_ACA_TOKEN": ACA_TOKEN}
)
ACA_LOCAL_NEWEST = BridgeSpec(
    "kbtest-aca-newest",
    _aca("local", ACA_NEWEST_VERSION),
    needs=("aca-local",),
    env={"KERNEL_BRIDGE_ACA_TOKEN": ACA_TOKEN},
)
"""The ACA kernel on the newest api-version: cells run as polled asynchronous executions."""
ACA_DOCKER = BridgeSpec(
    "kbtest-aca-docker",
    _aca("docker"),
    needs=("aca-docker",),
    env={"KERNEL_BRIDGE_ACA_TOKEN": ACA_TOKEN},
)
# Containers on the second engine run with network_mode none, named explicitly so the
# executor's default network (which may be one the main engine made) does not matter.
DOCKER_REMOTE = BridgeSpec(
    "kbtest-docker-remote",
    (
        *_docker(MINIMAL_IMAGE),
        *REMOTE_ENGINE.flags(),
        "--DockerCommandLineCodeExecutor.network_mode=none",
    ),
    needs=("remote-engine",),
)
DOCKER_REMOTE_ENV = BridgeSpec(
    "kbtest-docker-remote-env",
    (*_docker(MINIMAL_IMAGE), "--DockerCommandLineCodeExecutor.network_mode=none"),
    needs=("remote-engine",),
    env=REMOTE_ENGINE.environment(),
)
BAD = BridgeSpec("kbtest-bad", ("--BridgeKernel.executor=nope",))

ALL_SPECS = {
    s.name: s
    for s in (
        LOCAL, LOCAL_MSG, DOCKER, DOCKER_RICH, DOCKER_REMOTE, DOCKER_REMOTE_ENV,
        ACA_LOCAL, ACA_LOCAL_NEWEST, ACA_DOCKER, BAD,
    )
}  # fmt: skip

STREAMING_SPECS = [LOCAL, DOCKER, DOCKER_REMOTE]
"""Executors with live output and real interrupts (the runtime-backed ones), the Docker
one on the local engine and on a remote engine over TLS."""
NOTEBOOK_SPECS = [LOCAL, DOCKER, ACA_LOCAL, ACA_LOCAL_NEWEST, ACA_DOCKER]
"""Executors the notebooks (papermill, nbval) and the conformance suite run against."""


def _executor_kind(flags: tuple[str, ...]) -> str:
    prefix = "--BridgeKernel.executor="
    return next((f[len(prefix) :] for f in flags if f.startswith(prefix)), "local")


def _can_debug(kind: str) -> bool:
    try:
        return executor_plugin(kind).can_debug
    except Exception:  # kbtest-bad names no installed executor
        return False


def write_kernelspec(root: Path, spec: BridgeSpec, extra_flags: tuple[str, ...] = ()) -> Path:
    """Write ``spec`` under ``root/kernels`` launching this checkout's kernel."""
    spec_dir = root / "kernels" / spec.name
    spec_dir.mkdir(parents=True, exist_ok=True)
    content = {
        "argv": [
            sys.executable,
            "-m",
            "kernel_bridge",
            "-f",
            "{connection_file}",
            *spec.flags,
            *extra_flags,
        ],
        "display_name": f"kernel_bridge test ({spec.name})",
        "language": "python",
        "interrupt_mode": spec.interrupt_mode,
        "env": {"PYTHONPATH": str(REPO), **spec.env},
        # as `kernel-bridge install` writes it: JupyterLab enables its debugger by this
        "metadata": {"debugger": _can_debug(_executor_kind(spec.flags))},
    }
    (spec_dir / "kernel.json").write_text(json.dumps(content, indent=1))
    return spec_dir


_ROOT: list[Path] = []


def install_test_kernelspecs(root: Path) -> Path:
    """Write every test spec (and one with broken functions) into ``root/kernels``.

    Called once per test session by the ``jupyter_path`` fixture, which has put ``root``
    first on JUPYTER_PATH; later :func:`jupyter_root` returns ``root``.
    """
    for spec in ALL_SPECS.values():
        write_kernelspec(root, spec)
    broken = root / "broken_functions.py"
    broken.write_text("def half(x):\n    return x / 2\n\ndef oops(:\n    pass\n")
    write_kernelspec(
        root,
        BridgeSpec("kbtest-broken-functions", (*LOCAL.flags, f"--BridgeKernel.functions={broken}")),
    )
    _ROOT[:] = [root]
    return root


def jupyter_root() -> Path:
    """The private Jupyter data folder of this test session (first on JUPYTER_PATH)."""
    if not _ROOT:
        raise RuntimeError(
            "the test kernelspecs are not installed: the jupyter_path fixture "
            "(tests/conftest.py) installs them"
        )
    return _ROOT[0]
