"""Host-side file access in a directory that code in a sandbox can also change.

A Docker executor's ``work_dir`` is bind-mounted at ``/workspace`` and an emulated
session's data directory at ``/mnt/data``: code in the container can replace any entry
in them, at any moment, with a symbolic link to a host path. So the host never resolves
a name there and then uses it later. Every function here walks the name one component
at a time with directory file descriptors and ``O_NOFOLLOW``, refuses links and special
files at the moment it opens them, and writes by creating a new private file and
renaming it over the name (a rename replaces a link, it never follows it).

Called by the Docker executor's file transfer (``executors.docker._files``), by
``execute_code_blocks`` when it writes block files, and by the ACA emulator's file
routes. Blocking: call in a thread.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import shutil
import stat
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import IO, BinaryIO

from ..errors import ConfigurationError

__all__ = [
    "MAX_COMPONENT_BYTES",
    "MAX_PATH_BYTES",
    "check_name",
    "describe_name",
    "list_regular_files",
    "open_regular_file",
    "unlink_file",
    "write_file",
]

MAX_COMPONENT_BYTES = 255
"""Longest file name component Linux file systems accept (NAME_MAX)."""
MAX_PATH_BYTES = 4095
"""Longest relative path accepted (PATH_MAX minus the terminating NUL)."""

_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_DIRECTORY = getattr(os, "O_DIRECTORY", 0)
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)


def describe_name(name: object) -> str:
    """A short, printable rendering of a (possibly hostile) file name for messages."""
    text = repr(str(name))
    if len(text) > 80:
        text = f"{text[:60]}...{text[-12:]} ({len(str(name))} characters)"
    return text


def check_name(name: object, *, where: str) -> PurePosixPath:
    """Return ``name`` as a relative path inside ``where``; refuse what cannot be a file name.

    Refused, with a :class:`ConfigurationError` naming the file and the problem: non-strings,
    empty names, NUL characters, components longer than 255 bytes or paths longer than
    4095 bytes, and names that leave the directory (``..``, absolute paths).
    ``where`` names the directory in the message. Purely lexical: no file system access.
    """
    if not isinstance(name, str | os.PathLike):
        raise ConfigurationError(f"file names must be strings, not {type(name).__name__}")
    text = os.fspath(name)
    if isinstance(text, bytes):
        text = os.fsdecode(text)
    shown = describe_name(text)
    if "\x00" in text:
        raise ConfigurationError(
            f"the file name {shown} contains a NUL character, which no file name can hold; "
            "remove it"
        )
    if not text.strip("/"):
        raise ConfigurationError(f"the file name {shown} is empty; give a file inside {where}")
    if text.startswith("/"):
        raise ConfigurationError(
            f"{shown} is an absolute path outside {where}; use a name relative to it"
        )
    parts = [p for p in text.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise ConfigurationError(f"{shown} leaves {where} ('..'); use a name inside it")
    try:
        encoded = [p.encode("utf-8", "surrogateescape") for p in parts]
    except UnicodeEncodeError:
        raise ConfigurationError(f"the file name {shown} is not valid text; rename it") from None
    too_long = next((p for p in encoded if len(p) > MAX_COMPONENT_BYTES), None)
    if too_long is not None:
        raise ConfigurationError(
            f"the file name {shown} has a component of {len(too_long)} bytes; file systems "
            f"allow at most {MAX_COMPONENT_BYTES} bytes per name: use a shorter name"
        )
    total = sum(len(p) for p in encoded) + len(encoded) - 1
    if total > MAX_PATH_BYTES:
        raise ConfigurationError(
            f"the path {shown} is {total} bytes long; at most {MAX_PATH_BYTES} bytes are "
            "allowed: use a shorter path"
        )
    return PurePosixPath(*parts)


def _refusal(base: Path, relative: PurePosixPath, what: str) -> ConfigurationError:
    return ConfigurationError(
        f"{describe_name(relative)} in {str(base)!r} {what}; only regular files (and plain "
        "directories on the way to them) are transferred, never links or special files"
    )


@contextlib.contextmanager
def _parent_fd(base: Path, relative: PurePosixPath, *, create: bool) -> Iterator[int]:
    """Yield a descriptor of the directory holding ``relative``, walked without links."""
    fd = os.open(base, os.O_RDONLY | _DIRECTORY | _CLOEXEC)
    try:
        for part in relative.parts[:-1]:
            if create:
                with contextlib.suppress(FileExistsError):
                    os.mkdir(part, 0o755, dir_fd=fd)
            try:
                child = os.open(part, os.O_RDONLY | _DIRECTORY | _NOFOLLOW | _CLOEXEC, dir_fd=fd)
            except FileNotFoundError:
                raise ConfigurationError(
                    f"{describe_name(relative)} does not exist in {str(base)!r}"
                ) from None
            except OSError as exc:
                if exc.errno in (errno.ENOTDIR, errno.ELOOP):
                    raise _refusal(
                        base, relative, f"goes through {part!r}, which is not a directory"
                    ) from None
                raise
            os.close(fd)
            fd = child
        yield fd
    finally:
        os.close(fd)


def open_regular_file(base: Path, relative: PurePosixPath) -> tuple[BinaryIO, os.stat_result]:
    """Open ``base/relative`` for reading if, when opened, it is a regular file (no link).

    Returns the open file and its ``fstat``; the caller closes the file. FIFOs and devices
    are opened non-blocking so that they are refused instead of hanging the host.
    """
    with _parent_fd(base, relative, create=False) as parent:
        try:
            fd = os.open(
                relative.name,
                os.O_RDONLY | _NOFOLLOW | os.O_NONBLOCK | _CLOEXEC,
                dir_fd=parent,
            )
        except FileNotFoundError:
            raise ConfigurationError(
                f"{describe_name(relative)} does not exist in {str(base)!r}"
            ) from None
        except OSError as exc:
            if exc.errno == errno.ELOOP:  # O_NOFOLLOW met a symbolic link
                raise _refusal(base, relative, "is a symbolic link") from None
            raise ConfigurationError(
                f"cannot open {describe_name(relative)} in {str(base)!r}: {exc.strerror}"
            ) from None
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):
        os.close(fd)
        raise _refusal(base, relative, "is not a regular file")
    os.set_blocking(fd, True)
    return os.fdopen(fd, "rb"), info


def write_file(base: Path, relative: PurePosixPath, source: IO[bytes], mode: int = 0o644) -> Path:
    """Write ``source``'s bytes to ``base/relative`` without following any link.

    Missing directories are made (never through links); the data goes into a new file
    made with ``O_EXCL`` next to the target, which is then renamed over the name, so a
    link or file put there meanwhile is replaced, never written through. A directory at
    the name is refused. Returns ``base/relative``.
    """
    with _parent_fd(base, relative, create=True) as parent:
        temp = f".kb-partial-{secrets.token_hex(8)}"
        fd = os.open(
            temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW | _CLOEXEC, mode, dir_fd=parent
        )
        try:
            with os.fdopen(fd, "wb") as target:
                shutil.copyfileobj(source, target)
            try:
                os.rename(temp, relative.name, src_dir_fd=parent, dst_dir_fd=parent)
            except IsADirectoryError:
                raise _refusal(base, relative, "is a directory") from None
            except OSError as exc:
                raise ConfigurationError(
                    f"cannot write {describe_name(relative)} in {str(base)!r}: {exc.strerror}"
                ) from None
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temp, dir_fd=parent)
            raise
    return base / relative


def unlink_file(base: Path, relative: PurePosixPath) -> None:
    """Remove the entry ``base/relative`` (a link is removed, not its target); missing is fine."""
    with (
        contextlib.suppress(FileNotFoundError, ConfigurationError),
        _parent_fd(base, relative, create=False) as parent,
    ):
        os.unlink(relative.name, dir_fd=parent)


def list_regular_files(directory: Path) -> list[tuple[str, os.stat_result]]:
    """The regular files directly in ``directory`` (links and special files left out)."""
    found = []
    with os.scandir(directory) as entries:
        for entry in entries:
            if entry.is_file(follow_symlinks=False):
                found.append((entry.name, entry.stat(follow_symlinks=False)))
    return sorted(found)
