"""Provenance at kernel level: every rich output, result and error says where it was made."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import docker
import pytest
from _support.environments import ACA_TOKEN, EMULATORS, MINIMAL_IMAGE
from _support.kernel_client import run_cell
from _support.notebook_kernel import kernel_in
from _support.specs import ACA_LOCAL, DOCKER, LOCAL, BridgeSpec

from kernel_bridge.provenance import PROVENANCE_KEY

CELLS = (
    "class Rich:\n"
    "    def _repr_html_(self):\n"
    "        return '<b>rich</b>'\n"
    "display(Rich())\n"
    "Rich()\n",
    "display('first', display_id='d1')\nupdate_display('second', display_id='d1')",
    "raise ValueError('on purpose')",
)
STAMPED = ("display_data", "update_display_data", "execute_result", "error")


def _entries(outputs: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    found: dict[str, list[dict[str, Any]]] = {}
    for message in outputs:
        if message["msg_type"] in STAMPED:
            entry = message["content"]["metadata"][PROVENANCE_KEY]
            found.setdefault(message["msg_type"], []).append(entry)
    return found


@pytest.mark.parametrize("spec", [LOCAL, DOCKER, ACA_LOCAL], ids=lambda s: s.name)
def test_every_output_type_carries_provenance_without_secrets(
    spec: BridgeSpec, tmp_path: Path
) -> None:
    name = spec.ready()
    live_before: set[str] = set()
    if spec is ACA_LOCAL:
        live_before = {s.identifier for s in EMULATORS["local"].emulator.state.sessions.live()}
    with kernel_in(name, tmp_path) as kc:
        outputs = [m for code in CELLS for m in run_cell(kc, code).outputs]
        language_info = kc.kernel_info(reply=True)["content"]["language_info"]
    found = _entries(outputs)
    assert set(found) == set(STAMPED), f"missing provenance on {set(STAMPED) - set(found)}"
    entries = [e for group in found.values() for e in group]
    python = ".".join(map(str, sys.version_info[:3])) if spec is not DOCKER else "3.11.2"
    for entry in entries:
        assert entry["executor"] == name.split("-")[1]
        assert entry["python"] == python
        assert entry["session_started"].endswith("Z")
        assert entry["cell_started"].endswith("Z")
        assert entry["cell_elapsed_s"] >= 0
    assert len({e["session_started"] for e in entries}) == 1, "one session throughout"
    record = language_info[PROVENANCE_KEY]
    if spec is DOCKER:
        client = docker.from_env()
        try:
            image_id = client.images.get(MINIMAL_IMAGE).id
        finally:
            client.close()
        assert {e["image_id"] for e in entries} == {image_id}
        assert record["image"] == MINIMAL_IMAGE
    if spec is ACA_LOCAL:
        assert {e["pool_host"] for e in entries} == {"127.0.0.1"}
        assert record["pool_host"] == "127.0.0.1"
        live = {s.identifier for s in EMULATORS["local"].emulator.state.sessions.live()}
        shown = json.dumps([m["content"] for m in outputs]) + json.dumps(language_info)
        assert ACA_TOKEN not in shown
        for identifier in live - live_before:
            assert identifier not in shown
        assert EMULATORS["local"].endpoint not in shown, "the endpoint's path stays out"
    assert record["executor"] == name.split("-")[1]


def test_a_switch_shows_in_the_provenance(tmp_path: Path) -> None:
    DOCKER.ready()
    with kernel_in(LOCAL.ready(), tmp_path) as kc:
        local = run_cell(kc, "1")
        run_cell(kc, f"%bridge use docker --image {MINIMAL_IMAGE}")
        in_docker = run_cell(kc, "2")
        language_info = kc.kernel_info(reply=True)["content"]["language_info"]
    first = local.of_type("execute_result")[0]["content"]["metadata"][PROVENANCE_KEY]
    second = in_docker.of_type("execute_result")[0]["content"]["metadata"][PROVENANCE_KEY]
    assert first["executor"] == "local" and "image" not in first
    assert second["executor"] == "docker" and second["image"] == MINIMAL_IMAGE
    assert second["image_id"].startswith("sha256:")
    assert language_info[PROVENANCE_KEY]["executor"] == "docker"


def test_nbclient_keeps_it_and_the_notebook_stays_valid(tmp_path: Path) -> None:
    import nbclient
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(code) for code in CELLS]
    client = nbclient.NotebookClient(
        nb,
        kernel_name=LOCAL.ready(),
        allow_errors=True,
        resources={"metadata": {"path": str(tmp_path)}},
    )
    client.execute()
    nbformat.validate(nb)
    outputs = [o for cell in nb.cells for o in cell.outputs]
    stamped = [o for o in outputs if o["output_type"] in ("display_data", "execute_result")]
    assert len(stamped) == 3  # the rich display, the result, the updated display
    assert all(o["metadata"][PROVENANCE_KEY]["executor"] == "local" for o in stamped)
    assert nb.cells[1].outputs[0]["data"]["text/plain"] == "'second'", "the update was applied"
    assert [o["output_type"] for o in nb.cells[2].outputs] == ["error"]
    assert nb.metadata["language_info"][PROVENANCE_KEY]["executor"] == "local"
