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
    err = process.stderr.read()
    assert "cli-token" not in err
    assert "--token is visible" in err and "KERNEL_BRIDGE_EMULATOR_TOKEN" in err


@pytest.mark.parametrize(
    "argv",
    [
        ["--cooldown", "0"],
        ["--max-sessions", "0"],
        ["--backend", "cloud"],
        ["--async-execution-cap", "0"],
        ["--max-output-length", "0"],
    ],
)
def test_cli_refuses_bad_options(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["aca-emulator", *argv]) == 2
    assert "error" in capsys.readouterr().err


def test_cli_takes_the_token_from_the_environment_and_keeps_it_out_of_argv() -> None:
    token = "env-token-0123456789"
    env = {**os.environ, "PYTHONPATH": str(REPO), "KERNEL_BRIDGE_EMULATOR_TOKEN": token}
    process = subprocess.Popen(
        [sys.executable, "-m", "kernel_bridge.cli", "aca-emulator", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert process.stdout is not None
        endpoint = process.stdout.readline().strip()
        argv = Path(f"/proc/{process.pid}/cmdline").read_bytes().split(b"\0")
        assert not any(token.encode() in arg for arg in argv), argv
        params = {"api-version": "2024-02-02-preview", "identifier": "env-session"}
        body = {"properties": {"codeInputType": "inline", "code": "6 * 7"}}
        deadline = time.monotonic() + 30
        while True:
            try:
                accepted = httpx.post(
                    f"{endpoint}/code/execute",
                    params=params,
                    json=body,
                    timeout=60,
                    headers={"Authorization": f"Bearer {token}"},
                )
                break
            except httpx.ConnectError:
                assert time.monotonic() < deadline, "the emulator never accepted connections"
                time.sleep(0.1)
        assert accepted.status_code == 200
        assert accepted.json()["properties"]["result"] == 42
        refused = httpx.post(
            f"{endpoint}/code/execute",
            params=params,
            json=body,
            headers={"Authorization": "Bearer some-other-token"},
        )
        assert refused.status_code == 401
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=20) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.stderr is not None
    err = process.stderr.read()
    assert token not in err and "warning" not in err


def test_cli_help_names_the_token_variable() -> None:
    help_text = subprocess.run(
        [sys.executable, "-m", "kernel_bridge.cli", "aca-emulator", "--help"],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    ).stdout
    assert "KERNEL_BRIDGE_EMULATOR_TOKEN" in help_text
    assert "ps" in help_text
