"""jupyter_kernel_test's protocol conformance suite against the installed bridge kernelspec."""

from __future__ import annotations

import unittest

import jupyter_kernel_test
from _support.specs import (
    ACA_DOCKER,
    ACA_LOCAL,
    ACA_LOCAL_NEWEST,
    ALL_SPECS,
    DOCKER,
    DOCKER_REMOTE,
    LOCAL,
)


class _BridgeKernelTests(jupyter_kernel_test.KernelTests):
    """Every conformance sample set: none is skipped for want of a sample."""

    __test__ = False

    @classmethod
    def setUpClass(cls) -> None:
        ALL_SPECS[cls.kernel_name].ready()
        super().setUpClass()

    language_name = "python"
    file_extension = ".py"

    code_hello_world = "print('hello, world')"
    code_stderr = "import sys; print('test', file=sys.stderr)"
    completion_samples = [
        {"text": "zi", "matches": {"zip"}},
    ]
    complete_code_samples = ["1", "print('hello, world')", "def f(x):\n    return x * 2\n\n\n"]
    incomplete_code_samples = ["print('''hello", "def f(x):\n    x * 2"]
    invalid_code_samples = ["import = 7q"]
    code_generate_error = "raise ValueError('boom')"
    code_execute_result = [
        {"code": "1 + 2 + 3", "result": "6"},
        {"code": "[n * n for n in range(1, 4)]", "result": "[1, 4, 9]"},
    ]
    code_display_data = [
        {
            "code": (
                "class H:\n    def _repr_html_(self):\n        return '<b>bridge</b>'\ndisplay(H())"
            ),
            "mime": "text/html",
        },
        {"code": "display({'text/plain': 'raw'}, raw=True)", "mime": "text/plain"},
    ]
    code_history_pattern = "1 + 2*"
    supported_history_operations = ("tail", "range", "search")
    code_inspect_sample = "zip"
    code_page_something = "zip?"
    code_clear_output = (
        "try:\n    from IPython.display import clear_output\nexcept ImportError:\n    pass\n"
        "clear_output()"
    )


class LocalBridgeKernelTests(_BridgeKernelTests):
    __test__ = True
    kernel_name = LOCAL.name


class DockerBridgeKernelTests(_BridgeKernelTests):
    __test__ = True
    kernel_name = DOCKER.name


class RemoteDockerBridgeKernelTests(_BridgeKernelTests):
    """The Docker executor on a second engine reached over TCP with TLS."""

    __test__ = True
    kernel_name = DOCKER_REMOTE.name


class ACABridgeKernelTests(_BridgeKernelTests):
    __test__ = True
    kernel_name = ACA_LOCAL.name


class ACANewestBridgeKernelTests(_BridgeKernelTests):
    """The same suite on the newest api-version (polled asynchronous executions)."""

    __test__ = True
    kernel_name = ACA_LOCAL_NEWEST.name


class ACADockerBridgeKernelTests(_BridgeKernelTests):
    __test__ = True
    kernel_name = ACA_DOCKER.name


if __name__ == "__main__":
    unittest.main()
