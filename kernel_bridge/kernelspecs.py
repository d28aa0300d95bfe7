"""Build, install, find and remove kernel_bridge kernelspecs.

A kernelspec is a directory holding ``kernel.json`` and the three logos. Ours run
``python -m kernel_bridge -f {connection_file}`` followed by traitlets flags that choose and
configure the executor (``--BridgeKernel.executor=docker``, ``--DockerCommandLineCodeExecutor
.image=...``). Used by the ``kernel-bridge`` CLI, by the tests' fixtures and by the wheel's
build hook (``hatch_build.py``), which loads this file *by path* before the package is
installed: so this module imports only the standard library at import time (jupyter_client
and kernel_bridge.errors are imported inside the functions that need them).

No secret is ever written: there is no ``env`` block and the ACA endpoint may not carry
credentials or a query string; tokens come from the environment when the kernel runs.
"""

from __future__ import annotations

import itertools
import json
import keyword
import os
import re
import shutil
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from kernel_bridge.errors import ConfigurationError

__all__ = [
    "DEFAULT_DISPLAY_NAME",
    "DEFAULT_SPEC_NAME",
    "EXECUTOR_KINDS",
    "KERNEL_MODULE",
    "LOGO_FILES",
    "RESOURCES_DIR",
    "BridgeKernelSpec",
    "SpecOptions",
    "VolumeSpec",
    "default_install_location",
    "find_bridge_kernelspecs",
    "install_kernelspec",
    "is_bridge_argv",
    "kernel_argv",
    "kernel_json",
    "parse_volume",
    "remove_kernelspec",
    "validate_kernel_name",
    "validate_options",
    "write_kernelspec",
]

#: The executors a spec can choose (mirrors ``kernel_bridge.executors.EXECUTOR_KINDS``;
#: kept here so the build hook needs nothing but this file).
EXECUTOR_KINDS: tuple[str, ...] = ("local", "docker", "aca")

#: The ACA api-versions a spec can choose (mirrors
#: ``kernel_bridge.executors.aca._client.API_VERSIONS``, for the same reason).
ACA_API_VERSIONS: tuple[str, ...] = (
    "2024-02-02-preview",
    "2024-10-02-preview",
    "2025-02-02-preview",
    "2025-10-02-preview",
    "auto",
)

#: The module the kernel runs as (``python -m kernel_bridge``).
KERNEL_MODULE = "kernel_bridge"

#: Name and display name of the spec shipped in the wheel.
DEFAULT_SPEC_NAME = "kernel-bridge-local"
DEFAULT_DISPLAY_NAME = "Python (kernel_bridge: local)"

#: Package data copied next to every kernel.json.
RESOURCES_DIR: Path = Path(__file__).resolve().parent / "resources"
LOGO_FILES: tuple[str, ...] = ("logo-32x32.png", "logo-64x64.png", "logo-svg.svg")

_NAME_RE = re.compile(r"^[a-z0-9._-]+$")
_VOLUME_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
_MEMORY_RE = re.compile(r"^[0-9]+(\.[0-9]+)?[bkmg]?$", re.IGNORECASE)
_REFERENCE_RE = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*:[A-Za-z_]\w*$")
_DIGEST_IMAGE_RE = re.compile(r"^[^@\s]+@sha256:[0-9a-f]{64}$")
_DOCKER_HOST_SCHEMES = ("unix", "tcp", "ssh", "npipe")
_TLS_FILES = ("ca.pem", "cert.pem", "key.pem")

# Which options belong to which executor: (attribute, command-line flag, executor).
_EXECUTOR_OPTIONS: tuple[tuple[str, str, str], ...] = (
    ("python", "--python", "local"),
    ("cwd", "--cwd", "local"),
    ("image", "--image", "docker"),
    ("memory", "--memory", "docker"),
    ("cpus", "--cpus", "docker"),
    ("pids_limit", "--pids-limit", "docker"),
    ("network", "--network", "docker"),
    ("user", "--user-id", "docker"),
    ("read_only", "--read-only", "docker"),
    ("profile", "--profile", "docker"),
    ("mount_notebook_dir", "--mount-notebook-dir", "docker"),
    ("volumes", "--volume", "docker"),
    ("init_command", "--init-command", "docker"),
    ("docker_host", "--docker-host", "docker"),
    ("tls_cert_path", "--tls-cert-path", "docker"),
    ("endpoint", "--endpoint", "aca"),
    ("timeout", "--timeout", "aca"),
    ("api_version", "--api-version", "aca"),
)


