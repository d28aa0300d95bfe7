"""The Jupyter debug protocol for kernel_bridge kernels (JupyterLab's visual debugger).

:class:`DebugSession` answers the kernel's ``debug_request`` messages the way ipykernel's
debugger does (the DAP requests plus the ``debugInfo``, ``dumpCell``, ``inspectVariables``,
``richInspectVariables`` and ``copyToGlobals`` extensions) and relays DAP to debugpy,
which runs inside the runtime where the code runs (see docs/debugger.md).
"""

from ._session import DebugSession, accept_variable, cell_file_prefix

__all__ = ["DebugSession", "accept_variable", "cell_file_prefix"]
