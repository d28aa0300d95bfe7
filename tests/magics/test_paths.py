"""Host-side checks of the names given to %bridge upload/download (real folders and links)."""

from __future__ import annotations

import os
from pathlib import Path, PurePosixPath

import pytest

from kernel_bridge.magics._parse import MagicUsageError
from kernel_bridge.magics._paths import check_target, expand_upload, notebook_relative


def test_names_inside_the_folder_are_accepted(tmp_path: Path) -> None:
    assert notebook_relative(tmp_path, "./a/b.csv") == PurePosixPath("a/b.csv")
    assert notebook_relative(tmp_path, str(tmp_path / "c.txt")) == PurePosixPath("c.txt")


@pytest.mark.parametrize("name", ["../x", "a/../../x", "/etc/passwd", "a/../b"])
def test_escapes_are_refused(tmp_path: Path, name: str) -> None:
    with pytest.raises(MagicUsageError, match="outside the notebook's folder"):
        notebook_relative(tmp_path, name)


def test_folders_are_walked_and_links_refused(tmp_path: Path) -> None:
    (tmp_path / "d" / "e").mkdir(parents=True)
    (tmp_path / "d" / "one.txt").write_text("1")
    (tmp_path / "d" / "e" / "two.txt").write_text("22")
    files = expand_upload(tmp_path, PurePosixPath("d"))
    assert [(str(f.relative), f.size) for f in files] == [("d/one.txt", 1), ("d/e/two.txt", 2)]
    os.symlink("/etc/passwd", tmp_path / "d" / "e" / "leak")
    with pytest.raises(MagicUsageError, match="'d/e/leak' is a symbolic link"):
        expand_upload(tmp_path, PurePosixPath("d"))


def test_a_link_on_the_way_is_refused_for_both_directions(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    folder = tmp_path / "nb"
    folder.mkdir()
    os.symlink(outside, folder / "via")
    with pytest.raises(MagicUsageError, match="'via' is a symbolic link"):
        expand_upload(folder, PurePosixPath("via/x"))
    with pytest.raises(MagicUsageError, match="'via' is a symbolic link"):
        check_target(folder, PurePosixPath("via/x"))
    assert not (outside / "x").exists()


def test_a_download_never_replaces_a_folder(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    with pytest.raises(MagicUsageError, match="not a regular file"):
        check_target(tmp_path, PurePosixPath("data"))
    assert check_target(tmp_path, PurePosixPath("new/file.txt")) == tmp_path / "new" / "file.txt"
