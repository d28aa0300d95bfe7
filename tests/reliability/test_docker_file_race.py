"""Code in a container racing ``download_files``/``upload_files`` never reaches host files.

The container keeps swapping names in /workspace (which is the host's work_dir) between
regular files and links to host paths while the host copies files again and again. The
host must never write through, read through or create anything outside work_dir.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import time
from pathlib import Path

import pytest
from _support.environments import give_to_code_user

from kernel_bridge.errors import ConfigurationError, ExecutorError
from kernel_bridge.events import Error, Finished
from kernel_bridge.executors.docker import DockerCommandLineCodeExecutor

RACE_SECONDS = 10.0

SWAPPER = r"""
import os, sys, time
host_file, host_dir = sys.argv[1], sys.argv[2]
os.chdir('/workspace')
os.makedirs('realdir', exist_ok=True)
with open('realdir/sentinel.txt', 'w') as f:
    f.write('container data')
deadline = time.time() + 120
while time.time() < deadline and not os.path.exists('stop-swapping'):
    with open('swap.tmp', 'w') as f:
        f.write('container data')
    os.replace('swap.tmp', 'swap.txt')
    os.symlink(host_file, 'swap.lnk')
    os.replace('swap.lnk', 'swap.txt')
    for target in ('realdir', host_dir):
        os.symlink(target, 'sub.lnk')
        os.replace('sub.lnk', 'sub')
"""


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _outside(tmp_path: Path, work: Path) -> dict[str, str]:
    """Every file under tmp_path but outside work_dir, with its content hash."""
    found = {}
    for root, _dirs, files in os.walk(tmp_path):
        if Path(root) == work or work in Path(root).parents:
            continue
        for name in files:
            path = Path(root) / name
            found[str(path)] = _digest(path)
    return found


async def _run(executor: DockerCommandLineCodeExecutor, code: str) -> None:
    events = [event async for event in executor.execute(code)]
    errors = [e for e in events if isinstance(e, Error)]
    assert not errors, errors
    assert isinstance(events[-1], Finished)


def test_swapping_links_never_let_a_download_write_outside_work_dir(
    minimal_image: str, tmp_path: Path
) -> None:
    work = tmp_path / "work"
    work.mkdir()
    give_to_code_user(work)
    sentinel = tmp_path / "sentinel.txt"
    sentinel.write_text("host data that must not change\n")
    (tmp_path / "upload-secret.txt").write_text("host secret\n")
    before = _outside(tmp_path, work)
    counts = {"downloaded": 0, "refused": 0, "uploaded": 0, "upload_refused": 0}

    async def main() -> None:
        async with DockerCommandLineCodeExecutor(minimal_image, work_dir=work) as ex:
            await _run(
                ex,
                "import subprocess, sys\n"
                f"swapper = subprocess.Popen([sys.executable, '-c', {SWAPPER!r}, "
                f"{str(sentinel)!r}, {str(tmp_path)!r}])\n",
            )
            deadline = time.monotonic() + RACE_SECONDS
            while time.monotonic() < deadline:
                for name in ("swap.txt", "sub/sentinel.txt"):
                    try:
                        paths = await ex.download_files([name])
                    except (ConfigurationError, ExecutorError):
                        counts["refused"] += 1
                    else:
                        assert paths == [str(work / name)]
                        counts["downloaded"] += 1
                # an upload of the same names must never read a host file through a link
                try:
                    await ex.upload_files(["swap.txt"])
                    counts["uploaded"] += 1
                except (ConfigurationError, ExecutorError):
                    counts["upload_refused"] += 1
            await _run(ex, "open('stop-swapping', 'w').close(); swapper.wait(10)")
            # what reached the container from uploads is only ever container data
            probe = [e async for e in ex.execute("print(open('swap.txt').read()[:40])")]
            assert "host" not in repr(probe)

    asyncio.run(main())
    assert _digest(sentinel) == before[str(sentinel)], "the host file was overwritten"
    assert _outside(tmp_path, work) == before, "something outside work_dir changed"
    attempts = counts["downloaded"] + counts["refused"]
    assert counts["downloaded"] > 0 and counts["refused"] > 0, counts
    assert attempts >= 20, counts  # the race was really run many times (typically 100-300)
    print(f"race outcome over {RACE_SECONDS:.0f}s: {counts}")


@pytest.mark.parametrize("kind", ["symlink", "fifo"])
def test_upload_refuses_links_and_special_files_in_work_dir(
    minimal_image: str, tmp_path: Path, kind: str
) -> None:
    work = tmp_path / "work"
    work.mkdir()
    give_to_code_user(work)
    secret = tmp_path / "secret.txt"
    secret.write_text("host secret\n")
    if kind == "symlink":
        (work / "data.txt").symlink_to(secret)
    else:
        os.mkfifo(work / "data.txt")

    async def main() -> None:
        async with DockerCommandLineCodeExecutor(minimal_image, work_dir=work) as ex:
            with pytest.raises(ConfigurationError) as raised:
                await ex.upload_files(["data.txt"])
            message = str(raised.value)
            assert "'data.txt'" in message
            assert ("symbolic link" if kind == "symlink" else "not a regular file") in message

    asyncio.run(asyncio.wait_for(main(), 120))


def test_download_refuses_links_and_special_files_in_the_container(
    minimal_image: str, tmp_path: Path
) -> None:
    async def main() -> None:
        async with DockerCommandLineCodeExecutor(minimal_image, work_dir=tmp_path) as ex:
            await _run(
                ex,
                "import os\nos.symlink('/etc/passwd', 'ln')\nos.mkfifo('pipe')\n"
                "os.mkdir('folder')\n",
            )
            for name, kind in (
                ("ln", "a symbolic link (to '/etc/passwd')"),
                ("pipe", "a special file"),
                ("folder", "a directory"),
            ):
                with pytest.raises(ConfigurationError) as raised:
                    await ex.download_files([name])
                assert f"{name!r}" in str(raised.value) and kind in str(raised.value)
            assert (tmp_path / "ln").is_symlink()  # the container's link, left as it was

    asyncio.run(main())
