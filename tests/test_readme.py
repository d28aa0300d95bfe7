"""README.md's main command really works on a fresh environment.

The command is read from README.md itself and run in a new virtual environment, in a
copy of this checkout, exactly as a user would paste it.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import venv
from pathlib import Path

import pytest
from _support.checkout import copy_checkout

REPO = Path(__file__).resolve().parents[1]


def _readme_commands() -> list[str]:
    text = (REPO / "README.md").read_text()
    section = text.split("## The two commands", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```bash\n(.+?)\n```", section, flags=re.S)


def test_readme_has_the_two_commands_and_ci_runs_the_test_one() -> None:
    commands = _readme_commands()
    assert len(commands) == 2
    assert "jupyter execute" in commands[0] or "papermill" in commands[0]
    assert commands[1].strip() in (REPO / ".ci" / "run").read_text()


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_readme_main_command_runs_a_notebook_in_a_fresh_venv(tmp_path: Path) -> None:
    checkout = copy_checkout(tmp_path / "checkout")
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True).create(env_dir)
    env = {
        **{
            k: v
            for k, v in os.environ.items()
            if k not in ("PYTHONPATH", "JUPYTER_PATH", "VIRTUAL_ENV")
        },
        "PATH": f"{env_dir / 'bin'}{os.pathsep}{os.environ['PATH']}",
        "VIRTUAL_ENV": str(env_dir),
        "HOME": str(tmp_path / "home"),
        "PIP_DISABLE_PIP_VERSION_CHECK": "1",
    }
    proc = subprocess.run(
        ["bash", "-c", _readme_commands()[0]],
        cwd=checkout,
        env=env,
        capture_output=True,
        text=True,
        timeout=840,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    out = checkout / "notebooks" / "quickstart-out.ipynb"
    assert out.exists()
    text = out.read_text()
    assert "BRIDGED!" in text and "ZeroDivisionError" in text
    assert (
        env_dir / "share" / "jupyter" / "kernels" / "kernel-bridge-demo" / "kernel.json"
    ).exists()
    assert sys.prefix != str(env_dir)