def _error(message: str) -> ConfigurationError:
    """Build the ConfigurationError to raise (imported lazily: see the module docstring)."""
    from kernel_bridge.errors import ConfigurationError

    return ConfigurationError(message)


@dataclass(frozen=True)
class VolumeSpec:
    """One bind mount for the Docker executor: ``HOST:CONTAINER[:ro|rw]``."""

    host: str
    container: str
    mode: str = "rw"


def parse_volume(text: str) -> VolumeSpec:
    """Parse ``HOST:CONTAINER[:ro|rw]``; called for every ``--volume`` before anything is written.

    As with ``docker run -v``, a HOST starting with ``/``, ``.`` or ``~`` is a path (made
    absolute against the current directory) and a bare name is a named Docker volume. The
    container path must be absolute. Raises ConfigurationError naming the bad value.
    """
    parts = text.split(":")
    hint = "expected HOST:CONTAINER or HOST:CONTAINER:ro|rw, e.g. ./data:/data:ro"
    if len(parts) not in (2, 3) or not parts[0] or not parts[1]:
        raise _error(f"invalid --volume {text!r}: {hint}")
    host, container = parts[0], parts[1]
    mode = parts[2] if len(parts) == 3 else "rw"
    if mode not in ("ro", "rw"):
        raise _error(f"invalid --volume {text!r}: mode {mode!r} must be 'ro' or 'rw'")
    if not container.startswith("/"):
        raise _error(
            f"invalid --volume {text!r}: the container path {container!r} must be absolute"
        )
    if host.startswith(("/", ".", "~")):
        host = os.path.abspath(os.path.expanduser(host))
    elif not _VOLUME_NAME_RE.match(host):
        raise _error(
            f"invalid --volume {text!r}: {host!r} is neither a path (start it with /, ./ "
            "or ~) nor a Docker volume name"
        )
    return VolumeSpec(host=host, container=container, mode=mode)


@dataclass(frozen=True)
class SpecOptions:
    """Everything a kernel.json can say; the CLI's ``install`` options map one to one.

    Fields that do not apply to ``executor`` must stay at their defaults (validate_options
    rejects them), so a spec never carries silently ignored settings.
    """

    executor: str = "local"
    display_name: str | None = None
    functions: tuple[str, ...] = ()
    functions_module: str | None = None
    cell_timeout: float | None = None
    kernel_args: tuple[str, ...] = ()
    # local
    python: str | None = None
    cwd: str | None = None
    # docker
    image: str | None = None
    memory: str | None = None
    cpus: float | None = None
    pids_limit: int | None = None
    network: str | None = None
    user: str | None = None
    read_only: bool = False
    profile: str | None = None
    mount_notebook_dir: bool = False
    volumes: tuple[VolumeSpec, ...] = field(default_factory=tuple)
    init_command: str | None = None
    docker_host: str | None = None
    tls_cert_path: str | None = None
    # aca
    endpoint: str | None = None
    timeout: int | None = None
    api_version: str | None = None


def validate_kernel_name(name: str) -> str:
    """Check a kernelspec name against Jupyter's rule and return it lowercased.

    Called before anything is written; raises ConfigurationError naming the bad value.
    """
    lowered = name.lower()
    if not _NAME_RE.match(lowered):
        raise _error(
            f"invalid kernel name {name!r}: use only letters, digits, '.', '_' and '-' "
            "(Jupyter's [a-z0-9._-] rule), e.g. kernel-bridge-docker"
        )
    return lowered


def _is_path_like(value: str) -> bool:
    return value.endswith(".py") or os.sep in value or "/" in value or os.path.exists(value)


