"""A copy of this checkout, for tests that install it the way a user would.

Installing from a copy keeps pip's in-tree build (and the wheel hook's ``build/``) out
of the working tree that other tests are reading.
"""

from __future__ import annotations

import shutil
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def copy_checkout(dest: Path) -> Path:
    """Copy the tracked shape of the checkout (no git data, caches, venvs or builds) to ``dest``."""
    shutil.copytree(
        REPO,
        dest,
        ignore=shutil.ignore_patterns(
            ".git",
            ".venv",
            "build",
            "dist",
            "*.egg-info",
            "__pycache__",
            ".*_cache",
            "quickstart-out.ipynb",
            "_work",
        ),
    )
    return dest
