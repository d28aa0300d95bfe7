"""Fixtures for the CLI tests: run ``kernel-bridge`` in-process against private Jupyter dirs."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from kernel_bridge.cli import main


@dataclass
class Outcome:
    """What one ``kernel-bridge`` run returned and printed."""

    code: int
    out: str
    err: str


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]) -> Callable[..., Outcome]:
    """Return a function running ``kernel-bridge ARGV...`` in this process."""

    def run(*argv: str) -> Outcome:
        capsys.readouterr()
        code = main(list(argv))
        captured = capsys.readouterr()
        return Outcome(code, captured.out, captured.err)

    return run


@pytest.fixture
def prefix(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private install prefix that Jupyter searches; user data dir moved under tmp too."""
    root = tmp_path / "prefix"
    monkeypatch.setenv("JUPYTER_PATH", str(root / "share" / "jupyter"))
    monkeypatch.setenv("JUPYTER_DATA_DIR", str(tmp_path / "userdata"))
    return root
