"""Moving files between the host's work_dir and a container's /workspace (tar archives).

Names are checked on both sides: relative names (or absolute ones inside the directory)
that stay inside it are accepted; anything that escapes (``..``, other absolute paths)
or cannot be a file name (NUL, over-long names) raises
:class:`~kernel_bridge.errors.ConfigurationError` naming the file. The host side never
follows a link in ``work_dir``, which the container can change at any moment (see
``_host_files``). Blocking: call in a thread.
"""

from __future__ import annotations

import io
import json
import os
import posixpath
import tarfile
import tempfile
from pathlib import Path, PurePosixPath
from typing import IO, Any

from ...errors import ConfigurationError, ExecutorError
from .._host_files import check_name, describe_name, open_regular_file, write_file

__all__ = [
    "CONTAINER_WORKSPACE",
    "container_relative",
    "download_file",
    "host_relative",
    "list_files",
    "upload_file",
]

CONTAINER_WORKSPACE = "/workspace"

_SPOOL_BYTES = 16 * 1024 * 1024  # larger downloads spill to a private temporary file

_LIST_CODE = (
    "import os,json\n"
    "out=[]\n"
    "for d,ds,fs in os.walk('.'):\n"
    "    ds[:]=sorted(x for x in ds if not x.startswith('.'))\n"
    "    out+=[os.path.normpath(os.path.join(d,f)) for f in fs]\n"
    "print(json.dumps(sorted(out)))\n"
)


def host_relative(work_dir: Path, name: Path | str) -> PurePosixPath:
    """Return ``name`` relative to ``work_dir``; refuse names that escape it or are no names.

    Lexical only (nothing in ``work_dir`` is resolved: the container can change it): an
    absolute name is accepted when it lies under ``work_dir`` as written.
    """
    text = os.fspath(name) if isinstance(name, str | os.PathLike) else name
    if isinstance(text, str) and text.startswith("/"):
        base = os.path.abspath(work_dir)
        full = posixpath.normpath(text)
        if not full.startswith(base.rstrip("/") + "/"):
            raise ConfigurationError(
                f"{describe_name(text)} is outside the working directory {base!r}; "
                "use a file name inside it"
            )
        text = full[len(base.rstrip("/")) + 1 :]
    return check_name(text, where=f"the working directory {str(work_dir)!r}")


def container_relative(name: Path | str) -> PurePosixPath:
    """Return ``name`` relative to the container's /workspace; refuse names that escape it."""
    text = os.fspath(name) if isinstance(name, str | os.PathLike) else name
    if isinstance(text, str):
        text = text.replace("\\", "/")
        if text.startswith("/"):
            full = posixpath.normpath(text)
            if not full.startswith(CONTAINER_WORKSPACE + "/"):
                raise ConfigurationError(
                    f"{describe_name(text)} is outside the container's working directory "
                    f"{CONTAINER_WORKSPACE}; use a file name inside it"
                )
            text = full[len(CONTAINER_WORKSPACE) + 1 :]
    return check_name(text, where=f"the container's {CONTAINER_WORKSPACE}")


def upload_file(
    client: Any,
    container_id: str,
    work_dir: Path,
    name: Path | str,
    owner: tuple[int, int] | None = None,
) -> None:
    """Copy ``work_dir/name`` into the container's /workspace under the same relative name.

    The host file is opened without following links (a link or special file is refused)
    and sent from that open file. ``owner`` (uid, gid) owns what lands in the container,
    so the code's (non-root) user can change it.
    """
    from docker.errors import APIError

    relative = host_relative(work_dir, name)
    uid, gid = owner or (0, 0)
    source, info = open_regular_file(Path(work_dir), relative)
    buffer = io.BytesIO()
    with source, tarfile.open(fileobj=buffer, mode="w") as tar:
        parents = list(relative.parents)[:-1]  # without "."
        for parent in reversed(parents):
            entry = tarfile.TarInfo(str(parent))
            entry.type = tarfile.DIRTYPE
            entry.mode = 0o755
            entry.uid, entry.gid = uid, gid
            tar.addfile(entry)
        entry = tarfile.TarInfo(str(relative))
        entry.size = info.st_size
        entry.mode = info.st_mode & 0o777
        entry.mtime = int(info.st_mtime)
        entry.uid, entry.gid = uid, gid
        tar.addfile(entry, source)
    try:
        accepted = client.api.put_archive(container_id, CONTAINER_WORKSPACE, buffer.getvalue())
    except APIError as exc:
        raise ExecutorError(
            f"the Docker engine could not copy {describe_name(name)} into the container: "
            f"{getattr(exc, 'explanation', None) or exc}"
        ) from None
    if not accepted:
        raise ExecutorError(
            f"the Docker engine refused to copy {describe_name(name)} into the container"
        )


