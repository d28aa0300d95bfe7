"""``kernel-bridge aca-emulator``: prints the endpoint, serves, stops on Ctrl-C."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from kernel_bridge.cli import main

REPO = Path(__file__).resolve().parents[2]


def test_cli_prints_the_endpoint_serves_and_stops_on_sigint() -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "kernel_bridge.cli",
            "aca-emulator",
            "--port",
            "0",
            "--token",
            "cli-token",
            "--cooldown",
            "30",
            "--max-sessions",
            "2",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert process.stdout is not None
        endpoint = process.stdout.readline().strip()
        assert endpoint.startswith("http://127.0.0.1:")
        assert endpoint.endswith(
            "/subscriptions/emulator/resourceGroups/emulator/sessionPools/emulator"
        )
        params = {"api-version": "2024-02-02-preview", "identifier": "cli-session"}
        body = {
            "properties": {
                "codeInputType": "inline",
                "executionType": "synchronous",
                "code": "6 * 7",
            }
        }
        deadline = time.monotonic() + 30
        while True:
            try:
                response = httpx.post(
                    f"{endpoint}/code/execute",
                    params=params,
                    json=body,
                    timeout=60,
                    headers={"Authorization": "Bearer cli-token"},
                )
                break
            except httpx.ConnectError:
                assert time.monotonic() < deadline, "the emulator never accepted connections"
                time.sleep(0.1)
        assert response.status_code == 200
        assert response.json()["properties"]["result"] == 42
        refused = httpx.post(f"{endpoint}/code/execute", params=params, json=body)
        assert refused.status_code == 401
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=20) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.stderr is not None
    assert "cli-token" not in process.stderr.read()


@pytest.mark.parametrize(
    "argv", [["--cooldown", "0"], ["--max-sessions", "0"], ["--backend", "cloud"]]
)
def test_cli_refuses_bad_options(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["aca-emulator", *argv]) == 2
    assert "error" in capsys.readouterr().err