def _resolve_functions(specs: tuple[str, ...]) -> tuple[str, ...]:
    """Make file entries absolute (they must exist); check 'package.module:function' syntax.

    Mirrors the forms kernel_bridge.functions accepts, minus source text (which belongs in
    a file, not in kernel.json).
    """
    resolved = []
    for spec in specs:
        if _is_path_like(spec):
            path = Path(spec).expanduser()
            if not path.is_file():
                raise _error(
                    f"--functions file {spec!r} does not exist (or is not a file); give an "
                    "existing .py file or a 'package.module:function' reference"
                )
            resolved.append(str(path.resolve()))
        elif _REFERENCE_RE.match(spec):
            resolved.append(spec)
        else:
            raise _error(
                f"invalid --functions value {spec!r}: give an existing .py file or a "
                "'package.module:function' reference (put function source in a .py file)"
            )
    return tuple(resolved)


def _positive(value: float | None, flag: str) -> None:
    if value is not None and not value > 0:
        raise _error(f"invalid {flag} {value!r}: give a number of seconds greater than 0")


def validate_options(options: SpecOptions) -> SpecOptions:
    """Check every option and return a normalised copy (absolute paths, lowercased memory).

    Called by install_kernelspec before anything is written, and by the CLI. Raises
    ConfigurationError with one message naming the bad value and what is accepted.
    """
    if options.executor not in EXECUTOR_KINDS:
        raise _error(
            f"unknown executor {options.executor!r}; choose one of: {', '.join(EXECUTOR_KINDS)}"
        )
    defaults = SpecOptions()
    for attr, flag, kind in _EXECUTOR_OPTIONS:
        if kind != options.executor and getattr(options, attr) != getattr(defaults, attr):
            raise _error(
                f"{flag} applies only to --executor {kind}, not to --executor {options.executor}"
            )
    changes: dict[str, Any] = {"functions": _resolve_functions(options.functions)}
    if options.functions_module is not None and (
        not options.functions_module.isidentifier() or keyword.iskeyword(options.functions_module)
    ):
        raise _error(
            f"invalid --functions-module {options.functions_module!r}: "
            "give a Python identifier, e.g. functions"
        )
    _positive(options.cell_timeout, "--cell-timeout")
    for arg in options.kernel_args:
        if not arg.startswith("--"):
            raise _error(
                f"invalid --kernel-arg {arg!r}: give a traitlets flag such as "
                "--DockerCommandLineCodeExecutor.auto_remove=False"
            )
    if options.display_name is not None and not options.display_name.strip():
        raise _error("invalid --display-name '': give a non-empty name")

    if options.executor == "local":
        if options.python is not None and ("/" in options.python or os.sep in options.python):
            python = Path(options.python).expanduser()
            if not (python.is_file() and os.access(python, os.X_OK)):
                raise _error(f"--python {options.python!r} is not an executable file")
            changes["python"] = str(python.absolute())
        if options.cwd is not None:
            cwd = Path(options.cwd).expanduser()
            if not cwd.is_dir():
                raise _error(f"--cwd {options.cwd!r} is not an existing directory")
            changes["cwd"] = str(cwd.resolve())
    elif options.executor == "docker":
        if not options.image:
            raise _error(
                "--executor docker needs --image IMAGE (an image with python3, "
                "e.g. --image python:3.11-slim)"
            )
        if options.memory is not None:
            if not _MEMORY_RE.match(options.memory):
                raise _error(f"invalid --memory {options.memory!r}: give a size such as 512m or 2g")
            changes["memory"] = options.memory.lower()
        if options.cpus is not None and not options.cpus > 0:
            raise _error(f"invalid --cpus {options.cpus!r}: give a number greater than 0")
        if options.pids_limit is not None and options.pids_limit <= 0:
            raise _error(
                f"invalid --pids-limit {options.pids_limit!r}: give a whole number above 0"
            )
        if options.profile is not None and options.profile not in ("default", "strict"):
            raise _error(f"invalid --profile {options.profile!r}: choose default or strict")
        for value, flag in ((options.network, "--network"), (options.user, "--user-id")):
            if value is not None and not value.strip():
                raise _error(f"invalid {flag} {value!r}: give a non-empty value")
        if "@" in options.image and not _DIGEST_IMAGE_RE.match(options.image):
            raise _error(
                f"invalid --image {options.image!r}: a pinned image is NAME@sha256:<64 hex "
                "digits>, e.g. python@sha256:0123...; or give NAME:TAG"
            )
        changes.update(_validate_engine(options))
    else:  # aca
        if not options.endpoint:
            raise _error(
                "--executor aca needs --endpoint URL (the session pool's management "
                "endpoint, https://<region>.dynamicsessions.io/subscriptions/.../sessionPools/<name>)"
            )
        url = urlsplit(options.endpoint)
        if url.scheme not in ("http", "https") or not url.netloc:
            raise _error(
                f"invalid --endpoint {options.endpoint!r}: give an http(s) URL of the "
                "session pool's management endpoint"
            )
        if url.username is not None or url.password is not None or url.query or url.fragment:
            raise _error(
                "invalid --endpoint: it must not contain credentials, a query string or a "
                "fragment (kernel.json is not a place for secrets; the token is obtained "
                "from the environment when the kernel runs)"
            )
        if options.timeout is not None and options.timeout < 1:
            raise _error(
                f"invalid --timeout {options.timeout!r}: give a whole number of seconds >= 1"
            )
        if options.api_version is not None and options.api_version not in ACA_API_VERSIONS:
            raise _error(
                f"invalid --api-version {options.api_version!r}: use one of "
                + ", ".join(ACA_API_VERSIONS)
            )
    return _replace(options, changes)


