"""A third-party executor plugs in with ``pip install``, with no edit to kernel_bridge.

tests/plugins/example_executor/ is a separate package (its own pyproject.toml) whose
entry point registers the ``example`` kind. It is built and installed by pip at test time
into a private folder put on PYTHONPATH (the shared venv stays as it was); then
``kernel-bridge install --executor example`` writes a spec, and a kernel started from it
through jupyter_client runs cells through the plug-in's executor.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from _support.kernel_client import run_cell, start_kernel

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = Path(__file__).resolve().parent / "example_executor"


@pytest.fixture(scope="module")
def plugin_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The example package installed by pip into a folder of its own."""
    source = tmp_path_factory.mktemp("example-src") / "example_executor"
    shutil.copytree(EXAMPLE, source)
    site = tmp_path_factory.mktemp("example-site")
    # offline: no index, no build isolation (hatchling comes with kernel_bridge's test extra)
    pip = [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    flags = ["--no-index", "--no-deps", "--no-build-isolation", "--target", str(site)]
    done = subprocess.run([*pip, *flags, str(source)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert list(site.glob("kb_example_executor-0.1.0.dist-info/entry_points.txt"))
    return site


@pytest.fixture
def with_plugin(plugin_site: Path) -> dict[str, str]:
    """An environment whose Python sees the installed plug-in."""
    paths = [str(plugin_site), *filter(None, [os.environ.get("PYTHONPATH")])]
    return {**os.environ, "PYTHONPATH": os.pathsep.join(paths)}


def _cli(env: dict[str, str], *argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "kernel_bridge.cli", *argv],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_install_writes_a_spec_whose_kernel_runs_cells_through_the_plugin(
    with_plugin: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    prefix = tmp_path / "prefix"
    listed = _cli(with_plugin, "install", "--help")
    assert listed.returncode == 0, listed.stderr
    assert "--executor example" in listed.stdout and "--greeting" in listed.stdout
    done = _cli(
        with_plugin,
        "install", "--executor", "example", "--greeting", "bonjour",
        "--name", "kbtest-example", "--prefix", str(prefix),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    spec_dir = prefix / "share" / "jupyter" / "kernels" / "kbtest-example"
    spec = json.loads((spec_dir / "kernel.json").read_text())
    assert spec["argv"][5:] == [
        "--BridgeKernel.executor=example",
        "--ExampleExecutor.greeting=bonjour",
    ]
    assert spec["display_name"] == "Python (kernel_bridge: example)"
    assert spec["metadata"] == {"kernel_bridge": {"executor": "example"}, "debugger": False}

    monkeypatch.setenv("JUPYTER_PATH", str(prefix / "share" / "jupyter"))
    km, kc = start_kernel("kbtest-example", env=with_plugin)
    try:
        run = run_cell(kc, "import os\nprint(os.environ['EXAMPLE_GREETING'], 6 * 7)")
        assert run.status == "ok", run.reply["content"]
        assert run.stream_text() == "bonjour 42\n"
        assert run_cell(kc, "x = 5").status == "ok"
        assert run_cell(kc, "print(x * 2)").stream_text() == "10\n"  # state is kept
    finally:
        kc.stop_channels()
        km.shutdown_kernel()


def test_without_the_package_the_kind_is_unknown_and_kernel_bridge_never_names_it(
    tmp_path: Path,
) -> None:
    done = _cli(dict(os.environ), "install", "--executor", "example", "--prefix", str(tmp_path))
    assert done.returncode == 2
    assert "unknown executor 'example'" in done.stderr
    assert "valid executors are: local, aca, docker" in done.stderr
    assert "Traceback" not in done.stderr
    sources = [p.read_text() for p in (REPO / "kernel_bridge").rglob("*.py")]
    assert not any("kb_example_executor" in text or "ExampleExecutor" in text for text in sources)


def test_a_kernel_on_a_broken_plugin_says_which_and_why_in_every_cell(tmp_path: Path) -> None:
    from _support.specs import BridgeSpec, jupyter_root, write_kernelspec

    site = tmp_path / "site"
    info = site / "kb_broken-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: kb_broken\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[kernel_bridge.executors]\nboom = kb_broken:plugin\n")
    (site / "kb_broken.py").write_text("raise ImportError('kb_broken needs libfoo')\n")
    path = {"PYTHONPATH": os.pathsep.join([str(site), str(REPO)])}
    spec = BridgeSpec("kbtest-broken-plugin", ("--BridgeKernel.executor=boom",), env=path)
    write_kernelspec(jupyter_root(), spec)
    km, kc = start_kernel(spec.name)
    try:
        for _ in range(2):
            run = run_cell(kc, "1 + 1")
            assert run.status == "error"
            text = run.reply["content"]["evalue"]
            assert "executor plug-in 'boom' (boom = kb_broken:plugin" in text, text
            assert "ImportError: kb_broken needs libfoo" in text
            assert "bug in kernel_bridge" not in text
        assert kc.kernel_info(reply=True, timeout=10)["content"]["status"] == "ok"
    finally:
        kc.stop_channels()
        km.shutdown_kernel()
