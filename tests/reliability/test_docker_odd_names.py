"""Odd file names in the Docker executor's file transfer get a clear error naming the file
and what is wrong (no raw engine error, no ValueError), and the executor keeps working."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from kernel_bridge.errors import ConfigurationError
from kernel_bridge.executors.docker import DockerCommandLineCodeExecutor

CASES = [
    ("n" * 5000, "has a component of 5000 bytes"),
    ("sub/" + "d" * 300 + "/f.txt", "has a component of 300 bytes"),
    ("/".join(["abcdefgh"] * 600), "bytes long; at most 4095"),
    ("bad\x00name.txt", "contains a NUL character"),
    ("", "is empty"),
]


@pytest.mark.parametrize("direction", ["upload", "download"])
def test_odd_names_get_clear_errors(minimal_image: str, tmp_path: Path, direction: str) -> None:
    async def main() -> None:
        async with DockerCommandLineCodeExecutor(minimal_image, work_dir=tmp_path) as ex:
            for name, problem in CASES:
                with pytest.raises(ConfigurationError) as raised:
                    if direction == "upload":
                        await ex.upload_files([name])
                    else:
                        await ex.download_files([name])
                message = str(raised.value)
                assert problem in message, (name[:20], message)
                assert repr(name[:10])[:-1] in message  # the file is named (shortened)
                assert len(message) < 400, message
            # still usable afterwards
            (tmp_path / "ok.txt").write_text("fine")
            await ex.upload_files(["ok.txt"])
            assert await ex.download_files(["ok.txt"]) == [str(tmp_path / "ok.txt")]

    asyncio.run(main())