def _validate_engine(options: SpecOptions) -> dict[str, Any]:
    """Check --docker-host and --tls-cert-path; return the normalised values."""
    changes: dict[str, Any] = {}
    if options.docker_host is not None:
        url = urlsplit(options.docker_host)
        if url.scheme not in _DOCKER_HOST_SCHEMES or not (url.netloc or url.path):
            raise _error(
                f"invalid --docker-host {options.docker_host!r}: give an engine address such "
                "as tcp://host:2376, ssh://user@host or unix:///var/run/docker.sock"
            )
        if url.password is not None or url.query or url.fragment:
            raise _error(
                "invalid --docker-host: it must not contain a password, a query string or a "
                "fragment (kernel.json is not a place for secrets; use ssh keys or TLS "
                "certificates)"
            )
    if options.tls_cert_path is not None:
        if options.docker_host is None:
            raise _error(
                "--tls-cert-path needs --docker-host (the engine the certificates are for), "
                "e.g. --docker-host tcp://engine.example:2376"
            )
        path = Path(options.tls_cert_path).expanduser()
        missing = [name for name in _TLS_FILES if not (path / name).is_file()]
        if missing:
            raise _error(
                f"invalid --tls-cert-path {options.tls_cert_path!r}: it lacks "
                f"{', '.join(missing)}; give a directory holding ca.pem, cert.pem and key.pem "
                "(as DOCKER_CERT_PATH)"
            )
        changes["tls_cert_path"] = str(path.resolve())
    return changes


def _replace(options: SpecOptions, changes: dict[str, Any]) -> SpecOptions:
    from dataclasses import replace

    return replace(options, **changes)


def _fmt(value: float) -> str:
    return repr(int(value)) if float(value).is_integer() else repr(float(value))


