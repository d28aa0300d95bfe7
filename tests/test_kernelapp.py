"""The kernel application: which executor classes it registers, and from where.

Real kernels through jupyter_client. An executor chosen in a config file (not on the
command line) still gets its ``--Class.trait=value`` flags as typed trait values.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from _support.environments import MINIMAL_IMAGE, require_docker
from _support.kernel_client import run_cell, start_kernel
from _support.specs import BridgeSpec, jupyter_root, write_kernelspec

from kernel_bridge.kernelapp import BridgeKernelApp


@pytest.mark.docker
def test_an_executor_chosen_in_a_config_file_gets_typed_options(tmp_path: Path) -> None:
    require_docker()
    config = tmp_path / "kernel_bridge_config.py"
    config.write_text(
        "c.BridgeKernel.executor = 'docker'\n"
        f"c.DockerCommandLineCodeExecutor.image = {MINIMAL_IMAGE!r}\n"
    )
    # the command line names no executor: only the config file says docker
    flags = (
        f"--config={config}",
        "--DockerCommandLineCodeExecutor.pids_limit=77",
        "--DockerCommandLineCodeExecutor.environment=KB_FROM_FLAG=typed",
    )
    spec = BridgeSpec("kbtest-docker-config-file", flags, needs=("docker",))
    write_kernelspec(jupyter_root(), spec)
    km, kc = start_kernel(spec.name)
    try:
        run = run_cell(
            kc,
            "import os\n"
            "print(open('/.dockerenv').read() == '', os.environ['KB_FROM_FLAG'])\n"
            "limits = ('/sys/fs/cgroup/pids.max', '/sys/fs/cgroup/pids/pids.max')\n"
            "print(open(next(p for p in limits if os.path.exists(p))).read().strip())\n",
            timeout=120,
        )
        assert run.status == "ok", run.reply["content"]
        assert run.stream_text() == "True typed\n77\n"
    finally:
        kc.stop_channels()
        km.shutdown_kernel()


def test_the_config_files_executor_class_is_registered(tmp_path: Path) -> None:
    """``load_config_file`` registers the class of the executor a config file chose."""
    (tmp_path / "kernel_bridge_config.py").write_text("c.BridgeKernel.executor = 'aca'\n")
    app = BridgeKernelApp()
    app.register_executor_classes([])
    assert "ACADynamicSessionsCodeExecutor" not in {c.__name__ for c in app.classes}
    app.config_file_paths = [str(tmp_path)]
    app.load_config_file(suppress_errors=False)
    assert app.config["BridgeKernel"]["executor"] == "aca"
    assert "ACADynamicSessionsCodeExecutor" in {c.__name__ for c in app.classes}


def test_help_all_lists_every_executor_plugins_options() -> None:
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-m", "kernel_bridge", "--help-all"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    for option in (
        "--LocalExecutor.python",
        "--DockerCommandLineCodeExecutor.pids_limit",
        "--ACADynamicSessionsCodeExecutor.pool_management_endpoint",
    ):
        assert option in done.stdout, option
