"""The ``kernel-bridge`` entry point: help, version, the lazy subcommand table."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import kernel_bridge.cli as cli_module
from kernel_bridge._version import __version__
from kernel_bridge.cli import SUBCOMMANDS, Subcommand

REPO = Path(__file__).resolve().parents[2]


def test_table_has_the_expected_commands() -> None:
    names = [s.name for s in SUBCOMMANDS]
    assert names == ["install", "list", "remove", "gc", "aca-emulator", "provenance"]
    assert {s.name: s.module for s in SUBCOMMANDS}["gc"] == "kernel_bridge.cli._gc"
    assert {s.name: s.module for s in SUBCOMMANDS}["aca-emulator"] == (
        "kernel_bridge.cli._aca_emulator"
    )


def test_help_lists_every_command(cli: Callable[..., Any]) -> None:
    result = cli("--help")
    assert result.code == 0
    for command in SUBCOMMANDS:
        assert command.name in result.out and command.help in result.out


def test_no_command_is_a_usage_error(cli: Callable[..., Any]) -> None:
    result = cli()
    assert result.code == 2
    assert "install" in result.err


def test_unknown_command_names_it_and_the_choices(cli: Callable[..., Any]) -> None:
    result = cli("instal")
    assert result.code == 2
    assert "'instal'" in result.err and "install" in result.err and "remove" in result.err


def test_subcommand_help(cli: Callable[..., Any]) -> None:
    result = cli("install", "--help")
    assert result.code == 0
    for flag in ("--executor", "--image", "--endpoint", "--volume", "--sys-prefix"):
        assert flag in result.out


def test_missing_module_is_a_clean_error(
    cli: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    table = (*SUBCOMMANDS, Subcommand("ghost", "kernel_bridge.cli._no_such_module", "x"))
    monkeypatch.setattr(cli_module, "SUBCOMMANDS", table)
    result = cli("ghost")
    assert result.code == 1
    assert "'ghost'" in result.err and "not available" in result.err
    assert "Traceback" not in result.err


def test_missing_optional_dependency_names_the_package(
    cli: Callable[..., Any], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / "kb_test_needs_dep.py").write_text(
        textwrap.dedent(
            """
            import kb_surely_missing_dependency  # noqa: F401

            def add_arguments(parser): pass
            def run(args): return 0
            """
        )
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    table = (*SUBCOMMANDS, Subcommand("needy", "kb_test_needs_dep", "x"))
    monkeypatch.setattr(cli_module, "SUBCOMMANDS", table)
    result = cli("needy")
    assert result.code == 1
    assert "kb_surely_missing_dependency" in result.err
    assert "Traceback" not in result.err


def test_subcommand_modules_get_their_own_parser(
    cli: Callable[..., Any], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / "kb_test_echo.py").write_text(
        textwrap.dedent(
            """
            def add_arguments(parser):
                parser.add_argument("--count", type=int, required=True)

            def run(args):
                print("count", args.count)
                return args.count
            """
        )
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    table = (*SUBCOMMANDS, Subcommand("echo", "kb_test_echo", "x"))
    monkeypatch.setattr(cli_module, "SUBCOMMANDS", table)
    result = cli("echo", "--count", "3")
    assert (result.code, result.out) == (3, "count 3\n")
    bad = cli("echo", "--count", "three")
    assert bad.code == 2 and "'three'" in bad.err and "kernel-bridge echo" in bad.err


def test_python_dash_m_and_version() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "kernel_bridge.cli", "--version"],
        capture_output=True, text=True, timeout=60, cwd=REPO,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == f"kernel-bridge {__version__}"
