"""The kernel application: which executor classes it registers, and from where; how its
session hands large messages to ZMQ.

Real kernels through jupyter_client. An executor chosen in a config file (not on the
command line) still gets its ``--Class.trait=value`` flags as typed trait values.
"""

from __future__ import annotations

import json
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


def _zmq_contexts(pid: int) -> int:
    """ZMQ contexts alive in a process: each runs one thread named ZMQbg/Reaper."""
    names = [(task / "comm").read_text().strip() for task in Path(f"/proc/{pid}/task").iterdir()]
    return names.count("ZMQbg/Reaper")


@pytest.mark.parametrize(
    ("flags", "new_contexts"),
    [
        ((), 0),
        # a configured threshold is kept: the 64 KiB messages then go without a copy, and
        # pyzmq starts its garbage collector (with a context of its own) to free them
        (("--Session.copy_threshold=65536",), 1),
    ],
    ids=["default", "configured"],
)
def test_large_stream_messages_are_copied_into_zmq_unless_configured(
    flags: tuple[str, ...], new_contexts: int
) -> None:
    spec = BridgeSpec(
        f"kbtest-local-copy-{new_contexts}", ("--BridgeKernel.executor=local", *flags)
    )
    write_kernelspec(jupyter_root(), spec)
    km, kc = start_kernel(spec.name)
    try:
        pid = km.provisioner.process.pid  # type: ignore[union-attr]
        before = _zmq_contexts(pid)  # ipykernel's and its heartbeat's
        run = run_cell(
            kc, "import sys\nfor _ in range(20000):\n    sys.stdout.write('x' * 99 + '\\n')\n"
        )
        assert run.status == "ok" and len(run.stream_text()) == 2_000_000
        # the content frame of the largest message is over jupyter_client's 64 KiB
        assert max(len(json.dumps(m["content"])) for m in run.of_type("stream")) > 2**16
        assert _zmq_contexts(pid) == before + new_contexts
    finally:
        kc.stop_channels()
        km.shutdown_kernel()
