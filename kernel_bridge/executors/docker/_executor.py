"""The Docker executor: cells run in a container whose main process is the runtime.

``DockerCommandLineCodeExecutor`` keeps the public surface of AutoGen's executor
of the same name (constructor, ``execute_code_blocks``, ``start``/``stop``/``restart``,
the async context manager, ``bind_dir``/``timeout``/``work_dir``, a serialisable config)
and improves its behaviour: state is kept between blocks and cells, output streams, an
interrupt or a cancellation really stops the code without procps/coreutils in the image,
stop takes well under 2 s, and a container never outlives its kernel. See docs/docker.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import time
import uuid
import weakref
from collections.abc import AsyncIterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Self

from traitlets import Bool, Dict, Enum, Float, Int, List, TraitError, TraitType, Unicode
from traitlets.config import LoggingConfigurable

from ...errors import BridgeError, ConfigurationError, DockerConfigurationError, ExecutorStartError
from ...events import Display, Event
from ...functions import FUNCTION_PROMPT_TEMPLATE as _FUNCTION_PROMPT_TEMPLATE
from ...runtime import bootstrap_argv, bootstrap_payload
from .._blocks import CommandLineCodeResult, run_code_blocks
from .._temp_dirs import make_owned_temp_dir
from .._trait_signature import TraitSignature
from ..autogen_compat import AutoGenCompatible, AutoGenComponent, autogen_base
from ..base import ExecutorMeta
from ..runtime_backed.channel import RuntimeTransport
from ..runtime_backed.executor import RuntimeBackedExecutor
from . import _engine as engine
from . import _hardening as hardening
from ._files import CONTAINER_WORKSPACE, download_file, list_files, upload_file
from ._protocol_socket import ProtocolSocket
from ._pull import ensure_image
from ._transport import ContainerTransport

__all__ = ["DEFAULT_PIDS_LIMIT", "DockerCommandLineCodeExecutor", "DockerConfigurationError"]

log = logging.getLogger(__name__)

DEFAULT_PIDS_LIMIT = 4096
"""Default cap on processes in the container (stops fork bombs, allows real work)."""

_ORPHANS_CHECKED: set[str] = set()
"""The engines (by address) this process has already rid of dead kernels' containers:
once per engine, since each engine has its own; an engine whose check failed is tried
again at the next start."""


class _OptionalPath(TraitType[Path | None, Path | str | None]):
    """A trait holding a :class:`Path` (str accepted) or None."""

    default_value = None
    allow_none = True
    info_text = "a path or None"

    def validate(self, obj: Any, value: Any) -> Path | None:
        if value is None:
            return None
        if isinstance(value, str | os.PathLike):
            return Path(value)
        self.error(obj, value)


class _BindDir(_OptionalPath):
    """``bind_dir``: reads as ``work_dir`` when not set, as in AutoGen's executor."""

    def get(self, obj: Any, cls: Any = None) -> Any:
        value = super().get(obj, cls)
        return value if value is not None else getattr(obj, "work_dir", None)


def _device_request(item: Any) -> Any:
    """Turn a DeviceRequest, or a dict in either the API's or the SDK's spelling, into one."""
    from docker.types import DeviceRequest

    if isinstance(item, DeviceRequest):
        return item
    if not isinstance(item, Mapping):
        raise DockerConfigurationError(
            f"device_requests items must be docker.types.DeviceRequest or dicts, not {item!r}; "
            "e.g. [docker.types.DeviceRequest(count=-1, capabilities=[['gpu']])]"
        )
    names = {
        "Driver": "driver",
        "Count": "count",
        "DeviceIDs": "device_ids",
        "Capabilities": "capabilities",
        "Options": "options",
    }
    kwargs = {names.get(str(key), str(key)): value for key, value in item.items()}
    try:
        return DeviceRequest(**kwargs)
    except (TypeError, ValueError) as exc:
        raise DockerConfigurationError(f"invalid device request {dict(item)!r}: {exc}") from exc


def _config_schema() -> type[Any]:
    from ._autogen_config import DockerExecutorConfig

    return DockerExecutorConfig


if TYPE_CHECKING:
    _AutoGenBase = AutoGenComponent
else:  # AutoGen's CodeExecutor and Component when autogen_core is installed
    _AutoGenBase = autogen_base(
        "kernel_bridge.executors.docker.DockerCommandLineCodeExecutor", _config_schema
    )


