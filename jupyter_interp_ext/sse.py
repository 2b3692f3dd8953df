"""Server-Sent Events framing: one `data: {json}` line per event, sent as soon as it exists."""

from __future__ import annotations

import json
import socket
from typing import Any

from tornado.concurrent import Future
from tornado.iostream import StreamClosedError
from tornado.web import RequestHandler

from . import metrics

COALESCE_BYTES = 256 * 1024


def frame(event: dict[str, Any]) -> bytes:
    """One SSE event. ASCII-only JSON, so a client that decodes chunk by chunk (the official
    one does) can never see a multi-byte character split across two reads."""
    return b"data: " + json.dumps(event, separators=(",", ":")).encode("ascii") + b"\n\n"


class EventStream:
    """Writes events to a handler's response as they come, without Nagle delays."""

    def __init__(self, handler: RequestHandler) -> None:
        self.handler = handler
        self._flushing: Future | None = None
        self._counted = False
        handler._event_stream = self  # type: ignore[attr-defined]

    async def open(self) -> None:
        """Send the status and headers now: the client sees the stream start at once, and any
        later failure can only be an event inside it."""
        handler = self.handler
        metrics.ACTIVE_STREAMS.inc()
        self._counted = True
        handler.set_status(200)
        handler.set_header("Content-Type", "text/event-stream")
        handler.set_header("Cache-Control", "no-cache")
        handler.set_header("X-Accel-Buffering", "no")
        stream = handler.request.connection.stream  # type: ignore[union-attr]
        sock = getattr(stream, "socket", None)
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        await handler.flush()

    async def send(self, event: dict[str, Any]) -> None:
        """Queue an event and flush at once, unless a flush is still in flight: then the event
        rides with the next one. The first event never waits; a burst becomes few writes; and
        at most one flush plus one buffer is outstanding, so a slow client slows the run's
        reading instead of growing memory."""
        self.handler.write(frame(event))
        if self._flushing is not None and not self._flushing.done():
            if self._buffered() < COALESCE_BYTES:
                return
            await self._flushing
        self._flushing = self.handler.flush()

    def ended(self) -> None:
        """The response is over (finished or abandoned): stop counting it as active."""
        if self._counted:
            self._counted = False
            metrics.ACTIVE_STREAMS.dec()

    async def close(self) -> None:
        """Send what is queued and end the response (quietly, if the client already left)."""
        self.ended()
        try:
            if self._flushing is not None:
                await self._flushing
            await self.handler.finish(set_content_type="text/event-stream")
        except StreamClosedError:
            pass

    def _buffered(self) -> int:
        return sum(len(chunk) for chunk in self.handler._write_buffer)

    async def comment(self, text: str) -> None:
        """An SSE comment: ignored by clients, but it fails fast if the client is gone."""
        self.handler.write(f": {text}\n\n".encode())
        await self.handler.flush()
