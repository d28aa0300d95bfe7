"""The kernel's side of comms: frontend comm messages in, the code's IOPub messages out.

:class:`CommRelay` is created by :class:`~kernel_bridge.kernel.BridgeKernel`. It serves
the shell's ``comm_open``/``comm_msg``/``comm_close``/``comm_info_request`` by handing
them to the executor (where the comm manager lives, next to the code), publishes the
:class:`~kernel_bridge.events.IOPubMessage` events the code sends (comm traffic,
``get_ipython().kernel.session.send``) with the parent header of the request they
answer, and publishes events sent between cells (a background thread moving a
progress bar), parented to the request that started them.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from .events import ClearOutput, Display, Event, Finished, IOPubMessage, Result, Stream
from .executors._comm import COMM_MSG_TYPES, REQUEST_PARENT, CommRequest

if TYPE_CHECKING:
    from .kernel import BridgeKernel

__all__ = ["CommRelay"]

log = logging.getLogger(__name__)

WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"

NOT_INTERACTIVE = (
    "(widgets are not interactive with the {kind} executor here: the `comm` package is "
    "not importable where the code runs, so this shows the widget's text instead)"
)

PARENTS_KEPT = 256
"""How many recent requests a late message may still name as its parent."""


class CommRelay:
    """Relays comms between the frontend and the code, for one kernel."""

    def __init__(self, kernel: BridgeKernel) -> None:
        self._kernel = kernel
        self._parents: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self._last_parent: dict[str, Any] | None = None

    def install(self) -> None:
        """Register the shell handlers and the background route; called by the kernel's init."""
        for msg_type in COMM_MSG_TYPES:
            self._kernel.shell_handlers[msg_type] = self.handle_comm
        self._kernel.bridge_session.set_background_handler(self.publish_background)

    def begin_request(self) -> Callable[[], None]:
        """Remember the request being served, so the code's messages can name it.

        Called by the kernel at the start of every execute (and here for comms), in the
        task that serves the request. Returns a function that puts this request back as
        the kernel's current parent: call it before publishing. ipykernel dispatches a
        comm message that arrives while another request runs concurrently and, when done,
        restores the parent *it* saw, which can overwrite the running request's; that
        would send its output and its idle status with a foreign parent (JupyterLab then
        shows the cell as running forever).
        """
        parent = self._kernel.get_parent()  # type: ignore[no-untyped-call]
        ident = self._kernel._get_shell_context_var(self._kernel._shell_parent_ident)

        def restore() -> None:
            if self._kernel.get_parent() is not parent:  # type: ignore[no-untyped-call]
                self._kernel.set_parent(ident, parent)  # type: ignore[no-untyped-call]

        header = parent.get("header") if isinstance(parent, dict) else None
        if not isinstance(header, dict) or not header.get("msg_id"):
            REQUEST_PARENT.set(None)
            return restore
        REQUEST_PARENT.set(header)
        self._parents[str(header["msg_id"])] = parent
        self._parents.move_to_end(str(header["msg_id"]))
        while len(self._parents) > PARENTS_KEPT:
            self._parents.popitem(last=False)
        self._last_parent = parent
        return restore

    async def handle_comm(self, stream: Any, ident: Any, parent: dict[str, Any]) -> None:
        """Serve a frontend comm_open/comm_msg/comm_close: deliver it where the code runs."""
        restore = self.begin_request()
        content = parent.get("content")
        request = CommRequest(
            msg_type=str(parent.get("header", {}).get("msg_type", "")),
            content=content if isinstance(content, dict) else {},
            metadata=dict(parent.get("metadata") or {}),
            buffers=tuple(bytes(b) for b in parent.get("buffers") or ()),
        )
        try:
            async for event in self._kernel.bridge_session.deliver_comm(request):
                if not isinstance(event, Finished):
                    restore()
                    self._kernel._publish(event)
        except Exception:
            log.exception("comm message %s not delivered", request.msg_type)
        finally:
            restore()

    async def comm_info(self, stream: Any, ident: Any, parent: dict[str, Any]) -> None:
        """Answer comm_info_request from the comms open where the code runs."""
        content = parent.get("content") or {}
        target = content.get("target_name") if isinstance(content, dict) else None
        comms = await self._kernel.bridge_session.comm_info(target if target else None)
        session = self._kernel.session
        if session is not None:
            session.send(stream, "comm_info_reply", {"status": "ok", "comms": comms}, parent, ident)

    def adapt_output(self, event: Event) -> Event:
        """Where comms cannot reach the code, replace a widget view by its text and a note.

        Called by the kernel for each output before it is published, so the frontend never
        shows "Error displaying widget: model not found".
        """
        if not isinstance(event, Display | Result) or WIDGET_VIEW not in event.data:
            return event
        if self._kernel.bridge_session.supports_comms:
            return event
        data = {k: v for k, v in event.data.items() if k != WIDGET_VIEW}
        note = NOT_INTERACTIVE.format(kind=self._kernel.executor)
        data["text/plain"] = f"{data.get('text/plain', 'a widget')}\n{note}"
        return replace(event, data=data)

    def publish(self, event: IOPubMessage) -> None:
        """Send the code's IOPub message, parented to the request it names."""
        parent = self._parents.get(event.parent_id or "") or self._kernel.get_parent()  # type: ignore[no-untyped-call]
        self._send(event.msg_type, event.content, parent, event.metadata, event.buffers)

    def publish_background(self, event: Event) -> None:
        """Publish an event sent while no request ran (called by the executor's reader).

        Comm traffic names the request that created its comm; plain output from a
        background thread goes to the last request, as in ipykernel.
        """
        parent = self._last_parent
        if isinstance(event, IOPubMessage):
            if event.parent_id in self._parents or parent is None:
                self.publish(event)
            else:
                self._send(event.msg_type, event.content, parent, event.metadata, event.buffers)
            return
        if parent is None:
            return
        if isinstance(event, Stream):
            self._send("stream", {"name": event.name, "text": event.text}, parent)
        elif isinstance(event, Display):
            content: dict[str, Any] = {"data": event.data, "metadata": event.metadata}
            if event.display_id is not None:
                content["transient"] = {"display_id": event.display_id}
            kind = "update_display_data" if event.update else "display_data"
            self._send(kind, content, parent)
        elif isinstance(event, ClearOutput):
            self._send("clear_output", {"wait": event.wait}, parent)

    def _send(
        self,
        msg_type: str,
        content: dict[str, Any],
        parent: dict[str, Any],
        metadata: dict[str, Any] | None = None,
        buffers: tuple[bytes, ...] = (),
    ) -> None:
        session = self._kernel.session
        if session is None:
            return
        comm_id = content.get("comm_id")
        topic = f"comm-{comm_id}" if isinstance(comm_id, str) else msg_type
        session.send(
            self._kernel.iopub_socket,
            msg_type,
            content,
            parent=parent,
            ident=self._kernel._topic(topic),  # type: ignore[no-untyped-call]
            buffers=list(buffers) or None,
            metadata=metadata or {},
        )
