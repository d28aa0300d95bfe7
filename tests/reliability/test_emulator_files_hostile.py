"""The ACA emulator's file routes never serve, list or write through what session code
put in /mnt/data: links to host files, FIFOs, and names no file can have.

Run on both backends; on the Docker backend the session code is in a container, so a
link there must not let it read or overwrite files of the emulator's host.
"""

from __future__ import annotations

import hashlib
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from _support.environments import MINIMAL_IMAGE, require_docker

from kernel_bridge.emulator import Emulator, EmulatorConfig

TOKEN = "hostile-files-token"
V = "2024-02-02-preview"


class _Pool:
    def __init__(self, emulator: Emulator) -> None:
        self.emulator = emulator
        self.http = httpx.Client(headers={"Authorization": f"Bearer {TOKEN}"}, timeout=120)

    def url(self, path: str) -> str:
        return f"{self.emulator.endpoint}/{path}"

    def q(self) -> dict[str, str]:
        return {"api-version": V, "identifier": "hostile-session"}

    def run(self, code: str) -> dict[str, Any]:
        properties = {"codeInputType": "inline", "executionType": "synchronous", "code": code}
        body = {"properties": properties}
        response = self.http.post(self.url("code/execute"), params=self.q(), json=body)
        assert response.status_code == 200, response.text
        props: dict[str, Any] = response.json()["properties"]
        assert props["status"] == "Success", props
        return props


@pytest.fixture(params=["local", "docker"])
def pool(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[_Pool]:
    config: dict[str, Any] = {"backend": request.param}
    if request.param == "docker":
        require_docker()
        config["image"] = MINIMAL_IMAGE
    else:
        config["python"] = sys.executable
    emulator = Emulator(EmulatorConfig(token=TOKEN, **config)).start()
    pool = _Pool(emulator)
    try:
        yield pool
    finally:
        pool.http.close()
        emulator.stop()


@pytest.fixture
def host_secret(tmp_path: Path) -> Path:
    secret = tmp_path / "host-secret.txt"
    secret.write_text("host secret: never served\n")
    return secret


def test_links_and_fifos_in_mnt_data_are_not_served_or_listed(
    pool: _Pool, host_secret: Path
) -> None:
    pool.run(
        "import os\n"
        f"os.symlink({str(host_secret)!r}, '/mnt/data/secret-link')\n"
        "os.symlink('/etc/passwd', '/mnt/data/passwd-link')\n"
        "os.mkfifo('/mnt/data/fifo')\n"
        "open('/mnt/data/plain.txt', 'w').write('plain')\n"
    )
    listing = pool.http.get(pool.url("files"), params=pool.q())
    assert listing.status_code == 200
    names = [v["properties"]["filename"] for v in listing.json()["value"]]
    assert names == ["plain.txt"]
    for name in ("secret-link", "passwd-link", "fifo"):
        response = pool.http.get(pool.url(f"files/content/{name}"), params=pool.q())
        assert response.status_code == 404, (name, response.status_code)
        assert b"host secret" not in response.content and b"root:" not in response.content
        assert response.json()["error"]["code"] == "FileNotFound"
    plain = pool.http.get(pool.url("files/content/plain.txt"), params=pool.q())
    assert plain.content == b"plain"


def test_an_upload_replaces_a_link_instead_of_writing_through_it(
    pool: _Pool, host_secret: Path
) -> None:
    before = hashlib.sha256(host_secret.read_bytes()).hexdigest()
    pool.run(f"import os\nos.symlink({str(host_secret)!r}, '/mnt/data/up.txt')\n")
    response = pool.http.post(
        pool.url("files/upload"),
        params=pool.q(),
        files={"file": ("up.txt", b"uploaded bytes", "text/plain")},
    )
    assert response.status_code == 200, response.text
    assert hashlib.sha256(host_secret.read_bytes()).hexdigest() == before
    props = pool.run(
        "import os\n(os.path.islink('/mnt/data/up.txt'), open('/mnt/data/up.txt').read())"
    )
    assert props["result"] == "(False, 'uploaded bytes')"


def test_odd_file_names_get_a_clear_400(pool: _Pool) -> None:
    long_name = "n" * 5000
    upload = pool.http.post(
        pool.url("files/upload"),
        params=pool.q(),
        files={"file": (long_name, b"x", "text/plain")},
    )
    assert upload.status_code == 400, upload.text
    error = upload.json()["error"]
    assert error["code"] == "InvalidFileName"
    assert "longer than 255 bytes" in error["message"] and "nnnn" in error["message"]
    assert "5000 characters" in error["message"]
    download = pool.http.get(pool.url(f"files/content/{long_name}"), params=pool.q())
    assert download.status_code == 400 and "longer than 255 bytes" in download.text
    nul = pool.http.get(pool.url("files/content/bad%00name.txt"), params=pool.q())
    assert nul.status_code == 400, nul.text
    assert "NUL character" in nul.json()["error"]["message"] and "bad" in nul.text
