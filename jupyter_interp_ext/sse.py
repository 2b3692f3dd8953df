"""Server-Sent Events framing: one `data: {json}` line per event, sent as soon as it exists."""

from __future__ import annotations

import json
import socket
from typing import Any

from tornado.web import RequestHandler


def frame(event: dict[str, Any]) -> bytes:
    """One SSE event. ASCII-only JSON, so a client that decodes chunk by chunk (the official
    one does) can never see a multi-byte character split across two reads."""
    return b"data: " + json.dumps(event, separators=(",", ":")).encode("ascii") + b"\n\n"


class EventStream:
    """Writes events to a handler's response as they come, without Nagle delays."""

    def __init__(self, handler: RequestHandler) -> None:
        self.handler = handler

    def open(self) -> None:
        handler = self.handler
        handler.set_status(200)
        handler.set_header("Content-Type", "text/event-stream")
        handler.set_header("Cache-Control", "no-cache")
        handler.set_header("X-Accel-Buffering", "no")
        stream = handler.request.connection.stream  # type: ignore[union-attr]
        sock = getattr(stream, "socket", None)
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    async def send(self, event: dict[str, Any]) -> None:
        self.handler.write(frame(event))
        await self.handler.flush()

    async def comment(self, text: str) -> None:
        """An SSE comment: ignored by clients, but it fails fast if the client is gone."""
        self.handler.write(f": {text}\n\n".encode())
        await self.handler.flush()
