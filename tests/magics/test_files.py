"""%bridge upload / download at kernel level: byte-identical round trips, progress, refusals."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest
from _support.kernel_client import run_cell
from _support.notebook_kernel import error_text, kernel_in
from _support.specs import ACA_LOCAL, DOCKER, LOCAL, BridgeSpec, jupyter_root, write_kernelspec

PAYLOAD_SIZE = 3 * 1024 * 1024 + 17  # above the progress bar's threshold

# The cell reads what was uploaded and writes a file derived from it, byte by byte.
ROUND_TRIP_CELL = (
    "import hashlib\n"
    "data = open('payload.bin', 'rb').read()\n"
    "open('result.bin', 'wb').write(data[::-1] + b'\\x00written in the session')\n"
    "print(hashlib.sha256(data).hexdigest(), len(data))\n"
)


def _payload(folder: Path) -> bytes:
    data = os.urandom(PAYLOAD_SIZE)
    (folder / "payload.bin").write_bytes(data)
    return data


def _local_elsewhere(tmp_path: Path) -> str:
    """A local kernel whose code runs in another folder than the notebook's."""
    runtime_dir = tmp_path / "runtime"
    runtime_dir.mkdir()
    spec = BridgeSpec(
        "kbtest-local-elsewhere", (*LOCAL.flags, f"--LocalExecutor.cwd={runtime_dir}")
    )
    write_kernelspec(jupyter_root(), spec)
    return spec.name


@pytest.mark.parametrize("executor", ["local-elsewhere", "docker", "aca"])
def test_upload_read_write_download_is_byte_identical(executor: str, tmp_path: Path) -> None:
    notebook_dir = tmp_path / "notebook"
    notebook_dir.mkdir()
    data = _payload(notebook_dir)
    name = {
        "local-elsewhere": lambda: _local_elsewhere(tmp_path),
        "docker": DOCKER.ready,
        "aca": ACA_LOCAL.ready,
    }[executor]()
    with kernel_in(name, notebook_dir) as kc:
        up = run_cell(kc, "%bridge upload payload.bin")
        cell = run_cell(kc, ROUND_TRIP_CELL)
        down = run_cell(kc, "%bridge download result.bin")
    assert up.status == "ok", up.outputs
    assert "uploaded payload.bin (3.0 MiB)" in up.stream_text()
    shown = up.of_type("display_data")
    updates = up.of_type("update_display_data")
    assert shown and updates, "a large transfer shows a progress bar updated in place"
    display_id = shown[0]["content"]["transient"]["display_id"]
    assert all(u["content"]["transient"]["display_id"] == display_id for u in updates)
    assert "1/1 files" in updates[-1]["content"]["data"]["text/plain"]
    assert cell.stream_text() == f"{hashlib.sha256(data).hexdigest()} {len(data)}\n"
    assert down.status == "ok", down.outputs
    assert "downloaded" in down.stream_text() and "result.bin" in down.stream_text()
    expected = data[::-1] + b"\x00written in the session"
    assert (notebook_dir / "result.bin").read_bytes() == expected


def test_docker_moves_folders_both_ways(tmp_path: Path) -> None:
    (tmp_path / "inputs" / "deep").mkdir(parents=True)
    (tmp_path / "inputs" / "a.txt").write_text("alpha")
    (tmp_path / "inputs" / "deep" / "b.txt").write_text("beta")
    with kernel_in(DOCKER.ready(), tmp_path) as kc:
        up = run_cell(kc, "%bridge upload inputs")
        cell = run_cell(
            kc,
            "import os\n"
            "print(open('inputs/deep/b.txt').read())\n"
            "os.makedirs('outputs/x', exist_ok=True)\n"
            "open('outputs/x/c.txt', 'w').write('gamma')\n"
            "open('outputs/d.txt', 'w').write('delta')\n",
        )
        down = run_cell(kc, "%bridge download outputs")
    assert up.status == "ok" and "2 file(s)" in up.stream_text()
    assert cell.stream_text() == "beta\n"
    assert down.status == "ok", down.outputs
    assert (tmp_path / "outputs" / "x" / "c.txt").read_text() == "gamma"
    assert (tmp_path / "outputs" / "d.txt").read_text() == "delta"


def test_the_local_default_shares_the_notebook_folder(tmp_path: Path) -> None:
    (tmp_path / "here.txt").write_text("x")
    with kernel_in(LOCAL.ready(), tmp_path) as kc:
        up = run_cell(kc, "%bridge upload here.txt")
        cell = run_cell(kc, "print(open('here.txt').read())")
    assert "nothing to copy: the session works in the notebook's folder itself" in up.stream_text()
    assert cell.stream_text() == "x\n"


@pytest.mark.parametrize("spec", [LOCAL, DOCKER, ACA_LOCAL], ids=lambda s: s.name)
def test_escapes_are_refused_and_the_kernel_lives_on(spec: BridgeSpec, tmp_path: Path) -> None:
    notebook_dir = tmp_path / "notebook"
    notebook_dir.mkdir()
    secret = tmp_path / "secret.txt"
    secret.write_text("not for the session")
    os.symlink(secret, notebook_dir / "link.txt")
    with kernel_in(spec.ready(), notebook_dir) as kc:
        if spec is not LOCAL:  # the session has a file of that name to download
            assert run_cell(kc, "open('link.txt', 'w').write('from the session')").status == "ok"
        runs = {
            line: run_cell(kc, f"{line}\nprint('must not run')")
            for line in (
                "%bridge upload ../secret.txt",
                f"%bridge upload {secret}",
                "%bridge upload link.txt",
                "%bridge download ../stolen.txt",
                "%bridge download link.txt",
            )
        }
        after = run_cell(kc, "print('alive')")
    for line, run in runs.items():
        assert run.status == "error", line
        assert "must not run" not in run.stream_text(), f"{line}: the code after it ran"
    assert "outside the notebook's folder" in error_text(runs["%bridge upload ../secret.txt"])
    assert "outside the notebook's folder" in error_text(runs[f"%bridge upload {secret}"])
    assert "is a symbolic link" in error_text(runs["%bridge upload link.txt"])
    assert "outside the notebook's folder" in error_text(runs["%bridge download ../stolen.txt"])
    assert "'link.txt' is a symbolic link" in error_text(runs["%bridge download link.txt"])
    assert secret.read_text() == "not for the session"
    assert not (tmp_path / "stolen.txt").exists()
    assert after.stream_text() == "alive\n"
