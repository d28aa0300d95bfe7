"""Temporary work dirs of SIGKILLed kernels are removed by ``kernel-bridge gc`` and by the
next executor's start-up check -- only ours, only those of dead kernels.

Kernels are real (jupyter_client, the test kernelspecs); each test gives them a private
TMPDIR so that only directories made here are looked at.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from _support.kernel_client import run_cell, start_kernel
from _support.specs import ACA_LOCAL, DOCKER

from kernel_bridge.executors.docker._engine import process_start_time


def _work_dirs(root: Path, prefix: str) -> list[Path]:
    return sorted(p for p in root.iterdir() if p.name.startswith(prefix))


def _kill(km: object, how: signal.Signals) -> int:
    pid = int(km.provisioner.process.pid)  # type: ignore[attr-defined]
    os.kill(pid, how)
    deadline = time.monotonic() + 10
    while km.is_alive() and time.monotonic() < deadline:  # type: ignore[attr-defined]
        time.sleep(0.05)
    assert not km.is_alive(), f"the kernel survived {how.name}"  # type: ignore[attr-defined]
    return pid


def _kernel_with_a_file(
    name: str, env: dict[str, str], prefix: str, root: Path, how: signal.Signals
) -> Path:
    """Start a kernel, have a cell write a file, kill the kernel with ``how``; its work dir."""
    km, kc = start_kernel(name, env=env)
    try:
        assert run_cell(kc, "open('users-file.txt', 'w').write('x')", timeout=120).status == "ok"
        (work,) = _work_dirs(root, prefix)
        pid = _kill(km, how)
        assert work.name.startswith(f"{prefix}p{pid}s"), work.name  # the owner is in the name
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)
    return work


@pytest.mark.parametrize("how", [signal.SIGKILL, signal.SIGTERM], ids=lambda s: s.name)
def test_gc_removes_the_work_dir_of_a_killed_docker_kernel_only(
    tmp_path: Path, how: signal.Signals
) -> None:
    root = tmp_path / "tmp"
    root.mkdir()
    env = {**os.environ, "TMPDIR": str(root)}
    work = _kernel_with_a_file(DOCKER.ready(), env, "kernel_bridge_docker_", root, how)
    assert (work / "users-file.txt").exists(), f"left behind by the {how.name}ed kernel"
    me, started = os.getpid(), process_start_time(os.getpid())
    live = root / f"kernel_bridge_docker_p{me}s{started}_live"  # a running kernel's
    reused = root / f"kb-aca-p{me}s1_reused"  # our pid, another start time: pid reuse
    lingering = root / f"kernel_bridge_docker_p{work.name.split('p')[1].split('s')[0]}sL_keep"
    foreign = root / "kernel_bridge_docker_not-our-pattern"
    for directory in (live, reused, lingering, foreign):
        directory.mkdir()
    link = root / "kb-aca-p1s1_link"
    link.symlink_to(live)

    dry = subprocess.run(
        [sys.executable, "-m", "kernel_bridge.cli", "gc", "--dry-run"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert dry.returncode == 0, dry.stderr
    assert f"would remove work dir {work}" in dry.stdout and work.exists()
    done = subprocess.run(
        [sys.executable, "-m", "kernel_bridge.cli", "gc"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert f"removed work dir {work}" in done.stdout
    assert not work.exists() and not reused.exists()
    assert live.is_dir() and lingering.is_dir() and foreign.is_dir() and link.is_symlink()


def test_the_next_kernel_removes_work_dirs_of_dead_kernels_at_start(tmp_path: Path) -> None:
    root = tmp_path / "tmp"
    root.mkdir()
    env = {**os.environ, "TMPDIR": str(root), **ACA_LOCAL.env}
    aca_dir = _kernel_with_a_file(ACA_LOCAL.ready(), env, "kb-aca-", root, signal.SIGKILL)
    assert aca_dir.exists(), "left behind by the SIGKILLed kernel"
    km, kc = start_kernel(DOCKER.ready(), env=env)
    try:
        assert run_cell(kc, "1 + 1", timeout=120).status == "ok"
        deadline = time.monotonic() + 30
        while aca_dir.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not aca_dir.exists(), "the start-up check did not remove the dead kernel's dir"
        assert len(_work_dirs(root, "kernel_bridge_docker_")) == 1  # the live kernel's own
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)