def kernel_argv(options: SpecOptions, python: str = "python") -> list[str]:
    """Return the kernel's command line for already validated ``options``.

    ``python`` is argv[0]: the literal "python" (jupyter_client substitutes the launching
    interpreter) or an absolute interpreter path.
    """
    argv = [python, "-m", KERNEL_MODULE, "-f", "{connection_file}"]
    argv.append(f"--BridgeKernel.executor={options.executor}")
    argv += [f"--BridgeKernel.functions={spec}" for spec in options.functions]
    if options.functions_module is not None:
        argv.append(f"--BridgeKernel.functions_module={options.functions_module}")
    if options.cell_timeout is not None:
        argv.append(f"--BridgeKernel.cell_timeout={_fmt(options.cell_timeout)}")
    if options.executor == "local":
        if options.python is not None:
            argv.append(f"--LocalExecutor.python={options.python}")
        if options.cwd is not None:
            argv.append(f"--LocalExecutor.cwd={options.cwd}")
    elif options.executor == "docker":
        docker = "--DockerCommandLineCodeExecutor."
        argv.append(f"{docker}image={options.image}")
        if options.memory is not None:
            argv.append(f"{docker}mem_limit={options.memory}")
        if options.cpus is not None:
            argv.append(f"{docker}cpus={_fmt(options.cpus)}")
        if options.pids_limit is not None:
            argv.append(f"{docker}pids_limit={options.pids_limit}")
        if options.network is not None:
            argv.append(f"{docker}network_mode={options.network}")
        if options.user is not None:
            argv.append(f"{docker}user={options.user}")
        if options.read_only:
            argv.append(f"{docker}read_only=True")
        if options.profile is not None:
            argv.append(f"{docker}profile={options.profile}")
        if options.mount_notebook_dir:
            argv.append(f"{docker}mount_notebook_dir=True")
        if options.volumes:
            # One JSON object for all volumes: traitlets parses it into the extra_volumes
            # Dict trait with nested {bind, mode} dicts whatever the trait's value_trait
            # (repeated HOST=VALUE flags would leave those values as strings).
            volumes = {v.host: {"bind": v.container, "mode": v.mode} for v in options.volumes}
            argv.append(f"{docker}extra_volumes={json.dumps(volumes, sort_keys=True)}")
        if options.init_command is not None:
            argv.append(f"{docker}init_command={options.init_command}")
        if options.docker_host is not None:
            argv.append(f"{docker}docker_host={options.docker_host}")
        if options.tls_cert_path is not None:
            argv.append(f"{docker}tls_cert_path={options.tls_cert_path}")
    else:
        aca = "--ACADynamicSessionsCodeExecutor."
        argv.append(f"{aca}pool_management_endpoint={options.endpoint}")
        if options.timeout is not None:
            argv.append(f"{aca}timeout={options.timeout}")
        if options.api_version is not None:
            argv.append(f"{aca}api_version={options.api_version}")
    argv += list(options.kernel_args)
    return argv


DEBUGGER_EXECUTORS = frozenset({"local", "docker"})
"""Executor kinds that can host the visual debugger (their ``can_debug``); kept here as
data because the wheel build loads this module on its own, without the package."""


def kernel_json(options: SpecOptions, python: str = "python") -> dict[str, Any]:
    """Return the kernel.json content for already validated ``options``."""
    display = options.display_name or f"Python (kernel_bridge: {options.executor})"
    return {
        "argv": kernel_argv(options, python),
        "display_name": display,
        "language": "python",
        "interrupt_mode": "signal",
        "metadata": {
            "kernel_bridge": {"executor": options.executor},
            "debugger": options.executor in DEBUGGER_EXECUTORS,
        },
        "kernel_protocol_version": "5.5",
    }


def write_kernelspec(directory: Path, options: SpecOptions, python: str = "python") -> Path:
    """Write kernel.json and the logos into ``directory`` (created); return the directory.

    Used by install_kernelspec (into a temporary directory) and by hatch_build.py (into
    build/data_kernelspec/kernel-bridge-local). ``options`` must be validated already.
    """
    directory.mkdir(parents=True, exist_ok=True)
    text = json.dumps(kernel_json(options, python), indent=1, sort_keys=True) + "\n"
    (directory / "kernel.json").write_text(text, encoding="utf-8")
    for logo in LOGO_FILES:
        shutil.copyfile(RESOURCES_DIR / logo, directory / logo)
    return directory


def is_bridge_argv(argv: Any) -> bool:
    """Tell whether a kernel.json ``argv`` runs kernel_bridge (``... -m kernel_bridge ...``)."""
    if not isinstance(argv, list):
        return False
    return any(a == "-m" and b == KERNEL_MODULE for a, b in itertools.pairwise(argv))


def _in_environment() -> bool:
    """True in a virtualenv/venv or a conda environment."""
    return sys.prefix != sys.base_prefix or (Path(sys.prefix) / "conda-meta").is_dir()


def default_install_location() -> str:
    """Return where ``install`` writes without --user/--sys-prefix/--prefix.

    "sys-prefix" inside a virtual or conda environment (the spec lives and dies with the
    environment that has kernel_bridge installed), otherwise "user" -- or "system" when
    running as root (bash_kernel's convention).
    """
    if _in_environment():
        return "sys-prefix"
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        return "system"
    return "user"


