"""Serve the emulator with uvicorn: in a background thread (tests, notebooks) or in the
foreground (``kernel-bridge aca-emulator``)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from ._app import DroppedConnection, EmulatorState, create_app, stats
from ._auth import TokenChecker
from ._backends import Backend, make_backend
from ._config import DEFAULT_POOL_PATH, EmulatorConfig
from ._faults import FaultQueue
from ._sessions import SessionManager
from ._tls import TLSFiles, make_self_signed

__all__ = ["Emulator"]

_log = logging.getLogger(__name__)


class _QuietDrops(logging.Filter):
    """Hides uvicorn's traceback for connections dropped on purpose: by the fault
    injection, or requests still waiting (a slow-answer fault) when the server stops."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        return not isinstance(exc, DroppedConnection | asyncio.CancelledError)


def _install_quiet_drops() -> None:
    logger = logging.getLogger("uvicorn.error")
    if not any(isinstance(f, _QuietDrops) for f in logger.filters):
        logger.addFilter(_QuietDrops())


class Emulator:
    """The ACA dynamic-sessions emulator: one session pool served over HTTP.

    ``with Emulator(EmulatorConfig(cooldown=2)) as emu:`` serves it on 127.0.0.1 (a free
    port) in a background thread until the block ends; ``emu.endpoint`` is the pool
    management endpoint to give clients. :meth:`serve_forever` serves in the foreground.
    """

    def __init__(
        self,
        config: EmulatorConfig | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        backend: Backend | None = None,
    ) -> None:
        self.config = config or EmulatorConfig()
        self.host = host
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        if self.config.root is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="kb-aca-emulator-")
            root = Path(self._tmp.name)
        else:
            root = Path(self.config.root)
            root.mkdir(parents=True, exist_ok=True)
        self.backend = backend or make_backend(
            self.config.backend, python=self.config.python, image=self.config.image
        )
        self.state = EmulatorState(
            sessions=SessionManager(
                self.backend,
                root,
                cooldown=self.config.cooldown,
                max_sessions=self.config.max_sessions,
            ),
            tokens=TokenChecker(self.config.token),
            execution_cap=self.config.execution_cap,
            async_execution_cap=self.config.async_execution_cap,
            max_output_length=self.config.max_output_length,
            max_upload_bytes=self.config.max_upload_bytes,
            success_status=self.config.success_status,
        )
        self.app = create_app(self.state)
        _install_quiet_drops()
        self._socket = socket.socket(
            socket.AF_INET6 if ":" in host else socket.AF_INET,
            socket.SOCK_STREAM,
            socket.IPPROTO_TCP,  # so asyncio sets TCP_NODELAY on accepted connections
        )
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._socket.bind((host, port))
        self.port: int = self._socket.getsockname()[1]
        self._server: Any = None
        self._thread: threading.Thread | None = None
        self.tls: TLSFiles | None = None
        if self.config.tls:
            self._tls_dir = tempfile.TemporaryDirectory(prefix="kb-aca-emulator-tls-")
            self.tls = make_self_signed(Path(self._tls_dir.name), host)

    # -- what clients need ---------------------------------------------------------------

    @property
    def base_url(self) -> str:
        """``http://HOST:PORT`` of the emulator (``https://`` with TLS)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        scheme = "https" if self.tls is not None else "http"
        return f"{scheme}://{host}:{self.port}"

    @property
    def ca_file(self) -> Path | None:
        """The self-signed certificate clients must trust (TLS only), else None."""
        return self.tls.cert if self.tls is not None else None

    @property
    def endpoint(self) -> str:
        """The pool management endpoint to configure clients with."""
        return self.base_url + DEFAULT_POOL_PATH

    @property
    def faults(self) -> FaultQueue:
        """The fault queue (add :class:`~kernel_bridge.emulator.Fault` objects to it)."""
        return self.state.faults

    @property
    def tokens(self) -> TokenChecker:
        """The record of the tokens requests carried."""
        return self.state.tokens

    def stats(self) -> dict[str, Any]:
        """Counters: executions run, sessions created/expired, token uses."""
        return stats(self.state)

    # -- serving -------------------------------------------------------------------------

    def _make_server(self) -> Any:
        import uvicorn

        tls: dict[str, Any] = {}
        if self.tls is not None:
            tls = {"ssl_certfile": str(self.tls.cert), "ssl_keyfile": str(self.tls.key)}
        config = uvicorn.Config(
            self.app,
            log_level="warning",
            lifespan="on",
            timeout_keep_alive=30,
            access_log=False,
            # A client that leaves a connection open (TLS ones too) must not hold Ctrl-C.
            timeout_graceful_shutdown=5,
            **tls,
        )
        return uvicorn.Server(config)

    def serve_forever(self) -> None:
        """Serve in this thread until interrupted (Ctrl-C / SIGTERM)."""
        self._server = self._make_server()
        try:
            self._server.run(sockets=[self._socket])
        finally:
            self._cleanup()

    def start(self, timeout: float = 30.0) -> Emulator:
        """Serve in a background thread; return once the server accepts connections."""
        self._server = self._make_server()
        self._server.install_signal_handlers = lambda: None  # uvicorn < 0.29
        self._thread = threading.Thread(
            target=self._thread_main, name="kb-aca-emulator", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the ACA emulator did not start")
            time.sleep(0.02)
        return self

    def _thread_main(self) -> None:
        asyncio.run(self._server.serve(sockets=[self._socket]))

    def stop(self, timeout: float = 15.0) -> None:
        """Stop serving, end every session and remove the session directories."""
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        self._cleanup()

    def _cleanup(self) -> None:
        with contextlib.suppress(OSError):
            self._socket.close()
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None
        if self.tls is not None:
            self._tls_dir.cleanup()

    def __enter__(self) -> Emulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
