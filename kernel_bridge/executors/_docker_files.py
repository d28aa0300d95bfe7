"""Moving files between the host's work_dir and a container's /workspace (tar archives).

Names are checked on both sides: relative names (or absolute ones inside the directory)
that stay inside it are accepted, anything that escapes (``..``, other absolute paths)
raises :class:`~kernel_bridge.errors.ConfigurationError`. Blocking: call in a thread.
"""

from __future__ import annotations

import io
import json
import posixpath
import tarfile
from pathlib import Path, PurePosixPath
from typing import Any

from ..errors import ConfigurationError, ExecutorError

__all__ = [
    "CONTAINER_WORKSPACE",
    "container_relative",
    "download_file",
    "host_relative",
    "list_files",
    "upload_file",
]

CONTAINER_WORKSPACE = "/workspace"

_LIST_CODE = (
    "import os,json\n"
    "out=[]\n"
    "for d,ds,fs in os.walk('.'):\n"
    "    ds[:]=sorted(x for x in ds if not x.startswith('.'))\n"
    "    out+=[os.path.normpath(os.path.join(d,f)) for f in fs]\n"
    "print(json.dumps(sorted(out)))\n"
)


def host_relative(work_dir: Path, name: Path | str) -> PurePosixPath:
    """Return ``name`` relative to ``work_dir``; refuse names that escape it."""
    base = work_dir.resolve()
    path = (base / name).resolve()
    if not path.is_relative_to(base) or path == base:
        raise ConfigurationError(
            f"{str(name)!r} is outside the working directory {str(base)!r}; "
            "use a file name inside it"
        )
    return PurePosixPath(path.relative_to(base).as_posix())


def container_relative(name: Path | str) -> PurePosixPath:
    """Return ``name`` relative to the container's /workspace; refuse names that escape it."""
    text = str(name).replace("\\", "/")
    if text.startswith("/"):
        full = posixpath.normpath(text)
    else:
        full = posixpath.normpath(posixpath.join(CONTAINER_WORKSPACE, text))
    if not full.startswith(CONTAINER_WORKSPACE + "/"):
        raise ConfigurationError(
            f"{str(name)!r} is outside the container's working directory {CONTAINER_WORKSPACE}; "
            "use a file name inside it"
        )
    return PurePosixPath(full[len(CONTAINER_WORKSPACE) + 1 :])


def upload_file(client: Any, container_id: str, work_dir: Path, name: Path | str) -> None:
    """Copy ``work_dir/name`` into the container's /workspace under the same relative name."""
    relative = host_relative(work_dir, name)
    source = work_dir.resolve() / relative
    if not source.is_file():
        raise ConfigurationError(f"{str(name)!r} is not a file in {work_dir}")
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        parents = list(relative.parents)[:-1]  # without "."
        for parent in reversed(parents):
            info = tarfile.TarInfo(str(parent))
            info.type = tarfile.DIRTYPE
            info.mode = 0o755
            tar.addfile(info)
        tar.add(str(source), arcname=str(relative), recursive=False)
    if not client.api.put_archive(container_id, CONTAINER_WORKSPACE, buffer.getvalue()):
        raise ExecutorError(f"the Docker engine refused to copy {str(name)!r} into the container")


def download_file(client: Any, container_id: str, work_dir: Path, name: Path | str) -> Path:
    """Copy a file of the container's /workspace into ``work_dir``; return the host path."""
    from docker.errors import NotFound

    relative = container_relative(name)
    target = work_dir.resolve() / relative
    host_relative(work_dir, str(relative))  # the same name must stay inside work_dir too
    try:
        stream, _stat = client.api.get_archive(container_id, f"{CONTAINER_WORKSPACE}/{relative}")
    except NotFound:
        raise ConfigurationError(
            f"{str(name)!r} does not exist in the container's {CONTAINER_WORKSPACE}"
        ) from None
    data = b"".join(stream)
    with tarfile.open(fileobj=io.BytesIO(data), mode="r") as tar:
        member = next((m for m in tar.getmembers() if m.isfile()), None)
        if member is None:
            raise ConfigurationError(f"{str(name)!r} is not a regular file in the container")
        extracted = tar.extractfile(member)
        assert extracted is not None
        content = extracted.read()
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(content)
    return target


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
