"""A spec written by ``kernel-bridge install`` really starts a working kernel."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from jupyter_client.manager import KernelManager

REPO = Path(__file__).resolve().parents[2]


def test_installed_local_spec_runs_a_cell(cli: Callable[..., Any], prefix: Path) -> None:
    assert cli("install", "--prefix", str(prefix), "--name", "kb-cli-e2e").code == 0
    km = KernelManager(kernel_name="kb-cli-e2e")
    pythonpath = os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH")) if p)
    km.start_kernel(env={**os.environ, "PYTHONPATH": pythonpath})
    kc = km.client()
    kc.start_channels()
    try:
        kc.wait_for_ready(timeout=60)
        outputs: list[tuple[str, dict[str, Any]]] = []
        reply = kc.execute_interactive(
            "print('from', 'bridge'); 6 * 7",
            timeout=60,
            output_hook=lambda msg: outputs.append((msg["msg_type"], msg["content"])),
        )
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)
    assert reply["content"]["status"] == "ok"
    stdout = "".join(c["text"] for t, c in outputs if t == "stream" and c["name"] == "stdout")
    assert stdout == "from bridge\n"
    results = [c["data"]["text/plain"] for t, c in outputs if t == "execute_result"]
    assert results == ["42"]
