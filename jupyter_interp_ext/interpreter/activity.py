"""A kernel's activity, recorded from the messages of this extension's own iopub channel.

Jupyter Server reads every iopub message of every kernel in an activity watcher of its own
(`MappingKernelManager.start_watching_activity`): a second copy of each message, a second
signature check, a second parse (for one 50 MB print, about 120 ms between the kernel and the
client). For a kernel this extension reads anyway, its channel records the same facts (the
kernel's and the server's last activity, the kernel's execution state, by the same rules) and
Jupyter's watcher is closed; when the channel closes, Jupyter watches the kernel again.
"""

from __future__ import annotations

import contextlib
from typing import Any

from jupyter_server._tz import utcnow

from .channels import PushedChannel

# Set on a kernel whose activity a channel of ours records (Jupyter's watcher is then closed).
RECORDED_HERE = "_interp_activity_recorded_here"


class ActivityRecorder:
    """Records one kernel's activity as Jupyter Server's watcher does."""

    def __init__(self, kernel_manager: Any, kernel_id: str, kernel: Any) -> None:
        self.kernel_manager = kernel_manager
        self.kernel_id = kernel_id
        self.kernel = kernel

    @classmethod
    def of(cls, kernel: Any) -> ActivityRecorder | None:
        """For a kernel of a Jupyter Server kernel manager (None for anything else)."""
        manager = getattr(kernel, "parent", None)
        kernel_id = getattr(kernel, "kernel_id", None)
        if kernel_id is None or not hasattr(manager, "start_watching_activity"):
            return None
        return cls(manager, kernel_id, kernel)

    def take_over(self, channel: PushedChannel) -> None:
        """Record from `channel`, in place of Jupyter's watcher (closed here; its stream is
        Jupyter's own, private attribute: without one, and not ours, nothing changes)."""
        stream = getattr(self.kernel, "_activity_stream", None)
        if stream is None and not getattr(self.kernel, RECORDED_HERE, False):
            return
        if stream is not None and not stream.closed():
            stream.close()
        self.kernel._activity_stream = None
        setattr(self.kernel, RECORDED_HERE, True)
        channel.on_message = self.record
        channel.on_close.append(self.hand_back)

    def hand_back(self) -> None:
        """Our channel closes: Jupyter watches the kernel again if it still runs."""
        setattr(self.kernel, RECORDED_HERE, False)
        if self.kernel_id in self.kernel_manager and self.kernel._activity_stream is None:
            with contextlib.suppress(Exception):
                self.kernel_manager.start_watching_activity(self.kernel_id)

    def record(self, msg: dict[str, Any]) -> None:
        """What Jupyter's watcher does with one iopub message."""
        manager, kernel = self.kernel_manager, self.kernel
        msg_type = msg["header"]["msg_type"]
        parent_type = (msg.get("parent_header") or {}).get("msg_type")
        tracked = manager.track_message_type(parent_type)
        if tracked or manager.track_message_type(msg_type) or kernel.execution_state == "busy":
            manager.last_kernel_activity = kernel.last_activity = utcnow()
        if msg_type == "status":
            state = msg["content"]["execution_state"]
            if tracked:
                kernel.execution_state = state
            elif kernel.execution_state == "starting" and state != "starting":
                kernel.execution_state = "idle"
