"""The host side of the runtime's comm messages (docs/runtime-protocol.md, "Comms").

Used by :mod:`._channel`: it checks what the runtime sends before it becomes an
:class:`~kernel_bridge.events.IOPubMessage` (the runtime is untrusted: only the message
types below pass, with dict content and base64 buffers), and it holds the Jupyter
header of the request being served, which the kernel sets and the channel hands to the
runtime so that ``get_ipython().kernel.get_parent()`` and widget Output capture see
the frontend's own msg_id.
"""

from __future__ import annotations

import base64
import binascii
import contextvars
from dataclasses import dataclass, field
from typing import Any

from ..events import IOPubMessage

__all__ = [
    "COMM_MSG_TYPES",
    "IOPUB_MSG_TYPES",
    "REQUEST_PARENT",
    "CommRequest",
    "encode_buffers",
    "iopub_event",
    "parent_for_runtime",
]

COMM_MSG_TYPES = frozenset({"comm_open", "comm_msg", "comm_close"})
"""Shell messages from the frontend that are delivered to the runtime's comm manager."""

IOPUB_MSG_TYPES = COMM_MSG_TYPES | {
    "stream",
    "display_data",
    "update_display_data",
    "execute_result",
    "error",
    "clear_output",
}
"""IOPub messages the code may send itself; never status or execute_input (the kernel's)."""

_HEADER_KEYS = ("msg_id", "msg_type", "session", "username", "date", "version")

REQUEST_PARENT: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar(
    "kernel_bridge_request_parent", default=None
)
"""The Jupyter header of the request being served; set by the kernel's comm relay."""


@dataclass(frozen=True)
class CommRequest:
    """A frontend comm_open/comm_msg/comm_close, as the kernel hands it to an executor."""

    msg_type: str
    content: dict[str, Any]
    metadata: dict[str, Any] = field(default_factory=dict)
    buffers: tuple[bytes, ...] = ()


def parent_for_runtime() -> dict[str, Any] | None:
    """The current request's header, reduced to plain JSON fields, for a runtime message."""
    header = REQUEST_PARENT.get()
    if not header:
        return None
    return {k: str(header[k]) for k in _HEADER_KEYS if header.get(k) is not None}


def encode_buffers(buffers: tuple[bytes, ...] | list[bytes]) -> list[str]:
    """Base64 text for the runtime protocol (which is JSON lines)."""
    return [base64.b64encode(bytes(b)).decode("ascii") for b in buffers]


def iopub_event(msg: dict[str, Any]) -> IOPubMessage | None:
    """Check a runtime ``iopub`` message and turn it into an event (None if refused)."""
    msg_type = msg.get("msg_type")
    content = msg.get("content")
    metadata = msg.get("metadata") or {}
    raw_buffers = msg.get("buffers") or []
    parent_id = msg.get("parent_id")
    if msg_type not in IOPUB_MSG_TYPES or not isinstance(content, dict):
        return None
    if not isinstance(metadata, dict) or not isinstance(raw_buffers, list):
        return None
    buffers: list[bytes] = []
    for item in raw_buffers:
        if not isinstance(item, str):
            return None
        try:
            buffers.append(base64.b64decode(item, validate=True))
        except (binascii.Error, ValueError):
            return None
    return IOPubMessage(
        msg_type=str(msg_type),
        content=content,
        metadata=metadata,
        buffers=tuple(buffers),
        parent_id=parent_id if isinstance(parent_id, str) else None,
    )
