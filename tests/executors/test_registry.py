"""The executor registry: plug-ins found by entry point, broken ones named, never a traceback.

Each test puts a real distribution (a ``*.dist-info`` folder with ``entry_points.txt``,
as pip writes it) and its module on ``sys.path``; importlib.metadata finds them there
exactly as it finds installed packages.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from kernel_bridge.cli import main
from kernel_bridge.errors import ConfigurationError
from kernel_bridge.executors.registry import (
    broken_plugins,
    executor_class,
    executor_kinds,
    executor_plugin,
    reset_registry,
)

Installer = Callable[[str, str, str], None]


@pytest.fixture
def install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Installer]:
    """Return ``install(dist, entry_points_line, module_source)``; undone after the test."""

    def add(dist: str, entry_point: str, source: str) -> None:
        info = tmp_path / f"{dist}-1.0.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.0\n")
        (info / "entry_points.txt").write_text(f"[kernel_bridge.executors]\n{entry_point}\n")
        (tmp_path / f"{dist}.py").write_text(source)
        reset_registry()

    monkeypatch.syspath_prepend(str(tmp_path))
    yield add
    for name in [m for m in sys.modules if m.startswith("kbt_")]:
        del sys.modules[name]
    monkeypatch.undo()
    reset_registry()


PLUGIN = (
    "from kernel_bridge.executors import ExecutorPlugin, InstallOption\n"
    "plugin = ExecutorPlugin('{kind}', '{target}', options=[InstallOption('--colour', "
    "'a colour', trait='colour', choices=('red', 'blue'))])\n"
)


def test_the_built_ins_come_first_and_are_not_broken() -> None:
    assert executor_kinds()[0] == "local"
    assert {"local", "docker", "aca"} <= set(executor_kinds())
    assert broken_plugins() == []


def test_a_module_that_fails_to_import_is_named_with_its_reason(install: Installer) -> None:
    install("kbt_boom", "boom = kbt_boom:plugin", "raise RuntimeError('no config found')\n")
    assert "boom" not in executor_kinds()
    (broken,) = broken_plugins()
    assert broken.kind == "boom" and broken.entry_point == "boom = kbt_boom:plugin"
    assert broken.reason == "RuntimeError: no config found"
    with pytest.raises(ConfigurationError) as info:
        executor_plugin("boom")
    message = str(info.value)
    assert "executor plug-in 'boom' (boom = kbt_boom:plugin" in message
    assert "RuntimeError: no config found" in message
    assert "local" in executor_kinds()  # the others still work


def test_an_entry_point_that_names_no_plugin_is_refused(install: Installer) -> None:
    install("kbt_wrong", "wrong = kbt_wrong:plugin", "plugin = object()\n")
    with pytest.raises(ConfigurationError, match="not an ExecutorPlugin"):
        executor_plugin("wrong")


def test_the_kind_must_be_the_entry_points_name(install: Installer) -> None:
    source = PLUGIN.format(kind="other", target="kbt_named:X")
    install("kbt_named", "named = kbt_named:plugin", source)
    with pytest.raises(ConfigurationError, match="its kind is 'other'"):
        executor_plugin("named")


def test_two_packages_claiming_one_kind_are_both_refused(install: Installer) -> None:
    install("kbt_twin", "local = kbt_twin:plugin", PLUGIN.format(kind="local", target="x:Y"))
    with pytest.raises(ConfigurationError, match="two installed packages register this kind"):
        executor_plugin("local")


def test_a_class_that_cannot_be_imported_names_the_plugin_and_what_to_install(
    install: Installer,
) -> None:
    source = (
        "from kernel_bridge.executors import ExecutorPlugin\n"
        "plugin = ExecutorPlugin('ghost', 'kbt_missing_dep_xyz:Ghost', "
        "install_hint=\"pip install 'kb-ghost[all]'\")\n"
    )
    install("kbt_ghost", "ghost = kbt_ghost:plugin", source)
    with pytest.raises(ConfigurationError) as info:
        executor_class("ghost")
    assert "the ghost executor cannot be loaded" in str(info.value)
    assert "pip install 'kb-ghost[all]'" in str(info.value)


def test_a_class_that_is_not_a_configurable_executor_is_refused(install: Installer) -> None:
    source = PLUGIN.format(kind="plain", target="kbt_plain:Plain") + "class Plain:\n    pass\n"
    install("kbt_plain", "plain = kbt_plain:plugin", source)
    with pytest.raises(ConfigurationError, match="is not a configurable RemoteExecutor"):
        executor_class("plain")


def test_install_names_a_broken_plugin_instead_of_a_traceback(
    install: Installer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    install("kbt_boom", "boom = kbt_boom:plugin", "import kbt_not_there_either\n")
    code = main(["install", "--executor", "boom", "--prefix", str(tmp_path / "p")])
    err = capsys.readouterr().err
    assert code == 2
    assert "executor plug-in 'boom'" in err and "kbt_not_there_either" in err
    assert "Traceback" not in err
    assert main(["install", "--help"]) == 0
    assert "could not be loaded: boom (boom = kbt_boom:plugin)" in capsys.readouterr().out


def test_plugin_options_are_offered_checked_and_written(
    install: Installer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    install("kbt_paint", "paint = kbt_paint:plugin", PLUGIN.format(kind="paint", target="m:C"))
    prefix = tmp_path / "p"
    base = ["install", "--executor", "paint", "--prefix", str(prefix), "--name", "kb-paint"]
    assert main([*base, "--colour", "green"]) == 2
    assert "invalid choice: 'green'" in capsys.readouterr().err
    assert main([*base, "--colour", "red"]) == 0
    written = (prefix / "share/jupyter/kernels/kb-paint/kernel.json").read_text()
    assert '"--C.colour=red"' in written
    assert main(["install", "--executor", "local", "--colour", "red", "--prefix", str(prefix)]) == 2
    assert "--colour applies only to --executor paint" in capsys.readouterr().err


def test_a_plugin_option_named_like_installs_own_is_left_out_not_confused(
    install: Installer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = (
        "from kernel_bridge.executors import ExecutorPlugin, InstallOption\n"
        "plugin = ExecutorPlugin('clash', 'm:C', options=[InstallOption('--name', 'mine', "
        "trait='name'), InstallOption('--image', 'an image', trait='image')])\n"
    )
    install("kbt_clash", "clash = kbt_clash:plugin", source)
    prefix = str(tmp_path / "p")
    assert main(["install", "--name", "kb-plain", "--prefix", prefix]) == 0
    assert main(["install", "--help"]) == 0
    assert "left out because another option has that name: --name of clash" in (
        capsys.readouterr().out.replace("\n", " ")
    )
    # --image is shared with docker (same action and type): one option, either executor
    base = ["install", "--executor", "clash", "--name", "kb-clash", "--prefix", prefix]
    assert main([*base, "--image", "x:1"]) == 0
    written = (tmp_path / "p/share/jupyter/kernels/kb-clash/kernel.json").read_text()
    assert '"--C.image=x:1"' in written
