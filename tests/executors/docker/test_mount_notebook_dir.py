"""mount_notebook_dir: the notebook's folder at /workspace, written as the folder's owner."""

from __future__ import annotations

import os
from pathlib import Path

from _support.kernel_client import run_cell
from _support.notebook_kernel import info_of, kernel_in
from _support.specs import DOCKER, BridgeSpec, jupyter_root, write_kernelspec

MOUNTED = BridgeSpec(
    "kbtest-docker-mounted",
    (*DOCKER.flags, "--DockerCommandLineCodeExecutor.mount_notebook_dir=True"),
    needs=DOCKER.needs,
)


def test_the_notebook_folder_is_the_working_directory(tmp_path: Path) -> None:
    write_kernelspec(jupyter_root(), MOUNTED)
    folder = tmp_path / "notebook"
    folder.mkdir()
    (folder / "data.csv").write_text("a,b\n1,2\n")
    os.chown(folder, 1234, 1234)  # a non-root owner: the code must run as it to write here
    with kernel_in(MOUNTED.ready(), folder) as kc:
        cell = run_cell(
            kc,
            "import os\n"
            "print(os.getcwd(), os.getuid(), open('data.csv').read().splitlines()[1])\n"
            "open('written.txt', 'w').write('from the container')\n",
        )
        upload = run_cell(kc, "%bridge upload data.csv")
        download = run_cell(kc, "%bridge download written.txt")
        info = info_of(run_cell(kc, "%bridge info"))
    assert cell.status == "ok", cell.outputs
    assert cell.stream_text() == "/workspace 1234 1,2\n"
    written = folder / "written.txt"
    assert written.read_text() == "from the container"
    assert (written.stat().st_uid, written.stat().st_gid) == (1234, 1234)
    assert "nothing to copy" in upload.stream_text()
    assert "nothing to copy" in download.stream_text()
    assert info["mounts"][0] == f"{folder} -> /workspace (rw, the notebook's folder)"


def test_without_the_option_the_folder_is_not_mounted(tmp_path: Path) -> None:
    (tmp_path / "data.csv").write_text("x")
    with kernel_in(DOCKER.ready(), tmp_path) as kc:
        cell = run_cell(kc, "import os\nprint(os.path.exists('data.csv'), os.listdir('.'))")
    assert cell.stream_text() == "False []\n"
