"""One Tornado request handed to an ASGI application (the MCP SDK's transport speaks ASGI),
its answer written back through the handler, streamed as the application sends it."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from jupyter_server.base.handlers import APIHandler
from tornado.iostream import StreamClosedError

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
App = Callable[
    [Scope, Callable[[], Awaitable[Message]], Callable[[Message], Awaitable[None]]],
    Awaitable[None],
]


def scope_of(handler: APIHandler, extra: dict[str, Any]) -> Scope:
    """The ASGI scope of the handler's request; `extra` rides along for the application."""
    request = handler.request
    host, _, port = request.host.rpartition(":")
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": request.version.removeprefix("HTTP/"),
        "method": request.method,
        "scheme": request.protocol,
        "path": request.path,
        "raw_path": request.path.encode("latin-1"),
        "query_string": request.query.encode("latin-1"),
        "root_path": "",
        "headers": [
            (name.lower().encode("latin-1"), value.encode("latin-1"))
            for name, value in request.headers.get_all()
        ],
        "client": (request.remote_ip, 0),
        "server": (host or request.host, int(port) if port.isdigit() else None),
        **extra,
    }


async def serve(
    handler: APIHandler,
    app: App,
    body: bytes,
    extra: dict[str, Any],
    left: asyncio.Future[None],
) -> None:
    """Run `app` for the handler's request (whose `body` is already read): each part of the
    answer is flushed as it comes; `left` (set by the handler when its client goes) tells the
    application the client left, and ends it."""
    delivered = finished = False
    content_type = "application/json"  # (Jupyter's API handlers set one as they finish)

    async def receive() -> Message:
        nonlocal delivered
        if not delivered:
            delivered = True
            return {"type": "http.request", "body": body, "more_body": False}
        await left
        return {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        nonlocal finished, content_type
        if message["type"] == "http.response.start":
            handler.set_status(message["status"])
            for raw_name, raw_value in message.get("headers", []):
                name, value = raw_name.decode("latin-1"), raw_value.decode("latin-1")
                if name.lower() == "content-type":
                    content_type = value
                    handler.set_header("Content-Type", value)
                else:
                    handler.add_header(name, value)
            return
        if message["type"] != "http.response.body" or left.done():
            return
        handler.write(message.get("body", b""))
        if message.get("more_body", False):
            try:
                await handler.flush()
            except StreamClosedError:
                if not left.done():
                    left.set_result(None)
        else:
            finished = True
            handler.finish(set_content_type=content_type)

    # The application is cancelled if the client leaves first (one answering with plain JSON
    # does not watch for that itself): a tool call's run loses its reader, as a REST one would.
    answering = asyncio.ensure_future(app(scope_of(handler, extra), receive, send))
    await asyncio.wait((answering, left), return_when=asyncio.FIRST_COMPLETED)
    if not answering.done():
        answering.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await answering
    if not finished and not left.done():
        handler.finish(set_content_type=content_type)
