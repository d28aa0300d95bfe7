"""``%bridge upload`` / ``%bridge download``: files between the notebook's folder and the session.

Names are checked on the host first (:mod:`._paths`), then each executor's own file
API moves the bytes: Docker's tar copy into the container (``executors.docker._files``), ACA's
``upload_files``/``download_files`` through a private staging folder, and, for a local
runtime in another folder, a plain copy. When the session's working directory *is* the
notebook's folder (the local default, Docker with ``mount_notebook_dir``) nothing needs
copying and the magic says so.
"""

from __future__ import annotations

import asyncio
import shutil
import uuid
from collections.abc import AsyncIterator
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from ..events import Display, OutputEvent, Stream
from ..executors.autogen_compat import WorkspaceFiles
from ..executors.base import RemoteExecutor
from ._host import MagicHost
from ._info import session_workdir
from ._parse import MagicUsageError
from ._paths import LocalFile, check_target, expand_upload, notebook_relative

if TYPE_CHECKING:
    from ..executors.docker import DockerCommandLineCodeExecutor

__all__ = ["PROGRESS_MIN_BYTES", "download", "human_size", "upload"]

PROGRESS_MIN_BYTES = 1 << 20
"""Transfers at least this large (or of 5 files or more) show a progress bar."""
_PROGRESS_MIN_FILES = 5
_BAR_WIDTH = 30


def human_size(size: int) -> str:
    """Format a byte count for people: ``12 B``, ``1.5 KiB``, ``3.0 MiB``."""
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{int(value)} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} B"


class _Progress:
    """A text progress bar shown once and updated in place (display_id)."""

    def __init__(self, verb: str, total_files: int, total_bytes: int | None) -> None:
        self.verb = verb
        self.total_files = total_files
        self.total_bytes = total_bytes
        self.display_id = f"kernel-bridge-transfer-{uuid.uuid4().hex}"
        self.files = 0
        self.bytes = 0
        self.shown = total_files >= _PROGRESS_MIN_FILES or (total_bytes or 0) >= PROGRESS_MIN_BYTES

    def _bundle(self) -> dict[str, Any]:
        fraction = self.files / self.total_files if self.total_files else 1.0
        if self.total_bytes:
            fraction = self.bytes / self.total_bytes
        filled = round(fraction * _BAR_WIDTH)
        bar = "#" * filled + "." * (_BAR_WIDTH - filled)
        text = (
            f"{self.verb} [{bar}] {self.files}/{self.total_files} files, "
            f"{human_size(self.bytes)}"
            + (f" of {human_size(self.total_bytes)}" if self.total_bytes else "")
        )
        return {"text/plain": text}

    def start(self) -> list[OutputEvent]:
        """The bar's first display (none for a small transfer)."""
        if not self.shown:
            return []
        return [Display(self._bundle(), display_id=self.display_id)]

    def advance(self, size: int) -> list[OutputEvent]:
        """Count one more file of ``size`` bytes; the bar's update, if it is shown."""
        self.files += 1
        self.bytes += size
        if not self.shown:
            return []
        return [Display(self._bundle(), display_id=self.display_id, update=True)]


def _shared_folder(executor: RemoteExecutor, notebook_dir: Path) -> bool:
    """True when the session's working directory is the notebook's folder itself."""
    if executor.kind == "docker":
        return bool(getattr(executor, "mount_notebook_dir", False))
    if executor.kind == "local":
        work_dir = getattr(executor, "work_dir", None)
        return work_dir is not None and Path(work_dir).resolve() == notebook_dir
    return False


def _docker(executor: RemoteExecutor) -> DockerCommandLineCodeExecutor:
    """The Docker executor behind ``executor`` (its kind says it is one)."""
    from ..executors.docker import DockerCommandLineCodeExecutor

    assert isinstance(executor, DockerCommandLineCodeExecutor)
    return executor


def _files(executor: RemoteExecutor) -> WorkspaceFiles:
    """The executor's file API (AutoGen-compatible layer); a usage error without one."""
    if not isinstance(executor, WorkspaceFiles):
        raise MagicUsageError(f"the {executor.kind} executor cannot move files")
    return executor


def _aca_name(relative: PurePosixPath) -> str:
    return relative.name


