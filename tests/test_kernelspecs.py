"""kernel_bridge.kernelspecs as a library: validation, argv, the build hook's needs."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

from kernel_bridge.errors import ConfigurationError
from kernel_bridge.executors.docker.plugin import VolumeSpec, parse_volume
from kernel_bridge.executors.registry import executor_class, executor_plugins
from kernel_bridge.kernelspecs import (
    DEFAULT_DISPLAY_NAME,
    SpecOptions,
    default_install_location,
    find_bridge_kernelspecs,
    install_kernelspec,
    is_bridge_argv,
    kernel_json,
    validate_kernel_name,
    validate_options,
    write_kernelspec,
)

REPO = Path(__file__).resolve().parents[1]


def test_the_built_in_executors_are_found_by_entry_point() -> None:
    from importlib.metadata import entry_points

    registered = {e.name: e.value for e in entry_points(group="kernel_bridge.executors")}
    assert registered["local"] == "kernel_bridge.executors.local.plugin:plugin"
    assert registered["docker"] == "kernel_bridge.executors.docker.plugin:plugin"
    assert registered["aca"] == "kernel_bridge.executors.aca.plugin:plugin"
    assert {"local", "docker", "aca"} <= set(executor_plugins())


def test_debugger_flag_matches_what_each_executor_can_host() -> None:
    needed = {"aca": {"endpoint": "https://x.example/pools/p"}, "docker": {"image": "i:1"}}
    for kind in ("local", "docker", "aca"):
        plugin = executor_plugins()[kind]
        assert plugin.can_debug is executor_class(kind).can_debug, kind
        options = SpecOptions(executor=kind, executor_options=needed.get(kind, {}))
        spec = kernel_json(validate_options(options))
        assert spec["metadata"]["debugger"] is plugin.can_debug


def test_default_display_names_tell_images_and_pools_apart() -> None:
    def display(kind: str, **values: str) -> str:
        options = validate_options(SpecOptions(executor=kind, executor_options=values))
        return str(kernel_json(options)["display_name"])

    assert display("local") == "Python (kernel_bridge: local)"
    slim = display("docker", image="python:3.12-slim")
    rich = display("docker", image="kernel-bridge-test/rich:bookworm-3")
    assert slim == "Python (kernel_bridge: docker, python:3.12-slim)"
    assert rich == "Python (kernel_bridge: docker, kernel-bridge-test/rich:bookworm-3)"
    pools = "https://westeurope.dynamicsessions.io/subscriptions/s/resourceGroups/g/sessionPools"
    assert display("aca", endpoint=f"{pools}/pool-a") == "Python (kernel_bridge: aca, pool-a)"
    assert display("aca", endpoint=f"{pools}/pool-b/") == "Python (kernel_bridge: aca, pool-b)"
    given = SpecOptions(executor="docker", display_name="Mine", executor_options={"image": "i"})
    assert kernel_json(validate_options(given))["display_name"] == "Mine"


def test_module_imports_with_the_standard_library_only() -> None:
    """hatch_build.py loads the file by path in a build env that has only hatchling."""
    path = str(REPO / "kernel_bridge" / "kernelspecs.py")
    code = (
        "import importlib.util, sys\n"
        f"spec = importlib.util.spec_from_file_location('ks', {path!r})\n"
        "m = importlib.util.module_from_spec(spec); sys.modules['ks'] = m\n"
        "spec.loader.exec_module(m)\n"
        "bad = sorted(n for n in sys.modules if n.split('.')[0] in "
        "('kernel_bridge', 'jupyter_client', 'traitlets', 'ipykernel', 'zmq'))\n"
        "assert not bad, bad\n"
        "content = m.bridge_kernel_json(m.SpecOptions(), 'python', executor_args=(), "
        "display_name='x', debugger=True)\n"
        "print(content['argv'][2])\n"
    )
    proc = subprocess.run([sys.executable, "-I", "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "kernel_bridge"


def test_parse_volume() -> None:
    assert parse_volume("/a:/b") == VolumeSpec("/a", "/b", "rw")
    assert parse_volume("/a:/b:ro") == VolumeSpec("/a", "/b", "ro")
    with pytest.raises(ConfigurationError, match="'/a:/b:x'"):
        parse_volume("/a:/b:x")


def test_validate_kernel_name_lowercases() -> None:
    assert validate_kernel_name("KB.Docker_2-x") == "kb.docker_2-x"
    with pytest.raises(ConfigurationError, match="'a b'"):
        validate_kernel_name("a b")


def test_validate_options_normalises(tmp_path: Path) -> None:
    options = SpecOptions(executor="docker", executor_options={"image": "i", "memory": "512M"})
    assert validate_options(options).executor_options["memory"] == "512m"
    with pytest.raises(ConfigurationError, match="unknown executor 'k8s'"):
        validate_options(SpecOptions(executor="k8s"))
    with pytest.raises(ConfigurationError, match="--image applies only to --executor docker"):
        validate_options(SpecOptions(executor="aca", executor_options={"image": "i"}))
    with pytest.raises(ConfigurationError, match="--colour is not an option of --executor local"):
        validate_options(SpecOptions(executor="local", executor_options={"colour": "red"}))


def test_is_bridge_argv() -> None:
    assert is_bridge_argv(["/usr/bin/python3", "-m", "kernel_bridge", "-f", "{connection_file}"])
    assert not is_bridge_argv(["python", "-m", "ipykernel_launcher", "-f", "x"])
    assert not is_bridge_argv(["python", "-m", "kernel_bridge.cli"])
    assert not is_bridge_argv("python -m kernel_bridge")


def test_template_matches_library_output() -> None:
    spec = kernel_json(SpecOptions(display_name=DEFAULT_DISPLAY_NAME))
    assert json.loads((REPO / "kernelspec" / "kernel.json").read_text()) == spec


def test_write_kernelspec_and_install_with_explicit_python(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    written = write_kernelspec(tmp_path / "spec", SpecOptions(), "/opt/py/bin/python")
    assert json.loads((written / "kernel.json").read_text())["argv"][0] == "/opt/py/bin/python"
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "p" / "share" / "jupyter"))
    dest = install_kernelspec(
        "kb-lib", SpecOptions(executor="aca", executor_options={"endpoint": "https://x/pools/p"}),
        prefix=str(tmp_path / "p"), python="/opt/py/bin/python",
    )  # fmt: skip
    assert Path(dest) == tmp_path / "p" / "share" / "jupyter" / "kernels" / "kb-lib"
    found = {s.name: s for s in find_bridge_kernelspecs()}
    assert found["kb-lib"].executor == "aca"
    assert found["kb-lib"].path == dest


def test_default_install_location_is_a_known_value() -> None:
    expected = "sys-prefix" if sys.prefix != sys.base_prefix else None
    location = default_install_location()
    assert location in ("sys-prefix", "user", "system")
    if expected:
        assert location == expected


def test_build_hook_writes_the_spec(tmp_path: Path) -> None:
    """Run hatch_build.CustomHook.initialize against a copy of the sources it needs."""
    pytest.importorskip("hatchling")
    (tmp_path / "kernel_bridge" / "resources").mkdir(parents=True)
    (tmp_path / "kernel_bridge" / "kernelspecs.py").write_bytes(
        (REPO / "kernel_bridge" / "kernelspecs.py").read_bytes()
    )
    for logo in ("logo-32x32.png", "logo-64x64.png", "logo-svg.svg"):
        (tmp_path / "kernel_bridge" / "resources" / logo).write_bytes(
            (REPO / "kernel_bridge" / "resources" / logo).read_bytes()
        )
    spec = importlib.util.spec_from_file_location("kb_hatch_build", REPO / "hatch_build.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)

    class FakeHook(module.CustomHook):  # type: ignore[name-defined,misc]
        def __init__(self) -> None:
            pass

        root = str(tmp_path)
        target_name = "wheel"

    FakeHook().initialize("standard", {})
    out = tmp_path / "build" / "data_kernelspec" / "kernel-bridge-local"
    assert sorted(p.name for p in out.iterdir()) == sorted(
        ["kernel.json", "logo-32x32.png", "logo-64x64.png", "logo-svg.svg"]
    )
    assert json.loads((out / "kernel.json").read_text()) == json.loads(
        (REPO / "kernelspec" / "kernel.json").read_text()
    )
    FakeHook().clean(["standard"])
    assert not (tmp_path / "build" / "data_kernelspec").exists()