class DockerCommandLineCodeExecutor(
    RuntimeBackedExecutor,
    AutoGenCompatible,
    LoggingConfigurable,
    _AutoGenBase,
    metaclass=ExecutorMeta,
):
    """Runs code in a Docker container that keeps its state (AutoGen's API, done better).

    Every constructor argument is also a trait, so the kernel is configured with
    ``--DockerCommandLineCodeExecutor.image=...`` (and ``mem_limit``, ``cpus``,
    ``pids_limit``, ``network_mode``, ``user``, ``read_only``, ``pull``, ``environment``).
    The container is created on first use (or :meth:`start`), labelled as kernel_bridge's
    and owned by this process; it is removed on :meth:`stop` and when this process dies.
    It starts hardened (``_hardening``: non-root user, no capabilities,
    ``no-new-privileges``, memory and pids limits, an isolated network; ``profile``
    ``strict`` adds no network and a read-only root), each setting relaxable by its option.
    """

    kind = "docker"

    SUPPORTED_LANGUAGES: ClassVar[list[str]] = [
        "bash",
        "shell",
        "sh",
        "pwsh",
        "powershell",
        "ps1",
        "python",
    ]
    """Block languages ``execute_code_blocks`` accepts (AutoGen's list)."""
    FUNCTION_PROMPT_TEMPLATE: ClassVar[str] = _FUNCTION_PROMPT_TEMPLATE
    """Template for :meth:`format_functions_for_prompt` (``$module_name``, ``$functions``)."""

    image = Unicode(
        "python:3-slim", config=True, help="Image to run (needs python3 and nothing else)."
    )
    container_name = Unicode(
        None,
        allow_none=True,
        config=True,
        help="Container name (default autogen-code-exec-<uuid4>, one per executor).",
    )
    timeout = Int(
        60, config=True, help="Seconds each execute_code_blocks block may run (at least 1)."
    )
    work_dir = _OptionalPath(
        config=True,
        help="Host directory mounted at /workspace (default: a temp dir made at start).",
    )
    bind_dir = _BindDir(
        config=True,
        help="work_dir as the Docker engine sees it (docker-in-docker); default work_dir.",
    )
    auto_remove = Bool(True, config=True, help="Remove the container once it stops.")
    stop_container = Bool(
        True,
        config=True,
        help="Stop the container when this process exits, even without stop(); "
        "False keeps it running.",
    )
    device_requests: List[Any] = List(
        default_value=None,
        allow_none=True,
        config=True,
        help="Device requests (GPUs): docker.types.DeviceRequest or dicts like "
        "{'Driver': 'nvidia', 'Count': -1, 'Capabilities': [['gpu']]}.",
    )
    functions_module = Unicode("functions", config=True, help="Module name of the functions.")
    extra_volumes = Dict(
        default_value=None,
        allow_none=True,
        config=True,
        help="Extra mounts: {host_path: {'bind': container_path, 'mode': 'rw'|'ro'}}.",
    )
    extra_hosts = Dict(
        default_value=None,
        allow_none=True,
        config=True,
        help="Extra /etc/hosts entries: {hostname: ip}.",
    )
    init_command = Unicode(
        None,
        allow_none=True,
        config=True,
        help="Shell command run at container start, before the runtime; "
        "its exports reach the code.",
    )
    delete_tmp_files = Bool(False, config=True, help="Delete the block files after execution.")
    profile = Enum(
        list(hardening.PROFILES),
        "default",
        config=True,
        help="Hardening profile: default (isolated network, writable root) or strict "
        "(no network, read-only root). Explicit network_mode/read_only win.",
    )
    mem_limit = Unicode(
        hardening.DEFAULT_MEM_LIMIT,
        allow_none=True,
        config=True,
        help="Memory limit, e.g. 512m or 2g (None: no limit).",
    )
    cpus = Float(None, allow_none=True, config=True, help="CPU limit, e.g. 1.5.")
    pids_limit = Int(
        DEFAULT_PIDS_LIMIT,
        allow_none=True,
        config=True,
        help="Maximum number of processes in the container (None: the engine's default).",
    )
    network_mode = Unicode(
        None,
        allow_none=True,
        config=True,
        help="Network: none, bridge (reaches the host and the internet), host, or a network "
        f"name; default: the profile's ({hardening.ISOLATED_NETWORK}, or none when strict).",
    )
    user = Unicode(
        None,
        allow_none=True,
        config=True,
        help="user[:group] the code runs as; default: your uid:gid (1000:1000 for root). "
        "'root' runs as root.",
    )
    read_only = Bool(
        None,
        allow_none=True,
        config=True,
        help="Mount the image's root filesystem read-only (default: the profile's).",
    )
    no_new_privileges = Bool(
        True, config=True, help="Forbid gaining privileges (setuid binaries) in the container."
    )
    cap_drop = List(
        Unicode(),
        ["ALL"],
        config=True,
        help="Linux capabilities removed from the container (default: all).",
    )
    cap_add = List(
        Unicode(),
        [],
        config=True,
        help="Linux capabilities given back (none are needed by kernel_bridge).",
    )
    mount_notebook_dir = Bool(
        False,
        config=True,
        help="Mount the notebook's folder (the kernel's working directory) read-write at "
        "/workspace instead of a private temporary folder. Code in the container can then "
        "read, change and delete every file in that folder; without user, the code runs as "
        "the folder's owner (uid:gid) so the files it writes belong to you.",
    )
    pull = Enum(
        ["missing", "always", "never"],
        "missing",
        config=True,
        help="Pull the image when it is missing (default), always, or never.",
    )
    environment = Dict(
        value_trait=Unicode(), config=True, help="Extra environment variables for the code."
    )
    docker_host = Unicode(
        None,
        allow_none=True,
        config=True,
        help="The Docker engine to use (unix://, tcp://host:2376, ssh://user@host); "
        "default: DOCKER_HOST and the other DOCKER_* variables, as the docker CLI. "
        "When set, the environment is ignored.",
    )
    tls_cert_path = Unicode(
        None,
        allow_none=True,
        config=True,
        help="With docker_host: a directory holding ca.pem, cert.pem and key.pem; the "
        "engine is reached over TLS, verified against ca.pem.",
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        """AutoGen's signature (``_SIGNATURE``; defaults are the traits'), plus ``parent``.

        Arguments given here win over the configuration the parent (the kernel) carries;
        options not given come from that configuration or the trait defaults. Every
        value is checked here, wherever it came from.
        """
        given, passthrough = _SIGNATURE.bind(self, args, kwargs)
        functions = given.pop("functions", ())
        if given.get("bind_dir") is None:
            # unset, it reads as work_dir; set to None while traits are held, it would be
            # stored as the work_dir of that moment
            given.pop("bind_dir", None)
        try:
            LoggingConfigurable.__init__(self, **passthrough, **given)
        except TraitError as exc:
            raise DockerConfigurationError(str(exc)) from None
        RuntimeBackedExecutor.__init__(self)
        if int(self.timeout) < 1:
            raise DockerConfigurationError(
                f"timeout must be at least 1 second, not {self.timeout!r}"
            )
        if not self.functions_module.isidentifier():
            raise DockerConfigurationError(
                f"functions_module {self.functions_module!r} is not a Python identifier; "
                "use a name like 'functions'"
            )
        try:
            volumes = engine.validate_volumes(self.extra_volumes)
        except ConfigurationError as exc:
            raise DockerConfigurationError(str(exc)) from None
        if self.tls_cert_path and not self.docker_host:
            raise DockerConfigurationError(
                "tls_cert_path needs docker_host (the engine those certificates are for); "
                "e.g. docker_host='tcp://engine.example:2376'"
            )
        self._name_given = self.container_name is not None
        if self.container_name is None:
            self.container_name = f"autogen-code-exec-{uuid.uuid4()}"
        self._device_requests = [_device_request(d) for d in self.device_requests or ()]
        if self.extra_volumes is not None:
            self.extra_volumes = volumes
        self.docker_host = self.docker_host or None
        self.tls_cert_path = self.tls_cert_path or None
        self._functions = list(functions)
        self._temp_dir: str | None = None
        self._client: Any = None
        self._transport: ContainerTransport | None = None
        self._network: str | None = None
        self._default_user: str | None = None

    # -- AutoGen-compatible surface (executors/autogen_compat.py) -----------------------

    @property
    def container_id(self) -> str | None:
        """Id of the running container (None when none runs)."""
        return (
            self._transport.container_id
            if self._transport is not None and self.runtime_alive
            else None
        )

    def format_functions_for_prompt(self, prompt_template: str = _FUNCTION_PROMPT_TEMPLATE) -> str:
        """Describe the functions for an LLM prompt (stubs importable from functions_module)."""
        from ...functions import format_functions_for_prompt

        return format_functions_for_prompt(
            self._functions, prompt_template, module_name=self.functions_module
        )

    async def execute_code_blocks(
        self, code_blocks: Sequence[Any], cancellation_token: Any = None
    ) -> CommandLineCodeResult:
        """Run code blocks in order in the container (state kept); return AutoGen's result.

        Each block is also written to work_dir (``tmp_code_<sha256>.<ext>`` or its
        ``# filename:``), removed afterwards with ``delete_tmp_files``. A block that runs
        past ``timeout`` gives exit code 124 and "\\n Timeout" with its partial output;
        cancelling the token interrupts the code in the container.
        """
        if self.work_dir is None:
            await self.start()
        return await run_code_blocks(
            self,
            code_blocks,
            cancellation_token,
            timeout=float(self.timeout),
            work_dir=self.work_dir,
            supported_languages=self.SUPPORTED_LANGUAGES,
            write_code_files=True,
            delete_tmp_files=self.delete_tmp_files,
        )

    # -- configuration round trip --------------------------------------------------------

    def to_config(self) -> dict[str, Any]:
        """Return the serialisable settings (JSON-compatible); functions are not included.

        The auto-generated container name and the temporary work_dir are left out, so
        two executors loaded from one config do not share them.
        """
        config: dict[str, Any] = {
            "image": self.image,
            "container_name": self.container_name if self._name_given else None,
            "timeout": self.timeout,
            "work_dir": str(self.work_dir) if self.work_dir and not self._temp_dir else None,
            "bind_dir": str(self._trait_values.get("bind_dir"))
            if self._trait_values.get("bind_dir")
            else None,
            "auto_remove": self.auto_remove,
            "stop_container": self.stop_container,
            "device_requests": [dict(d) for d in self._device_requests] or None,
            "functions_module": self.functions_module,
            "extra_volumes": self.extra_volumes,
            "extra_hosts": self.extra_hosts,
            "init_command": self.init_command,
            "delete_tmp_files": self.delete_tmp_files,
            "mem_limit": self.mem_limit,
            "cpus": self.cpus,
            "pids_limit": self.pids_limit,
            "network_mode": self.network_mode,
            "user": self.user,
            "read_only": self.read_only,
            "mount_notebook_dir": self.mount_notebook_dir,
            "pull": self.pull,
            "environment": dict(self.environment),
            "profile": self.profile,
            "no_new_privileges": self.no_new_privileges,
            "cap_drop": list(self.cap_drop),
            "cap_add": list(self.cap_add),
            "docker_host": self.docker_host,
            "tls_cert_path": self.tls_cert_path,
        }
        return config

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> Self:
        """Build an executor from :meth:`to_config` output (unknown keys are an error).

        Also takes AutoGen's spelling of "no limit" (``mem_limit=""``, ``pids_limit=0``).
        """
        values = dict(config)
        if values.get("mem_limit") == "":
            values["mem_limit"] = None
        if values.get("pids_limit") == 0:
            values["pids_limit"] = None
        return cls(**values)

    # -- RuntimeBackedExecutor hooks -----------------------------------------------------

    def _functions_source(self) -> tuple[Sequence[object], str]:
        return self._functions, self.functions_module

    def _engine_options(self) -> engine.EngineOptions:
        return engine.EngineOptions(self.docker_host, self.tls_cert_path)

    async def _get_client(self) -> Any:
        if self._client is None:
            self._client = await asyncio.to_thread(engine.connect, options=self._engine_options())
        return self._client

    def _workspace_volume(self) -> bool:
        """True when /workspace is a volume on the engine rather than a bind mount.

        On a remote engine (tcp://, ssh://) no path of this machine exists where the
        engine runs, so unless ``bind_dir`` names one on the engine's machine, the code
        works in a volume that lives and dies with the container; files move with
        upload_files/download_files.
        """
        return self._engine_options().remote and not self._trait_values.get("bind_dir")

    def _ensure_work_dir(self) -> Path:
        if self.work_dir is None and self.mount_notebook_dir:
            self.work_dir = Path.cwd()
        if self.work_dir is None:
            self._temp_dir = str(
                make_owned_temp_dir("kernel_bridge_docker_", linger=not self.stop_container)
            )
            if self.stop_container:  # removed at exit too when stop() is never called
                weakref.finalize(self, shutil.rmtree, self._temp_dir, True)
            # the code's user owns /workspace (and nobody else on the host can read it)
            hardening.make_writable_for(Path(self._temp_dir), self._code_user())
            self.work_dir = Path(self._temp_dir)
        else:
            self.work_dir.mkdir(parents=True, exist_ok=True)
            # A bind_dir is a path on the engine's machine, and a remote engine's workspace is
            # a volume: in both cases this folder is not what the code sees.
            if self._trait_values.get("bind_dir") is None and not self._workspace_volume():
                try:
                    hardening.check_work_dir(self.work_dir, self._code_user())
                except ConfigurationError as exc:
                    raise DockerConfigurationError(str(exc)) from None
        return self.work_dir

    async def _start_events(self) -> AsyncIterator[Event]:
        """Connect, reap orphans once, make sure the image exists (pull progress), then start."""
        client = await self._get_client()
        self._ensure_work_dir()
        engine_key = self._engine_options().host
        if engine_key not in _ORPHANS_CHECKED:
            try:
                removed = await asyncio.to_thread(engine.remove_orphans, client)
                _ORPHANS_CHECKED.add(engine_key)
                if removed:
                    log.info(
                        "removed containers left behind by dead kernels: %s", ", ".join(removed)
                    )
            except Exception as exc:  # never block a start on housekeeping
                log.debug("orphan check failed (tried again at the next start): %s", exc)
        async for event in self._pull_events(client):
            yield event
        async for event in super()._start_events():
            yield event

    async def _pull_events(self, client: Any) -> AsyncIterator[Event]:
        """Pull the image when needed: one display, updated as the pull goes on."""
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[str] = asyncio.Queue()
        display_id = f"kernel-bridge-pull-{uuid.uuid4().hex}"

        def progress(text: str) -> None:
            loop.call_soon_threadsafe(queue.put_nowait, text)

        task = asyncio.ensure_future(
            asyncio.to_thread(
                ensure_image,
                client,
                self.image,
                self.pull,
                self._engine_options().describe(),
                progress,
            )
        )
        shown = False
        try:
            while not task.done() or not queue.empty():
                getter = asyncio.ensure_future(queue.get())
                await asyncio.wait({task, getter}, return_when=asyncio.FIRST_COMPLETED)
                if getter.done():
                    data = {"text/plain": getter.result()}
                    yield Display(data, display_id=display_id, update=shown)
                    shown = True
                else:
                    getter.cancel()
            task.result()
        finally:
            if not task.done():
                task.cancel()

    def _debugpy_hint(self) -> str:
        """Name the image, which needs debugpy for the debugger."""
        return f", image {self.image}; e.g. RUN pip install debugpy in its Dockerfile"

    async def _spawn(self) -> RuntimeTransport:
        client = await self._get_client()
        loop = asyncio.get_running_loop()
        transport = await asyncio.to_thread(self._create_and_start, client, loop)
        self._transport = transport
        try:
            await transport.write(bootstrap_payload())
        except OSError as exc:
            log.debug("could not send the runtime to the container: %s", exc)
        return transport

    def _code_user(self) -> str:
        """The user the code runs as: ``user``, or the hardened default (never root)."""
        if self.user:
            return self.user
        if self._default_user is None:
            given = None if self._temp_dir is not None else self.work_dir
            self._default_user = hardening.default_user(given)
        return self._default_user

    def _home_tmpfs(self) -> dict[str, str]:
        return hardening.home_tmpfs(self._code_user(), dict(self.environment))

    def _command(self, protocol: ProtocolSocket | None = None) -> tuple[list[str], list[str]]:
        """Return (entrypoint, command) that start the runtime (after init_command)."""
        options = ["--cwd", CONTAINER_WORKSPACE]
        if not self.stop_container:
            options.append("--linger")
        if protocol is not None:
            options += ["--protocol-socket", protocol.container_path]
        argv = bootstrap_argv("python3", *options)
        if self._home_tmpfs():  # argv is [python3, -u, -c, CODE, ...]: prefix the code
            argv[3] = hardening.USER_SITE_PRELUDE + argv[3]
        if self.init_command:
            # Run in this shell (so exports reach the runtime), without access to the
            # protocol streams (stdin from /dev/null, stdout to stderr), then exec.
            script = "{\n" + self.init_command + "\n} </dev/null 1>&2\n" + 'exec "$@"'
            return ["/bin/sh", "-c", script, "kb-init"], argv
        return argv[:1], argv[1:]

    def _protocol_socket(self) -> ProtocolSocket | None:
        """A Unix socket for the runtime's output, for a local engine (see ProtocolSocket).

        Not for a remote engine (no path of this machine exists there) nor for a
        container that outlives its kernel (``stop_container=False``): the attach
        stream carries the protocol then, as it does when the runtime cannot connect.
        """
        if self._engine_options().remote or not self.stop_container:
            return None
        for spec in (self.extra_volumes or {}).values():
            # a user's own mount at (or inside) the socket's place wins over the socket
            bind = str(spec.get("bind", "") if isinstance(spec, dict) else spec).rstrip("/")
            if bind == ProtocolSocket.CONTAINER_DIR or bind.startswith(
                ProtocolSocket.CONTAINER_DIR + "/"
            ):
                return None
        return ProtocolSocket.offer(self._code_user())

    def _host_config(self, client: Any, protocol: ProtocolSocket | None = None) -> Any:
        binds: dict[str, dict[str, str]] = {}
        if not self._workspace_volume():
            bind_dir = self.bind_dir
            assert bind_dir is not None
            binds[str(Path(bind_dir).absolute())] = {"bind": CONTAINER_WORKSPACE, "mode": "rw"}
        binds.update(self.extra_volumes or {})
        if protocol is not None:
            binds[str(protocol.directory)] = {"bind": protocol.CONTAINER_DIR, "mode": "ro"}
        read_only = hardening.profile_read_only(self.profile, self.read_only)
        options: dict[str, Any] = {
            "binds": binds,
            "init": True,
            "auto_remove": self.auto_remove,
            "extra_hosts": dict(self.extra_hosts) if self.extra_hosts else None,
            "device_requests": list(self._device_requests) or None,
            "mem_limit": self.mem_limit,
            "nano_cpus": int(self.cpus * 1e9) if self.cpus else None,
            "pids_limit": self.pids_limit,
            "network_mode": self._network,
            "read_only": read_only,
            "security_opt": ["no-new-privileges"] if self.no_new_privileges else None,
            "cap_drop": list(self.cap_drop) or None,
            "cap_add": list(self.cap_add) or None,
        }
        tmpfs = self._home_tmpfs()
        if read_only:
            tmpfs["/tmp"] = "rw,exec,nosuid,nodev,size=1g,mode=1777"
        if tmpfs:
            options["tmpfs"] = tmpfs
        try:
            return client.api.create_host_config(
                **{k: v for k, v in options.items() if v is not None}
            )
        except Exception as exc:  # the SDK validates some values itself
            raise DockerConfigurationError(
                f"docker executor: invalid container options: {exc}"
            ) from exc

    def _create_and_start(self, client: Any, loop: asyncio.AbstractEventLoop) -> ContainerTransport:
        """Create, attach to and start the container (blocking; runs in a thread)."""
        protocol = self._protocol_socket()
        try:
            return self._create_and_start_with(client, loop, protocol)
        except BaseException:
            if protocol is not None:
                protocol.close()
            raise

    def _create_and_start_with(
        self, client: Any, loop: asyncio.AbstractEventLoop, protocol: ProtocolSocket | None
    ) -> ContainerTransport:
        from docker.errors import APIError, DockerException, ImageNotFound

        entrypoint, command = self._command(protocol)
        labels = engine.owner_labels(linger=not self.stop_container)
        environment = {"PYTHONUNBUFFERED": "1", "PYTHONDONTWRITEBYTECODE": "1", **self.environment}
        if self._home_tmpfs():
            environment["HOME"] = hardening.HOME_DIR
        self._network = hardening.profile_network(self.profile, self.network_mode)
        if self._network == hardening.ISOLATED_NETWORK:
            hardening.ensure_isolated_network(client)
        host_config = self._host_config(client, protocol)
        for attempt in (1, 2):
            try:
                created = client.api.create_container(
                    self.image,
                    command=command,
                    entrypoint=entrypoint,
                    stdin_open=True,
                    tty=False,
                    name=self.container_name,
                    labels=labels,
                    working_dir=CONTAINER_WORKSPACE,
                    environment=environment,
                    user=self._code_user(),
                    host_config=host_config,
                    volumes=[CONTAINER_WORKSPACE] if self._workspace_volume() else None,
                )
                break
            except ImageNotFound:
                raise ExecutorStartError(
                    f"docker executor: the image {self.image!r} is not on the Docker engine at "
                    f"{self._engine_options().describe()}. {engine.image_help(self.image)}"
                ) from None
            except APIError as exc:
                if exc.status_code == 409 and attempt == 1 and self._free_name(client):
                    continue
                raise self._create_error(exc) from exc
            except DockerException as exc:
                raise ExecutorStartError(
                    f"docker executor: could not create the container: {exc}"
                ) from exc
        container_id = str(created["Id"])
        try:
            transport = ContainerTransport.attach(
                client,
                container_id,
                remove_on_kill=self.auto_remove,
                mem_limit=self.mem_limit,
                loop=loop,
                protocol=protocol,
            )
        except DockerException as exc:
            engine.remove_container(client, container_id)
            raise ExecutorStartError(
                f"docker executor: could not attach to the container: {exc}"
            ) from exc
        try:
            if self._workspace_volume():
                engine.open_workspace(client, container_id, CONTAINER_WORKSPACE)
            client.api.start(container_id)
        except DockerException as exc:
            engine.remove_container(client, container_id)
            with contextlib.suppress(Exception):
                asyncio.run_coroutine_threadsafe(transport.close(), loop)
            raise self._start_error(exc) from exc
        transport.start_threads()
        return transport

    def _free_name(self, client: Any) -> bool:
        """Remove a same-named container if it is ours or its kernel is gone; True if removed."""
        from docker.errors import DockerException

        try:
            existing = client.containers.get(self.container_name)
        except DockerException:
            return True  # gone meanwhile: retry
        labels = existing.labels or {}
        owner = engine.ContainerOwner.from_labels(labels)
        ours = labels.get(engine.LABEL_MANAGED) == "1" and (
            owner.pid == os.getpid() or owner.is_gone() or existing.status != "running"
        )
        if not ours:
            return False
        engine.remove_container(client, existing.id)
        deadline = time.monotonic() + 10.0
        while time.monotonic() < deadline:  # auto_remove may still be removing it
            try:
                client.api.inspect_container(existing.id)
            except DockerException:
                return True
            time.sleep(0.05)
        return False

    def _create_error(self, exc: Any) -> BridgeError:
        text = str(getattr(exc, "explanation", None) or exc)
        if exc.status_code == 409:
            return DockerConfigurationError(
                f"docker executor: a container named {self.container_name!r} already exists and "
                f"belongs to a running kernel or to someone else ({text}). Choose another "
                f"container_name, or remove it with `docker rm -f {self.container_name}`."
            )
        if exc.status_code == 400 or "invalid" in text.lower():
            return DockerConfigurationError(
                f"docker executor: the Docker engine rejected the container settings: {text}. "
                "Check extra_volumes, extra_hosts, mem_limit, cpus, network_mode and user."
            )
        return ExecutorStartError(f"docker executor: could not create the container: {text}")

    def _start_error(self, exc: Any) -> BridgeError:
        text = str(getattr(exc, "explanation", None) or exc)
        lowered = text.lower()
        if "device" in lowered and (self._device_requests or "driver" in lowered):
            requests = [dict(d) for d in self._device_requests]
            return ExecutorStartError(
                f"docker executor: the Docker engine could not satisfy device_requests={requests}: "
                f"{text}. Install the device's container toolkit on the engine (e.g. the NVIDIA "
                "Container Toolkit for GPUs) or drop device_requests."
            )
        if "executable file not found" in lowered or "no such file or directory" in lowered:
            return ExecutorStartError(
                f"docker executor: the image {self.image!r} cannot run python3 ({text}). "
                "kernel_bridge needs an image with python3 on its PATH."
            )
        if "mount" in lowered or "bind" in lowered or "volume" in lowered:
            return DockerConfigurationError(
                f"docker executor: a volume could not be mounted: {text}. Check work_dir, "
                "bind_dir and extra_volumes."
            )
        return ExecutorStartError(f"docker executor: the container did not start: {text}")

    async def _on_stopped(self) -> None:
        """After the container is gone: remove the temporary work_dir, release the client."""
        transport, self._transport = self._transport, None
        if transport is not None:
            with contextlib.suppress(Exception):
                await transport.kill()
            with contextlib.suppress(Exception):
                await transport.close()
        if self._temp_dir is not None:
            temp_dir, self._temp_dir = self._temp_dir, None
            await asyncio.to_thread(shutil.rmtree, temp_dir, True)
            self.work_dir = None
        client, self._client = self._client, None
        if client is not None:
            with contextlib.suppress(Exception):
                await asyncio.to_thread(client.close)

    # -- files -------------------------------------------------------------------------

    async def _running_container(self) -> tuple[Any, str]:
        if not self.runtime_alive:
            await self.start()
        assert self._transport is not None
        return self._transport.client, self._transport.container_id

    async def upload_files(self, files: Sequence[Path | str]) -> None:
        """Copy files from the host work_dir into the container's /workspace (same names)."""
        await self.upload_from(self._ensure_work_dir(), files)

    async def download_files(self, files: Sequence[Path | str]) -> list[str]:
        """Copy files from the container's /workspace into the host work_dir; return host paths."""
        return await self.download_into(self._ensure_work_dir(), files)

    async def upload_from(self, folder: Path, files: Sequence[Path | str]) -> None:
        """Copy ``folder/NAME`` for each name into /workspace/NAME, owned by the code's user.

        Called by ``upload_files`` (folder = work_dir) and by ``%bridge upload`` (folder =
        the notebook's folder). Links and special files in ``folder`` are refused.
        """
        client, container_id = await self._running_container()
        owner = hardening.numeric_owner(self._code_user())
        for name in files:
            await asyncio.to_thread(upload_file, client, container_id, folder, name, owner)

    async def download_into(self, folder: Path, files: Sequence[Path | str]) -> list[str]:
        """Copy /workspace/NAME into ``folder/NAME`` for each name; return the host paths.

        Called by ``download_files`` (folder = work_dir) and by ``%bridge download``. The
        container's entries are never followed: links and special files are refused, and
        the host side is written without following links.
        """
        client, container_id = await self._running_container()
        paths = []
        for name in files:
            paths.append(
                str(await asyncio.to_thread(download_file, client, container_id, folder, name))
            )
        return paths

    async def image_identity(self) -> tuple[str | None, list[str]]:
        """(image id, registry digests) of the running container's image, on its engine.

        Called by the kernel's provenance when a session starts, so every output can name
        the exact image it came from; (None, []) when no container runs.
        """
        if not self.runtime_alive or self._transport is None:
            return None, []
        client, container_id = self._transport.client, self._transport.container_id

        def inspect() -> tuple[str | None, list[str]]:
            image_id = str(client.api.inspect_container(container_id)["Image"])
            digests: list[str] = []
            with contextlib.suppress(Exception):
                info = client.api.inspect_image(image_id)
                digests = [str(d) for d in info.get("RepoDigests") or []]
            return image_id, digests

        return await asyncio.to_thread(inspect)

    async def get_file_list(self) -> list[str]:
        """List the files under the container's /workspace (relative names)."""
        client, container_id = await self._running_container()
        return await asyncio.to_thread(list_files, client, container_id)


_SIGNATURE = TraitSignature(
    positional=("image", "container_name"),
    keyword=(
        # AutoGen's keyword-only parameters, in its order
        "timeout", "work_dir", "bind_dir", "auto_remove", "stop_container", "device_requests",
        "functions", "functions_module", "extra_volumes", "extra_hosts", "init_command",
        "delete_tmp_files",
        # kernel_bridge's own
        "mem_limit", "cpus", "pids_limit", "network_mode", "user", "read_only",
        "mount_notebook_dir", "pull", "environment", "profile", "no_new_privileges",
        "cap_drop", "cap_add", "docker_host", "tls_cert_path",
    ),
    others={"functions": []},
)  # fmt: skip
_SIGNATURE.install(DockerCommandLineCodeExecutor)