def download_file(client: Any, container_id: str, work_dir: Path, name: Path | str) -> Path:
    """Copy a regular file of the container's /workspace into ``work_dir``; return the host path.

    The archive is spooled into a private temporary file (never into ``work_dir``); only
    a regular-file member is accepted (links, devices and directories are refused); the
    bytes are then written by :func:`~._host_files.write_file`, which follows no link the
    container may have put in ``work_dir`` meanwhile.
    """
    from docker.errors import APIError, NotFound

    relative = container_relative(name)
    host_relative(work_dir, str(relative))  # the same name must be valid on the host too
    try:
        stream, _stat = client.api.get_archive(container_id, f"{CONTAINER_WORKSPACE}/{relative}")
    except NotFound:
        raise ConfigurationError(
            f"{describe_name(name)} does not exist in the container's {CONTAINER_WORKSPACE}"
        ) from None
    except APIError as exc:
        raise ExecutorError(
            f"the Docker engine could not read {describe_name(name)} from the container: "
            f"{getattr(exc, 'explanation', None) or exc}"
        ) from None
    with tempfile.SpooledTemporaryFile(max_size=_SPOOL_BYTES) as spool:
        for chunk in stream:
            spool.write(chunk)
        spool.seek(0)
        try:
            return _extract(spool, work_dir, relative, name)
        except tarfile.TarError as exc:
            raise ExecutorError(
                f"{describe_name(name)} could not be read from the container ({exc}); it was "
                "probably changed while it was copied: try again once it is complete"
            ) from None


def _extract(spool: IO[bytes], work_dir: Path, relative: PurePosixPath, name: object) -> Path:
    """Write the archive's single regular-file member to ``work_dir/relative``."""
    with tarfile.open(fileobj=spool, mode="r:") as tar:
        member = tar.next()
        if member is None or not member.isreg():
            kind = "missing" if member is None else _member_kind(member)
            raise ConfigurationError(
                f"{describe_name(name)} in the container's {CONTAINER_WORKSPACE} is {kind}; "
                "only regular files are downloaded, never links or special files"
            )
        extracted = tar.extractfile(member)
        assert extracted is not None
        return write_file(Path(work_dir), relative, extracted)


def _member_kind(member: tarfile.TarInfo) -> str:
    if member.issym():
        return f"a symbolic link (to {member.linkname!r})"
    if member.islnk():
        return "a hard link"
    if member.isdir():
        return "a directory"
    return "a special file"


def list_files(client: Any, container_id: str) -> list[str]:
    """List the files under the container's /workspace (relative names, hidden dirs skipped)."""
    result = client.api.exec_create(
        container_id,
        ["python3", "-c", _LIST_CODE],
        workdir=CONTAINER_WORKSPACE,
        stdout=True,
        stderr=True,
    )
    output = client.api.exec_start(result["Id"], demux=True)
    stdout, stderr = output if isinstance(output, tuple) else (output, b"")
    try:
        names = json.loads((stdout or b"").decode("utf-8", "replace").strip().splitlines()[-1])
    except (ValueError, IndexError):
        message = (stderr or b"").decode("utf-8", "replace").strip()[-300:]
        raise ExecutorError(
            f"could not list the container's files: {message or 'no output'}"
        ) from None
    return [str(n) for n in names]
