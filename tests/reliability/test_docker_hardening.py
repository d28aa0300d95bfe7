"""Docker containers start hardened, a normal notebook still works, and code cannot reach
services on the host's Docker gateway address.

Every setting is read back from ``docker inspect`` of the real container and from inside
it (uid, capabilities, NoNewPrivs); each relaxation option is shown to take effect.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import os
import socket
import subprocess
import sys
import threading
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import pytest
from _support.environments import give_to_code_user
from _support.specs import DOCKER_RICH

from kernel_bridge.events import Error, Event, Result, Stream
from kernel_bridge.executors.docker import DockerCommandLineCodeExecutor
from kernel_bridge.executors.docker import _hardening as hardening

REPO = Path(__file__).resolve().parents[2]

STATUS_PROBE = (
    "import os\n"
    "status = dict(l.split(':\\t', 1) for l in open('/proc/self/status').read().splitlines()"
    " if ':\\t' in l)\n"
    "print(os.getuid(), status['CapEff'].strip(), status['NoNewPrivs'].strip(),"
    " os.environ['HOME'], os.access(os.environ['HOME'], os.W_OK), os.access('.', os.W_OK))\n"
)


async def _events(ex: DockerCommandLineCodeExecutor, code: str) -> list[Event]:
    return [event async for event in ex.execute(code)]


async def _stdout(ex: DockerCommandLineCodeExecutor, code: str) -> str:
    events = await _events(ex, code)
    errors = [e for e in events if isinstance(e, Error)]
    assert not errors, errors
    return "".join(e.text for e in events if isinstance(e, Stream) and e.name == "stdout")


def _host_config(container_name: str) -> dict[str, Any]:
    client = docker.from_env()
    try:
        return dict(client.containers.get(container_name).attrs["HostConfig"]) | {
            "User": client.containers.get(container_name).attrs["Config"]["User"],
            "Env": client.containers.get(container_name).attrs["Config"]["Env"],
        }
    finally:
        client.close()


def test_a_default_container_is_hardened(minimal_image: str) -> None:
    async def main() -> None:
        async with DockerCommandLineCodeExecutor(minimal_image) as ex:
            seen = (await _stdout(ex, STATUS_PROBE)).split()
            host = _host_config(ex.container_name)
            work_owner = os.stat(ex.work_dir).st_uid if ex.work_dir else None
        expected_user = hardening.default_user(None)
        uid = int(expected_user.split(":")[0])
        assert host["User"] == expected_user and uid != 0
        assert host["SecurityOpt"] == ["no-new-privileges"]
        assert host["CapDrop"] == ["ALL"] and not host["CapAdd"]
        assert host["Memory"] == 2 * 1024**3
        assert host["PidsLimit"] == 4096
        assert host["NetworkMode"] == hardening.ISOLATED_NETWORK
        assert host["ReadonlyRootfs"] is False
        assert "uid=" in host["Tmpfs"][hardening.HOME_DIR]
        assert f"HOME={hardening.HOME_DIR}" in host["Env"]
        # inside: not root, no capabilities, no privilege gain, writable home and workspace
        assert seen == [str(uid), "0000000000000000", "1", hardening.HOME_DIR, "True", "True"]
        assert work_owner == uid  # the temporary work_dir belongs to the code's user

    asyncio.run(main())
    client = docker.from_env()
    try:
        network = client.networks.get(hardening.ISOLATED_NETWORK).attrs
    finally:
        client.close()
    assert network["Internal"] is True
    assert network["Options"]["com.docker.network.bridge.inhibit_ipv4"] == "true"
    assert network["Options"]["com.docker.network.bridge.enable_icc"] == "false"


def test_strict_profile_has_no_network_and_a_read_only_root(minimal_image: str) -> None:
    async def main() -> None:
        async with DockerCommandLineCodeExecutor(minimal_image, profile="strict") as ex:
            host = _host_config(ex.container_name)
            out = await _stdout(
                ex,
                "import os, socket\n"
                "try:\n    open('/etc/kb-probe', 'w')\nexcept OSError as e:\n    print(e.errno)\n"
                "open('/tmp/ok', 'w').write('tmp is writable'); print(open('/tmp/ok').read())\n"
                "print(sorted(n for _, n in socket.if_nameindex()))\n",
            )
        assert host["NetworkMode"] == "none" and host["ReadonlyRootfs"] is True
        assert host["CapDrop"] == ["ALL"] and host["SecurityOpt"] == ["no-new-privileges"]
        assert out.split("\n")[:3] == ["30", "tmp is writable", "['lo']"]  # 30: EROFS

    asyncio.run(main())


def test_every_default_can_be_relaxed_explicitly(
    minimal_image: str, reachable_network: tuple[str, str]
) -> None:
    async def main() -> None:
        async with DockerCommandLineCodeExecutor(
            minimal_image,
            profile="strict",
            user="root",
            network_mode=reachable_network[0],
            read_only=False,
            no_new_privileges=False,
            cap_drop=[],
            cap_add=["NET_RAW"],
            mem_limit=None,
            pids_limit=None,
        ) as ex:
            host = _host_config(ex.container_name)
            seen = (await _stdout(ex, "import os\nprint(os.getuid(), os.environ['HOME'])")).split()
        assert host["User"] == "root" and seen == ["0", "/root"]
        assert host["NetworkMode"] == reachable_network[0] and host["ReadonlyRootfs"] is False
        assert not host["SecurityOpt"] and not host["CapDrop"] and host["CapAdd"] == ["NET_RAW"]
        assert host["Memory"] == 0 and not host["PidsLimit"]
        assert not host.get("Tmpfs")

    asyncio.run(main())


@pytest.fixture(scope="module")
def reachable_network(minimal_image: str) -> Iterator[tuple[str, str]]:
    """A plain (not internal) bridge network made by this test: (name, host gateway address).

    Its gateway is an address of this machine, like docker0's; a container that opts into
    it can reach host services bound there -- the control for the isolation tests.
    """
    client = docker.from_env()
    name = f"kbtest-reachable-{os.getpid()}"
    network = client.networks.create(name, driver="bridge", labels={"kbtest": "hardening"})
    try:
        network.reload()
        yield name, str(network.attrs["IPAM"]["Config"][0]["Gateway"])
    finally:
        network.remove()
        client.close()


class _Listener:
    """A TCP listener on the host that records every connection it accepts."""

    def __init__(self, address: str) -> None:
        self.sock = socket.create_server((address, 0))
        self.port = self.sock.getsockname()[1]
        self.accepted: list[tuple[str, int]] = []
        self.sock.settimeout(0.2)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, peer = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.accepted.append(peer)
            conn.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self.sock.close()


CONNECT = (
    "import socket\n"
    "def probe(host, port):\n"
    "    try:\n"
    "        socket.create_connection((host, port), timeout=3).close()\n"
    "        return 'connected'\n"
    "    except OSError as e:\n"
    "        return type(e).__name__\n"
)


def test_code_cannot_reach_a_host_service_on_the_gateway_address(
    minimal_image: str, reachable_network: tuple[str, str]
) -> None:
    network, gateway = reachable_network
    listener = _Listener(gateway)  # a host service bound to a Docker gateway address
    try:

        async def attempt(**options: Any) -> str:
            async with DockerCommandLineCodeExecutor(minimal_image, **options) as ex:
                await _stdout(ex, CONNECT)
                return (await _stdout(ex, f"print(probe({gateway!r}, {listener.port}))")).strip()

        isolated = asyncio.run(attempt())
        assert isolated != "connected" and not listener.accepted, (isolated, listener.accepted)
        strict = asyncio.run(attempt(profile="strict"))
        assert strict != "connected" and not listener.accepted, strict
        # control: the same listener is reachable from a container that opted into a
        # network with a host address (as network_mode="bridge" would give, via docker0)
        reachable = asyncio.run(attempt(network_mode=network))
        assert reachable == "connected" and listener.accepted, reachable
    finally:
        listener.close()
    # the isolated network's own gateway is not an address of this machine at all
    client = docker.from_env()
    try:
        ipam = client.networks.get(hardening.ISOLATED_NETWORK).attrs["IPAM"]["Config"]
    finally:
        client.close()
    with pytest.raises(OSError):
        socket.create_server((str(ipam[0]["Gateway"]), 0)).close()


def _tiny_wheel(directory: Path) -> Path:
    """Build a minimal pure-Python wheel (the zip layout of PEP 427) without network."""
    name, version = "kbtiny", "0.1"
    files = {
        f"{name}/__init__.py": b"ANSWER = 'installed for the code user'\n",
        f"{name}-{version}.dist-info/METADATA": (
            f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n".encode()
        ),
        f"{name}-{version}.dist-info/WHEEL": (
            b"Wheel-Version: 1.0\nGenerator: kernel_bridge-tests\nRoot-Is-Purelib: true\n"
            b"Tag: py3-none-any\n"
        ),
    }
    record = []
    for path, data in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record.append(f"{path},sha256={digest},{len(data)}")
    record.append(f"{name}-{version}.dist-info/RECORD,,")
    files[f"{name}-{version}.dist-info/RECORD"] = ("\n".join(record) + "\n").encode()
    wheel = directory / f"{name}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        for path, data in files.items():
            archive.writestr(path, data)
    return wheel


def test_pip_install_user_of_an_uploaded_wheel_works_under_the_defaults(
    rich_image: str, tmp_path: Path
) -> None:
    local = tmp_path / "host-files"
    local.mkdir()
    wheel = _tiny_wheel(local)

    async def main() -> None:
        # work_dir is not bind_dir here, so the wheel really travels through upload_files
        engine_side = tmp_path / "engine-side"
        engine_side.mkdir()
        give_to_code_user(engine_side)
        async with DockerCommandLineCodeExecutor(
            rich_image, work_dir=local, bind_dir=engine_side
        ) as ex:
            await ex.upload_files([wheel.name])
            # Debian marks its Python externally managed (PEP 668): pip wants the flag
            # for any install, --user included; it is about Debian, not the hardening.
            events = await _events(
                ex, f"%pip install --user --break-system-packages --no-index {wheel.name}"
            )
            text = "".join(e.text for e in events if isinstance(e, Stream))
            assert not [e for e in events if isinstance(e, Error)], text
            assert "Successfully installed kbtiny-0.1" in text, text
            events = await _events(ex, "import kbtiny, os\n(kbtiny.ANSWER, kbtiny.__file__)")
            results = [e for e in events if isinstance(e, Result)]
            assert results, events
            value = results[0].data["text/plain"]
            assert "installed for the code user" in value
            assert hardening.HOME_DIR + "/.local/lib/" in value

    asyncio.run(main())


def test_the_quickstart_notebook_runs_under_the_hardened_defaults(tmp_path: Path) -> None:
    name = DOCKER_RICH.ready()
    notebook = json.loads((REPO / "notebooks" / "quickstart.ipynb").read_text())
    notebook["cells"].append(
        {
            "cell_type": "code",
            "metadata": {},
            "execution_count": None,
            "outputs": [],
            "source": STATUS_PROBE,
        }
    )
    source = tmp_path / "quickstart-hardened.ipynb"
    source.write_text(json.dumps(notebook))
    out = tmp_path / "out.ipynb"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "jupyter",
            "execute",
            f"--kernel_name={name}",
            f"--output={out.with_suffix('')}",
            str(source),
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        timeout=300,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(out.read_text())
    errors = [
        o for c in result["cells"] for o in c.get("outputs", []) if o["output_type"] == "error"
    ]
    assert [e["ename"] for e in errors] == ["ZeroDivisionError"]  # the notebook's own example
    texts = [
        "".join(o.get("text", "")) + "".join(o.get("data", {}).get("text/plain", ""))
        for c in result["cells"]
        for o in c.get("outputs", [])
    ]
    joined = "".join(texts)
    assert "42" in joined and "12.566371" in joined and "BRIDGED!" in joined
    uid, cap_eff, no_new_privs, home, home_ok, workspace_ok = texts[-1].split()
    assert uid != "0" and cap_eff == "0000000000000000" and no_new_privs == "1"
    assert home == hardening.HOME_DIR and home_ok == "True" and workspace_ok == "True"
