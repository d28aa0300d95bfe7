"""Fixtures that start real bridge kernels through jupyter_client."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from _support.kernel_client import KERNEL_SPECS, start_kernel
from jupyter_client.blocking.client import BlockingKernelClient
from jupyter_client.manager import KernelManager


@pytest.fixture(params=KERNEL_SPECS)
def kernel(request: pytest.FixtureRequest) -> Iterator[tuple[KernelManager, BlockingKernelClient]]:
    """A fresh kernel per test, shut down gracefully afterwards."""
    km, kc = start_kernel(request.param)
    yield km, kc
    kc.stop_channels()
    km.shutdown_kernel()
