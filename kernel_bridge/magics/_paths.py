"""Names in the notebook's folder, checked on the host before any file is touched.

The notebook's folder is the kernel's working directory. A name given to ``%bridge
upload``/``download`` must stay inside it: absolute names outside it and ``..`` are
refused, and so is any symbolic link on the way (a link could point anywhere on this
host). Folders are walked without following links.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from ._parse import MagicUsageError

__all__ = ["LocalFile", "check_target", "expand_upload", "notebook_relative"]


@dataclass(frozen=True)
class LocalFile:
    """A regular file of the notebook's folder, by its name relative to it."""

    relative: PurePosixPath
    size: int


def notebook_relative(base: Path, name: str) -> PurePosixPath:
    """Return ``name`` relative to the notebook's folder ``base``; refuse escapes."""
    outside = MagicUsageError(
        f"{name!r} is outside the notebook's folder {str(base)!r}: %bridge upload/download "
        "take names inside it (no '..', no absolute paths elsewhere)"
    )
    if not name or "\x00" in name:
        raise MagicUsageError(f"{name!r} is not a file name")
    path = PurePosixPath(name)
    if path.is_absolute():
        try:
            path = PurePosixPath(os.path.normpath(name)).relative_to(base)
        except ValueError:
            raise outside from None
    parts = [part for part in path.parts if part not in ("", ".")]
    if ".." in parts:
        raise outside
    if not parts:
        raise MagicUsageError(
            f"{name!r} is the notebook's folder itself; name the files or subfolders to copy"
        )
    return PurePosixPath(*parts)


def _walk_checked(
    base: Path, relative: PurePosixPath, *, must_exist: bool
) -> os.stat_result | None:
    """lstat each component of ``relative`` under ``base``; refuse links and non-folders."""
    current = base
    last = len(relative.parts) - 1
    for index, part in enumerate(relative.parts):
        current = current / part
        try:
            info = os.lstat(current)
        except FileNotFoundError:
            if must_exist:
                raise MagicUsageError(
                    f"{str(relative)!r} does not exist in the notebook's folder {str(base)!r}"
                ) from None
            return None
        if stat.S_ISLNK(info.st_mode):
            shown = PurePosixPath(*relative.parts[: index + 1])
            raise MagicUsageError(
                f"{str(shown)!r} is a symbolic link; kernel_bridge does not follow links in the "
                "notebook's folder. Copy the file itself there instead."
            )
        if index < last and not stat.S_ISDIR(info.st_mode):
            raise MagicUsageError(f"{str(relative)!r}: {part!r} is not a folder")
        if index == last:
            return info
    return None


def expand_upload(base: Path, relative: PurePosixPath) -> list[LocalFile]:
    """The regular files named by ``relative`` (itself, or everything under a folder)."""
    info = _walk_checked(base, relative, must_exist=True)
    assert info is not None
    if stat.S_ISREG(info.st_mode):
        return [LocalFile(relative, info.st_size)]
    if not stat.S_ISDIR(info.st_mode):
        raise MagicUsageError(f"{str(relative)!r} is neither a regular file nor a folder")
    files: list[LocalFile] = []
    top = base / relative
    for folder, dirs, names in os.walk(top, followlinks=False):
        dirs.sort()
        for entry in [*dirs, *sorted(names)]:
            full = Path(folder) / entry
            entry_info = os.lstat(full)
            inner = PurePosixPath(full.relative_to(base).as_posix())
            if stat.S_ISLNK(entry_info.st_mode):
                raise MagicUsageError(
                    f"{str(inner)!r} is a symbolic link; kernel_bridge does not follow links in "
                    "the notebook's folder. Nothing was copied."
                )
            if stat.S_ISREG(entry_info.st_mode):
                files.append(LocalFile(inner, entry_info.st_size))
    return files


def check_target(base: Path, relative: PurePosixPath) -> Path:
    """Check that a download may write ``base/relative``; return that path.

    Every existing component must be a real folder (no link), and the file itself, when
    it exists, a regular file (it is replaced).
    """
    info = _walk_checked(base, relative, must_exist=False)
    if info is not None and not stat.S_ISREG(info.st_mode):
        raise MagicUsageError(
            f"{str(relative)!r} exists in the notebook's folder and is not a regular file; "
            "move it away or download to another name"
        )
    return base / relative