def install_kernelspec(
    name: str,
    options: SpecOptions,
    *,
    user: bool = False,
    prefix: str | None = None,
    python: str | None = None,
) -> str:
    """Validate, write and install a spec through jupyter_client; return the destination.

    ``user``/``prefix`` are passed to ``KernelSpecManager.install_kernel_spec`` (neither:
    the system location). ``python`` is argv[0]; by default the literal "python" for a
    prefix install (the environment's own interpreter runs it) and ``sys.executable``
    otherwise (a user or system spec must name the interpreter that has kernel_bridge).
    Refuses to replace a spec at the destination that is not a kernel_bridge spec. Raises
    ConfigurationError before anything is written.
    """
    from jupyter_client.kernelspec import KernelSpecManager

    if user and prefix:
        raise _error("give only one of --user, --sys-prefix and --prefix")
    name = validate_kernel_name(name)
    options = validate_options(options)
    manager = KernelSpecManager()
    destination = Path(manager._get_destination_dir(name, user=user, prefix=prefix))
    existing = destination / "kernel.json"
    if existing.is_file() and not is_bridge_argv(_read_argv(existing)):
        raise _error(
            f"{destination} already holds a kernelspec {name!r} that kernel_bridge did not "
            "write; choose another --name or remove it with 'jupyter kernelspec remove'"
        )
    argv0 = python if python is not None else ("python" if prefix else sys.executable)
    with tempfile.TemporaryDirectory() as tmp:
        spec_dir = Path(tmp) / name
        write_kernelspec(spec_dir, options, argv0)
        spec_dir.chmod(0o755)
        return str(
            manager.install_kernel_spec(str(spec_dir), kernel_name=name, user=user, prefix=prefix)
        )


def _read_argv(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8")).get("argv")
    except (OSError, ValueError, AttributeError):
        return None


@dataclass(frozen=True)
class BridgeKernelSpec:
    """One installed kernel_bridge spec, as ``kernel-bridge list`` shows it."""

    name: str
    executor: str
    display_name: str
    path: str


def _executor_of(spec: dict[str, Any]) -> str:
    meta = spec.get("metadata")
    if isinstance(meta, dict) and isinstance(meta.get("kernel_bridge"), dict):
        executor = meta["kernel_bridge"].get("executor")
        if isinstance(executor, str):
            return executor
    for arg in spec.get("argv", []):
        if isinstance(arg, str) and arg.startswith("--BridgeKernel.executor="):
            return arg.partition("=")[2]
    return "local"


def find_bridge_kernelspecs() -> list[BridgeKernelSpec]:
    """Return the kernel_bridge specs Jupyter can see (JUPYTER_PATH included), by name."""
    from jupyter_client.kernelspec import KernelSpecManager

    found = []
    for name, path in sorted(KernelSpecManager().find_kernel_specs().items()):
        try:
            spec = json.loads((Path(path) / "kernel.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if isinstance(spec, dict) and is_bridge_argv(spec.get("argv")):
            found.append(
                BridgeKernelSpec(
                    name=name,
                    executor=_executor_of(spec),
                    display_name=str(spec.get("display_name", name)),
                    path=str(path),
                )
            )
    return found


def remove_kernelspec(name: str) -> str:
    """Remove the kernel_bridge spec ``name`` and return the directory it was in.

    Raises LookupError when Jupyter sees no spec of that name, and ConfigurationError
    when the spec is not a kernel_bridge spec (it is left alone).
    """
    from jupyter_client.kernelspec import KernelSpecManager

    manager = KernelSpecManager()
    specs = manager.find_kernel_specs()
    lowered = name.lower()
    if lowered not in specs:
        raise LookupError(name)
    path = Path(specs[lowered])
    if not is_bridge_argv(_read_argv(path / "kernel.json")):
        raise _error(
            f"kernelspec {lowered!r} in {path} is not a kernel_bridge spec; "
            "remove it with 'jupyter kernelspec remove' if you mean to"
        )
    return str(manager.remove_kernel_spec(lowered))
