"""``kernel-bridge install``: the kernel.json it writes, and every refusal before writing."""

from __future__ import annotations

import json
import sys
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from kernel_bridge.kernelspecs import LOGO_FILES, RESOURCES_DIR

HEAD = ["python", "-m", "kernel_bridge", "-f", "{connection_file}"]


def spec_of(prefix: Path, name: str) -> dict[str, Any]:
    path = prefix / "share" / "jupyter" / "kernels" / name / "kernel.json"
    spec: dict[str, Any] = json.loads(path.read_text())
    return spec


def tree(path: Path) -> list[str]:
    return sorted(str(p.relative_to(path)) for p in path.rglob("*")) if path.exists() else []


# --- parse the flags with the kernel's own application: traits must exist and be typed ---


def parse_flags(argv: list[str]) -> dict[str, dict[str, Any]]:
    """Parse a kernel.json argv's flags exactly as ``python -m kernel_bridge`` will."""
    from kernel_bridge.kernelapp import BridgeKernelApp

    assert argv[:5] == HEAD
    app = BridgeKernelApp()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        # the one JSON object form for a Dict trait is the only deprecated form we use
        warnings.filterwarnings("ignore", message="--extra_volumes=", category=DeprecationWarning)
        app.register_executor_classes(argv[5:])
        app.parse_command_line(argv[5:])
    classes = {cls.__name__: cls for cls in app.classes}
    out: dict[str, dict[str, Any]] = {}
    for section, values in app.config.items():
        assert section in classes, f"{section} is not a configurable class of the kernel"
        unknown = set(values) - set(classes[section].class_trait_names(config=True))
        assert not unknown, f"{section} has no configurable traits {unknown}"
        out[section] = dict(values)
    return out


# --- successful installs ------------------------------------------------------------------


def test_local_default_spec(cli: Callable[..., Any], prefix: Path) -> None:
    result = cli("install", "--prefix", str(prefix))
    assert result.code == 0, result.err
    assert "kernel-bridge-local" in result.out
    spec = spec_of(prefix, "kernel-bridge-local")
    assert spec == {
        "argv": [*HEAD, "--BridgeKernel.executor=local"],
        "display_name": "Python (kernel_bridge: local)",
        "language": "python",
        "interrupt_mode": "signal",
        "metadata": {"kernel_bridge": {"executor": "local"}, "debugger": True},
        "kernel_protocol_version": "5.5",
    }
    spec_dir = prefix / "share" / "jupyter" / "kernels" / "kernel-bridge-local"
    assert sorted(p.name for p in spec_dir.iterdir()) == sorted(["kernel.json", *LOGO_FILES])
    for logo in LOGO_FILES:
        assert (spec_dir / logo).read_bytes() == (RESOURCES_DIR / logo).read_bytes()


