"""``kernel-bridge install --mount-notebook-dir``: docker only, written as the trait."""

from __future__ import annotations

from pathlib import Path

import pytest

from kernel_bridge.errors import ConfigurationError
from kernel_bridge.kernelspecs import SpecOptions, kernel_argv, validate_options


def test_the_flag_becomes_the_docker_trait() -> None:
    mounted = {"image": "img", "mount_notebook_dir": True}
    options = validate_options(SpecOptions(executor="docker", executor_options=mounted))
    assert "--DockerCommandLineCodeExecutor.mount_notebook_dir=True" in kernel_argv(options)
    plain = validate_options(SpecOptions(executor="docker", executor_options={"image": "img"}))
    assert not any("mount_notebook_dir" in a for a in kernel_argv(plain))


def test_the_flag_is_refused_for_other_executors(tmp_path: Path) -> None:
    with pytest.raises(
        ConfigurationError, match="--mount-notebook-dir applies only to --executor docker"
    ):
        validate_options(
            SpecOptions(executor="local", executor_options={"mount_notebook_dir": True})
        )


def test_the_cli_writes_it(tmp_path: Path) -> None:
    import json

    from kernel_bridge.cli import main

    code = main([
        "install", "--executor", "docker", "--image", "img", "--mount-notebook-dir",
        "--name", "kb-mounted", "--prefix", str(tmp_path),
    ])  # fmt: skip
    assert code == 0
    spec = json.loads((tmp_path / "share/jupyter/kernels/kb-mounted/kernel.json").read_text())
    assert "--DockerCommandLineCodeExecutor.mount_notebook_dir=True" in spec["argv"]