async def upload(host: MagicHost, names: list[str]) -> AsyncIterator[OutputEvent]:
    """Copy files and folders of the notebook's folder into the session's working directory."""
    base = host.notebook_dir
    files: list[LocalFile] = []
    for name in names:
        files += expand_upload(base, notebook_relative(base, name))
    if not files:
        yield Stream("stdout", "nothing to upload: the folders named are empty\n")
        return
    executor = host.bridge_session.get_executor()
    workdir = session_workdir(executor, executor.kind)
    total = sum(f.size for f in files)
    if _shared_folder(executor, base):
        yield Stream(
            "stdout",
            f"nothing to copy: the session works in the notebook's folder itself; "
            f"{len(files)} file(s), {human_size(total)} already there\n",
        )
        return
    if executor.kind == "aca":
        seen: dict[str, PurePosixPath] = {}
        for f in files:
            other = seen.setdefault(_aca_name(f.relative), f.relative)
            if other != f.relative:
                raise MagicUsageError(
                    f"{str(f.relative)!r} and {str(other)!r} would both be {f.relative.name!r}: "
                    "the ACA session keeps files flat in /mnt/data; upload them separately "
                    "under different names"
                )
    progress = _Progress("uploading", len(files), total)
    for event in progress.start():
        yield event
    lines: list[str] = []
    for f in files:
        source = base / f.relative
        if executor.kind == "docker":
            await _docker(executor).upload_from(base, [str(f.relative)])
            remote = f"{workdir}/{f.relative}"
        elif executor.kind == "aca":
            remote_name = _aca_name(f.relative)
            await _aca_upload(executor, source, remote_name)
            remote = f"/mnt/data/{remote_name}"
        else:
            work_dir = Path(getattr(executor, "work_dir"))  # noqa: B009
            target = check_target(work_dir, f.relative)
            await asyncio.to_thread(_copy, source, target)
            await _files(executor).upload_files([str(f.relative)])
            remote = str(target)
        lines.append(f"uploaded {f.relative} ({human_size(f.size)}) -> {remote}\n")
        for event in progress.advance(f.size):
            yield event
    lines.append(f"{len(files)} file(s), {human_size(total)} uploaded\n")
    yield Stream("stdout", "".join(lines))


async def _aca_upload(executor: RemoteExecutor, source: Path, name: str) -> None:
    """Stage ``source`` in the executor's private work_dir as ``name``, then upload it."""
    work_dir = Path(getattr(executor, "work_dir"))  # noqa: B009
    staged = work_dir / name
    await asyncio.to_thread(_copy, source, staged)
    try:
        await _files(executor).upload_files([name])
    finally:
        staged.unlink(missing_ok=True)


def _copy(source: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, target, follow_symlinks=False)


async def download(host: MagicHost, names: list[str]) -> AsyncIterator[OutputEvent]:
    """Copy files and folders of the session's working directory into the notebook's folder."""
    base = host.notebook_dir
    wanted = [notebook_relative(base, name) for name in names]
    executor = host.bridge_session.get_executor()
    workdir = session_workdir(executor, executor.kind)
    if _shared_folder(executor, base):
        for relative in wanted:
            expand_upload(base, relative)  # exists, no links
        yield Stream(
            "stdout",
            "nothing to copy: the session works in the notebook's folder itself, so "
            f"{', '.join(map(str, wanted))} is already there\n",
        )
        return
    lines: list[str] = []
    written: list[tuple[PurePosixPath, int]] = []
    if executor.kind == "docker":
        async for event in _docker_download(executor, base, wanted, written):
            yield event
    elif executor.kind == "aca":
        for relative in wanted:
            if len(relative.parts) != 1:
                raise MagicUsageError(
                    f"{str(relative)!r}: the ACA session keeps files flat in /mnt/data; give a "
                    "bare file name"
                )
            check_target(base, relative)
        for relative in wanted:
            target = check_target(base, relative)  # again: just before writing
            paths = await _files(executor).download_files([relative.name])
            staged = Path(paths[0])
            try:
                await asyncio.to_thread(_copy, staged, target)
            finally:
                staged.unlink(missing_ok=True)
            written.append((relative, target.stat().st_size))
    else:
        work_dir = Path(getattr(executor, "work_dir"))  # noqa: B009
        plan = [f for relative in wanted for f in expand_upload(work_dir, relative)]
        for f in plan:
            check_target(base, f.relative)
        for f in plan:
            target = check_target(base, f.relative)  # again: just before writing
            await asyncio.to_thread(_copy, work_dir / f.relative, target)
            written.append((f.relative, f.size))
    for relative, size in written:
        lines.append(f"downloaded {workdir}/{relative} ({human_size(size)}) -> {base / relative}\n")
    total = sum(size for _, size in written)
    lines.append(f"{len(written)} file(s), {human_size(total)} downloaded\n")
    yield Stream("stdout", "".join(lines))


async def _docker_download(
    executor: RemoteExecutor,
    base: Path,
    wanted: list[PurePosixPath],
    written: list[tuple[PurePosixPath, int]],
) -> AsyncIterator[OutputEvent]:
    """Download from the container's /workspace with the Docker executor's tar copy."""
    docker = _docker(executor)
    present = set(await docker.get_file_list())
    plan: list[PurePosixPath] = []
    for relative in wanted:
        if str(relative) in present:
            plan.append(relative)
            continue
        inside = sorted(p for p in present if p.startswith(f"{relative}/"))
        if not inside:
            raise MagicUsageError(f"{str(relative)!r} does not exist in the session's /workspace")
        plan += [PurePosixPath(p) for p in inside]
    for relative in plan:
        check_target(base, relative)
    progress = _Progress("downloading", len(plan), None)
    for event in progress.start():
        yield event
    for relative in plan:
        check_target(base, relative)  # again: the folder may have changed meanwhile
        (target,) = await docker.download_into(base, [str(relative)])
        size = Path(target).stat().st_size
        written.append((relative, size))
        for event in progress.advance(size):
            yield event
