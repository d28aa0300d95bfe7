"""``kernel-bridge list`` and ``kernel-bridge remove``: only our specs, never others'."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

FOREIGN = {"argv": ["python", "-m", "ipykernel_launcher", "-f", "{connection_file}"],
           "display_name": "Someone else's", "language": "python"}  # fmt: skip


def plant_foreign(prefix: Path, name: str = "other-kernel") -> Path:
    spec_dir = prefix / "share" / "jupyter" / "kernels" / name
    spec_dir.mkdir(parents=True)
    (spec_dir / "kernel.json").write_text(json.dumps(FOREIGN))
    return spec_dir


def install_two(cli: Callable[..., Any], prefix: Path) -> None:
    assert cli("install", "--prefix", str(prefix)).code == 0
    result = cli(
        "install", "--executor", "docker", "--image", "img", "--name", "kb-dock",
        "--display-name", "Docker box", "--prefix", str(prefix),
    )  # fmt: skip
    assert result.code == 0, result.err


def listed(cli: Callable[..., Any]) -> dict[str, dict[str, str]]:
    result = cli("list", "--json")
    assert result.code == 0, result.err
    return {entry["name"]: entry for entry in json.loads(result.out)}


def test_list_shows_only_bridge_specs(cli: Callable[..., Any], prefix: Path) -> None:
    install_two(cli, prefix)
    plant_foreign(prefix)
    specs = listed(cli)
    kernels = prefix / "share" / "jupyter" / "kernels"
    assert specs["kb-dock"] == {
        "name": "kb-dock",
        "executor": "docker",
        "display_name": "Docker box",
        "path": str(kernels / "kb-dock"),
    }
    assert specs["kernel-bridge-local"]["executor"] == "local"
    assert "other-kernel" not in specs
    assert "python3" not in specs

    table = cli("list")
    assert table.code == 0
    lines = table.out.splitlines()
    assert lines[0].split()[:2] == ["NAME", "EXECUTOR"]
    row = next(line for line in lines if line.startswith("kb-dock "))
    assert "docker" in row and "Docker box" in row and str(kernels / "kb-dock") in row
    assert "other-kernel" not in table.out


def test_list_names_specs_whose_executor_is_not_installed(
    cli: Callable[..., Any], prefix: Path
) -> None:
    install_two(cli, prefix)
    spec_dir = prefix / "share" / "jupyter" / "kernels" / "kb-gone"
    spec_dir.mkdir()
    argv = ["python", "-m", "kernel_bridge", "-f", "{connection_file}"]
    gone = {"argv": [*argv, "--BridgeKernel.executor=podman"], "display_name": "Podman"}
    (spec_dir / "kernel.json").write_text(json.dumps(gone))
    table = cli("list")
    assert table.code == 0
    assert "kb-gone: no installed executor plug-in provides 'podman'" in table.out
    assert "kb-dock: no installed" not in table.out
    assert listed(cli)["kb-gone"]["executor"] == "podman"


def test_remove_our_spec(cli: Callable[..., Any], prefix: Path) -> None:
    install_two(cli, prefix)
    spec_dir = prefix / "share" / "jupyter" / "kernels" / "kb-dock"
    result = cli("remove", "KB-Dock")
    assert result.code == 0, result.err
    assert str(spec_dir) in result.out
    assert not spec_dir.exists()
    assert "kb-dock" not in listed(cli)
    assert "kernel-bridge-local" in listed(cli)


def test_remove_refuses_a_foreign_spec(cli: Callable[..., Any], prefix: Path) -> None:
    spec_dir = plant_foreign(prefix)
    result = cli("remove", "other-kernel")
    assert result.code == 1
    assert "'other-kernel'" in result.err and "not a kernel_bridge spec" in result.err
    assert "jupyter kernelspec remove" in result.err
    assert json.loads((spec_dir / "kernel.json").read_text()) == FOREIGN


def test_remove_missing_spec_exits_1(cli: Callable[..., Any], prefix: Path) -> None:
    result = cli("remove", "no-such-kernel")
    assert result.code == 1
    assert "'no-such-kernel'" in result.err
    assert "Traceback" not in result.err


def test_remove_needs_a_name(cli: Callable[..., Any], prefix: Path) -> None:
    result = cli("remove")
    assert result.code == 2
    assert "NAME" in result.err
