"""Fixtures that start real bridge kernels through jupyter_client."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from _support.kernel_client import start_kernel
from _support.specs import STREAMING_SPECS, BridgeSpec
from jupyter_client.blocking.client import BlockingKernelClient
from jupyter_client.manager import KernelManager


@pytest.fixture(params=STREAMING_SPECS, ids=lambda s: s.name)
def kernel(request: pytest.FixtureRequest) -> Iterator[tuple[KernelManager, BlockingKernelClient]]:
    """A fresh kernel per test, shut down gracefully afterwards."""
    spec: BridgeSpec = request.param
    km, kc = start_kernel(spec.ready())
    yield km, kc
    kc.stop_channels()
    km.shutdown_kernel()