def test_local_options_and_functions_paths_made_absolute(
    cli: Callable[..., Any], prefix: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    work = tmp_path / "work"
    work.mkdir()
    (work / "tools.py").write_text("def f():\n    return 1\n")
    monkeypatch.chdir(work)
    result = cli(
        "install", "--executor", "local", "--name", "My.Local_1", "--display-name", "Mine",
        "--prefix", str(prefix), "--functions", "tools.py", "pkg.mod:helper",
        "--functions-module", "helpers", "--cell-timeout", "2.5",
        "--python", sys.executable, "--cwd", ".",
    )  # fmt: skip
    assert result.code == 0, result.err
    spec = spec_of(prefix, "my.local_1")  # Jupyter names are lowercase
    assert spec["display_name"] == "Mine"
    assert spec["argv"] == [
        *HEAD,
        "--BridgeKernel.executor=local",
        f"--BridgeKernel.functions={work / 'tools.py'}",
        "--BridgeKernel.functions=pkg.mod:helper",
        "--BridgeKernel.functions_module=helpers",
        "--BridgeKernel.cell_timeout=2.5",
        f"--LocalExecutor.python={sys.executable}",
        f"--LocalExecutor.cwd={work}",
    ]
    flags = parse_flags(spec["argv"])
    assert flags["BridgeKernel"]["functions"] == [str(work / "tools.py"), "pkg.mod:helper"]
    assert flags["BridgeKernel"]["cell_timeout"] == 2.5


def test_docker_spec_flags_parse_as_traitlets(
    cli: Callable[..., Any], prefix: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    result = cli(
        "install", "--executor", "docker", "--name", "kb-docker", "--prefix", str(prefix),
        "--image", "kb-python:latest", "--memory", "2G", "--cpus", "1.5", "--pids-limit", "128",
        "--network", "none", "--user-id", "1000:1000", "--read-only", "--profile", "strict",
        "--volume", "./data:/data:ro", "--volume", "/srv/x:/x", "--volume", "cache:/cache",
        "--init-command", "pip install -q rich", "--cell-timeout", "60",
    )  # fmt: skip
    assert result.code == 0, result.err
    spec = spec_of(prefix, "kb-docker")
    assert spec["metadata"]["kernel_bridge"] == {"executor": "docker"}
    assert spec["display_name"] == "Python (kernel_bridge: docker, kb-python:latest)"
    flags = parse_flags(spec["argv"])
    assert flags["BridgeKernel"]["executor"] == "docker"
    assert flags["BridgeKernel"]["cell_timeout"] == 60.0
    docker = flags["DockerCommandLineCodeExecutor"]
    assert docker["image"] == "kb-python:latest"
    assert docker["mem_limit"] == "2g"
    assert docker["cpus"] == 1.5
    assert docker["pids_limit"] == 128
    assert docker["network_mode"] == "none"
    assert docker["user"] == "1000:1000"
    assert docker["read_only"] is True
    assert docker["profile"] == "strict"
    assert docker["extra_volumes"] == {
        str(tmp_path / "data"): {"bind": "/data", "mode": "ro"},
        "/srv/x": {"bind": "/x", "mode": "rw"},
        "cache": {"bind": "/cache", "mode": "rw"},
    }
    assert docker["init_command"] == "pip install -q rich"


def test_docker_engine_options_name_an_engine_without_environment(
    cli: Callable[..., Any], prefix: Path, tmp_path: Path
) -> None:
    certs = tmp_path / "certs"
    certs.mkdir()
    for name in ("ca.pem", "cert.pem", "key.pem"):
        (certs / name).write_text("-----BEGIN CERTIFICATE-----\n")
    result = cli(
        "install", "--executor", "docker", "--name", "kb-remote", "--prefix", str(prefix),
        "--image", "kb-python@sha256:" + "ab" * 32,
        "--docker-host", "tcp://gpu-box.example:2376", "--tls-cert-path", str(certs),
    )  # fmt: skip
    assert result.code == 0, result.err
    docker = parse_flags(spec_of(prefix, "kb-remote")["argv"])["DockerCommandLineCodeExecutor"]
    assert docker["docker_host"] == "tcp://gpu-box.example:2376"
    assert docker["tls_cert_path"] == str(certs)
    assert docker["image"] == "kb-python@sha256:" + "ab" * 32
    assert "env" not in spec_of(prefix, "kb-remote")


def test_aca_spec_has_endpoint_and_no_secrets(
    cli: Callable[..., Any], prefix: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ACA_TOKEN", "super-secret-token-value")
    endpoint = "https://westus2.dynamicsessions.io/subscriptions/s/resourceGroups/g/sessionPools/p"
    result = cli(
        "install", "--executor", "aca", "--endpoint", endpoint, "--timeout", "90",
        "--api-version", "2025-10-02-preview", "--prefix", str(prefix),
    )  # fmt: skip
    assert result.code == 0, result.err
    spec = spec_of(prefix, "kernel-bridge-aca")
    assert "env" not in spec
    flags = parse_flags(spec["argv"])
    assert flags["ACADynamicSessionsCodeExecutor"]["pool_management_endpoint"] == endpoint
    assert flags["ACADynamicSessionsCodeExecutor"]["timeout"] == 90
    assert flags["ACADynamicSessionsCodeExecutor"]["api_version"] == "2025-10-02-preview"
    text = (prefix / "share/jupyter/kernels/kernel-bridge-aca/kernel.json").read_text()
    assert "super-secret-token-value" not in text


def test_user_install_names_this_interpreter(
    cli: Callable[..., Any], prefix: Path, tmp_path: Path
) -> None:
    result = cli("install", "--user", "--name", "kb-user")
    assert result.code == 0, result.err
    spec = json.loads((tmp_path / "userdata" / "kernels" / "kb-user" / "kernel.json").read_text())
    # a user spec lives outside any environment: it must name the interpreter with kernel_bridge
    assert spec["argv"][0] == sys.executable
    assert spec["argv"][1:5] == HEAD[1:]


def test_reinstall_replaces_our_own_spec(cli: Callable[..., Any], prefix: Path) -> None:
    assert cli("install", "--prefix", str(prefix), "--display-name", "one").code == 0
    assert cli("install", "--prefix", str(prefix), "--display-name", "two").code == 0
    assert spec_of(prefix, "kernel-bridge-local")["display_name"] == "two"


def test_real_console_entry_point_runs(prefix: Path) -> None:
    import subprocess

    proc = subprocess.run(
        [sys.executable, "-m", "kernel_bridge.cli", "install", "--executor", "docker",
         "--image", "img", "--prefix", str(prefix)],
        capture_output=True, text=True, timeout=120, cwd=Path(__file__).resolve().parents[2],
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert spec_of(prefix, "kernel-bridge-docker")["argv"][-1] == (
        "--DockerCommandLineCodeExecutor.image=img"
    )


# --- refusals: exit 2, one message naming the bad value, nothing written -----------------

BAD_INPUTS: list[tuple[list[str], list[str]]] = [
    (["--executor", "kubernetes"], ["'kubernetes'", "local", "docker", "aca"]),
    (["--executor", "docker"], ["--image"]),
    (["--executor", "aca"], ["--endpoint"]),
    (["--name", "Bad Name!"], ["'Bad Name!'", "[a-z0-9._-]"]),
    (["--name", "kb/../x"], ["'kb/../x'"]),
    (
        ["--executor", "docker", "--image", "i", "--volume", "justonepath"],
        ["'justonepath'", "HOST:CONTAINER"],
    ),
    (
        ["--executor", "docker", "--image", "i", "--volume", "/a:relative"],
        ["'/a:relative'", "absolute"],
    ),
    (
        ["--executor", "docker", "--image", "i", "--volume", "/a:/b:rx"],
        ["'/a:/b:rx'", "'ro' or 'rw'"],
    ),
    (["--executor", "docker", "--image", "i", "--volume", ":/b"], ["':/b'"]),
    (["--executor", "docker", "--image", "i", "--volume", "a b:/b"], ["'a b:/b'", "volume name"]),
    (["--executor", "aca", "--endpoint", "https://x/p", "--timeout", "0"], ["--timeout", "0"]),
    (["--executor", "aca", "--endpoint", "https://x/p", "--timeout", "1.5"], ["'1.5'"]),
    (
        ["--executor", "aca", "--endpoint", "https://x/p", "--api-version", "2030-01-01"],
        ["'2030-01-01'", "2025-10-02-preview", "auto"],
    ),
    (["--executor", "docker", "--image", "i", "--memory", "lots"], ["'lots'", "2g"]),
    (["--executor", "docker", "--image", "i", "--cpus", "0"], ["--cpus", "0"]),
    (["--executor", "docker", "--image", "i", "--pids-limit", "-3"], ["--pids-limit", "-3"]),
    (["--executor", "docker", "--image", "i", "--cpus", "many"], ["'many'"]),
    (["--executor", "docker", "--image", "i@sha256:12"], ["'i@sha256:12'", "64 hex"]),
    (["--executor", "docker", "--image", "i", "--docker-host", "http://x"], ["'http://x'"]),
    (
        ["--executor", "docker", "--image", "i", "--docker-host", "ssh://u:pw@host"],
        ["must not contain a password"],
    ),
    (
        ["--executor", "docker", "--image", "i", "--tls-cert-path", "/tmp"],
        ["--tls-cert-path needs --docker-host"],
    ),
    (
        [
            "--executor",
            "docker",
            "--image",
            "i",
            "--docker-host",
            "tcp://h:2376",
            "--tls-cert-path",
            "/no/such/certs",
        ],
        ["'/no/such/certs'", "ca.pem, cert.pem, key.pem"],
    ),
    (
        ["--executor", "aca", "--endpoint", "https://x/p", "--docker-host", "tcp://h:1"],
        ["--docker-host", "docker"],
    ),
    (["--functions", "no_such_file.py"], ["'no_such_file.py'", "does not exist"]),
    (["--functions", "not a spec!"], ["'not a spec!'"]),
    (["--functions", "pkg.module"], ["'pkg.module'", "package.module:function"]),
    (["--functions", "def f():\n    pass"], ["def f()", ".py file"]),
    (["--functions-module", "1bad"], ["'1bad'", "identifier"]),
    (["--cell-timeout", "-1"], ["--cell-timeout", "-1"]),
    (["--cwd", "/no/such/dir"], ["'/no/such/dir'"]),
    (["--python", "/no/such/python"], ["'/no/such/python'"]),
    (["--image", "python:3.11"], ["--image", "docker"]),
    (["--executor", "aca", "--endpoint", "e", "--memory", "1g"], ["--memory", "docker"]),
    (["--executor", "aca", "--endpoint", "ftp://x/y"], ["'ftp://x/y'", "http"]),
    (["--kernel-arg", "nodashes"], ["'nodashes'"]),
    (["--user", "--sys-prefix"], ["--sys-prefix", "--user"]),
]


@pytest.mark.parametrize(("args", "expected"), BAD_INPUTS, ids=[" ".join(a) for a, _ in BAD_INPUTS])
def test_bad_input_exits_2_and_writes_nothing(
    cli: Callable[..., Any],
    prefix: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    args: list[str],
    expected: list[str],
) -> None:
    monkeypatch.chdir(tmp_path)
    before = tree(tmp_path)
    location = [] if "--user" in args else ["--prefix", str(prefix)]
    result = cli("install", *args, *location)
    assert result.code == 2
    assert result.out == ""
    for fragment in expected:
        assert fragment in result.err
    assert "Traceback" not in result.err
    assert tree(tmp_path) == before


def test_endpoint_with_credentials_is_refused_without_echoing_them(
    cli: Callable[..., Any], prefix: Path
) -> None:
    for endpoint in (
        "https://pool.example/sessionPools/p?token=s3cr3t-value",
        "https://user:s3cr3t-value@pool.example/sessionPools/p",
    ):
        result = cli(
            "install", "--executor", "aca", "--endpoint", endpoint, "--prefix", str(prefix)
        )
        assert result.code == 2
        assert "--endpoint" in result.err and "credentials" in result.err
        assert "s3cr3t-value" not in result.err
        assert not prefix.exists()


def test_refuses_to_overwrite_a_foreign_spec(cli: Callable[..., Any], prefix: Path) -> None:
    foreign = prefix / "share" / "jupyter" / "kernels" / "python3"
    foreign.mkdir(parents=True)
    original = json.dumps(
        {"argv": ["python", "-m", "ipykernel_launcher", "-f", "{connection_file}"]}
    )
    (foreign / "kernel.json").write_text(original)
    result = cli("install", "--name", "python3", "--prefix", str(prefix))
    assert result.code == 2
    assert "'python3'" in result.err and "did not write" in result.err
    assert (foreign / "kernel.json").read_text() == original
    assert sorted(p.name for p in foreign.iterdir()) == ["kernel.json"]


def test_api_versions_mirror_the_aca_client() -> None:
    from kernel_bridge.executors.aca._client import API_VERSIONS
    from kernel_bridge.executors.aca.plugin import API_VERSIONS as ACA_API_VERSIONS

    assert ACA_API_VERSIONS == API_VERSIONS


def test_two_docker_specs_without_display_names_can_be_told_apart(
    cli: Callable[..., Any], prefix: Path
) -> None:
    for name, image in (("kb-slim", "python:3.12-slim"), ("kb-rich", "registry.example/ml:2")):
        args = ("--executor", "docker", "--image", image, "--name", name, "--prefix", str(prefix))
        assert cli("install", *args).code == 0
    endpoint = "https://r.dynamicsessions.io/subscriptions/s/resourceGroups/g/sessionPools/gpu"
    assert (
        cli("install", "--executor", "aca", "--endpoint", endpoint, "--prefix", str(prefix)).code
        == 0
    )
    names = {spec["name"]: spec["display_name"] for spec in json.loads(cli("list", "--json").out)}
    assert names["kb-slim"] == "Python (kernel_bridge: docker, python:3.12-slim)"
    assert names["kb-rich"] == "Python (kernel_bridge: docker, registry.example/ml:2)"
    assert names["kernel-bridge-aca"] == "Python (kernel_bridge: aca, gpu)"
