"""papermill on the Docker kernel records the image id; ``kernel-bridge provenance`` shows it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import docker
from _support.environments import MINIMAL_IMAGE
from _support.specs import DOCKER

from kernel_bridge.cli import main

REPO = Path(__file__).resolve().parents[2]


def test_papermill_output_names_the_image_id(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    name = DOCKER.ready()
    out = tmp_path / "out.ipynb"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "papermill",
            "-k",
            name,
            "-p",
            "name",
            "prov",
            str(REPO / "notebooks" / "parameters.ipynb"),
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    client = docker.from_env()
    try:
        image_id = client.images.get(MINIMAL_IMAGE).id
    finally:
        client.close()
    nb = json.loads(out.read_text())
    record = nb["metadata"]["language_info"]["kernel_bridge"]
    assert record["executor"] == "docker" and record["image"] == MINIMAL_IMAGE
    results = [
        o
        for c in nb["cells"]
        if c["cell_type"] == "code"
        for o in c["outputs"]
        if o["output_type"] == "execute_result"
    ]
    assert results, "the notebook has a result"
    assert all(o["metadata"]["kernel_bridge"]["image_id"] == image_id for o in results)

    assert main(["provenance", str(out)]) == 0
    printed = capsys.readouterr().out
    assert f"kernel: docker, image {MINIMAL_IMAGE}" in printed
    assert f"image {MINIMAL_IMAGE} ({image_id})," in printed
    assert "python 3.11.2, session started " in printed
    assert "no rich output or result recorded" in printed  # the cells that only print

    assert main(["provenance", "--json", str(out)]) == 0
    document = json.loads(capsys.readouterr().out)
    assert any(p["image_id"] == image_id for c in document["cells"] for p in c["places"])


def test_an_unreadable_notebook_is_a_clear_error(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    assert main(["provenance", str(tmp_path / "missing.ipynb")]) == 1
    assert "cannot read" in capsys.readouterr().err
