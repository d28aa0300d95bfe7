"""Semantic Kernel's sessions plugin runs unchanged against ``aca-emulator --tls``.

``SessionsPythonTool`` refuses any endpoint that is not https, so this is the flow a user
testing SK offline follows: start the emulator with ``--tls``, trust the printed
certificate through ``SSL_CERT_FILE``, and use the plugin as documented.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
TOKEN = "semantic-kernel-test-token"


@pytest.fixture
def tls_emulator() -> Iterator[tuple[str, Path]]:
    """``kernel-bridge aca-emulator --tls`` in a subprocess: (endpoint, certificate path)."""
    env = {**os.environ, "PYTHONPATH": str(REPO), "KERNEL_BRIDGE_EMULATOR_TOKEN": TOKEN}
    process = subprocess.Popen(
        [sys.executable, "-m", "kernel_bridge.cli", "aca-emulator", "--tls"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert process.stdout is not None and process.stderr is not None
        endpoint = process.stdout.readline().strip()
        assert endpoint.startswith("https://127.0.0.1:"), endpoint
        first = process.stderr.readline()
        assert first.startswith("TLS certificate (self-signed, made now): "), first
        cert = Path(first.split(": ", 1)[1].strip())
        assert cert.is_file()
        yield endpoint, cert
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    assert not cert.exists(), "the certificate's directory should be removed at exit"


def test_sessions_python_tool_runs_unchanged_over_tls(
    tls_emulator: tuple[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from semantic_kernel.core_plugins.sessions_python_tool import SessionsPythonTool

    endpoint, cert = tls_emulator
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))
    local = tmp_path / "numbers.csv"
    local.write_text("n\n1\n2\n3\n")
    downloads = tmp_path / "downloads"
    downloads.mkdir()

    async def scenario() -> None:
        tool = SessionsPythonTool(
            pool_management_endpoint=endpoint,
            auth_callback=lambda: TOKEN,
            enable_dangerous_file_uploads=True,
            allowed_upload_directories=[str(tmp_path)],
            allowed_download_directories=[str(downloads)],
        )
        deadline = time.monotonic() + 30
        while True:  # the emulator prints its endpoint before it accepts connections
            try:
                first = await tool.execute_code("x = 6 * 7\nx")
                break
            except Exception:
                assert time.monotonic() < deadline, "the emulator never answered over TLS"
                await asyncio.sleep(0.1)
        assert "Status:\nSuccess" in first and "Result:\n42" in first, first
        uploaded = await tool.upload_file(local_file_path=str(local))
        assert uploaded.filename == "numbers.csv" and uploaded.size_in_bytes == 8
        summed = await tool.execute_code(
            "print(sum(int(n) for n in open('/mnt/data/numbers.csv') if n.strip().isdigit()))"
        )
        assert "6" in summed, summed
        await tool.execute_code("open('/mnt/data/out.txt', 'w').write('from the session')")
        names = sorted(f.filename for f in await tool.list_files())
        assert names == ["numbers.csv", "out.txt"], names
        target = downloads / "out.txt"
        await tool.download_file(remote_file_name="out.txt", local_file_path=str(target))
        assert target.read_text() == "from the session"

    asyncio.run(scenario())
