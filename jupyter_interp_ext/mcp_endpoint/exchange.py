"""A 2026-07-28 MCP request answered from the Tornado handler by the SDK's own request runner.

The SDK's HTTP transport is an ASGI application: bridged into Tornado it builds a Starlette
request and response, a task per request and the ASGI messages between them (0.15-0.25 ms a
call; `benchmarks/mcp_endpoint.py`, docs/benchmarks.md). A request of the
2026-07-28 revision is one self-contained exchange, so once the SDK's own envelope checks pass
(`admitted`), the handler gives it straight to the SDK's runner (`serve_one`: the same
validation of the request, dispatch, middleware and checks of the result as in the
transport) and writes the answer itself: plain JSON, or an event stream once a notification
comes or a call has run quiet for as long as the SDK waits before its first keep-alive ping,
as the SDK's transport does. Whatever does not pass (a notification, a batch, a listen,
`Mcp-Param-*` headers, a client that accepts no JSON, an earlier revision, GET and DELETE)
goes to the transport, which answers it as before.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import anyio
import orjson
from mcp.server.connection import Connection
from mcp.server.runner import modern_error_data, serve_one
from mcp.shared.exceptions import NoBackChannelError
from mcp.shared.inbound import (
    ERROR_CODE_HTTP_STATUS,
    MCP_PARAM_HEADER_PREFIX,
    InboundModernRoute,
    classify_inbound_request,
    find_duplicated_routing_header,
)
from mcp.shared.jsonrpc_dispatcher import progress_token_from_params
from mcp.shared.message import ServerMessageMetadata
from mcp.shared.transport_context import TransportContext
from mcp_types.version import HANDSHAKE_PROTOCOL_VERSIONS
from tornado.iostream import StreamClosedError

from jupyter_interp_ext.protocol.sse import EventStream, Named
from jupyter_interp_ext.protocol.timers import first_done

if TYPE_CHECKING:
    from jupyter_interp_ext.handlers.mcp import McpHandler

PARAM_HEADER = MCP_PARAM_HEADER_PREFIX.lower()
# The media types under which a client's Accept takes JSON, and an event stream.
JSON_TYPES = {"application/json", "application/*", "*/*"}
STREAM_TYPES = {"text/event-stream", "text/*", "*/*"}


def admitted(handler: McpHandler, decoded: Any) -> InboundModernRoute | None:
    """The request's envelope, when it is a 2026-07-28 request that passes every check of
    the SDK's transport; otherwise None, and the transport answers it."""
    request = handler.request
    headers = request.headers
    version = headers.get("MCP-Protocol-Version")
    if request.method != "POST" or version is None or version in HANDSHAKE_PROTOCOL_VERSIONS:
        return None
    if not accepted(headers.get("Accept", "")) & JSON_TYPES:
        return None
    if not (isinstance(decoded, dict) and decoded.get("jsonrpc") == "2.0"):
        return None
    request_id, method = decoded.get("id"), decoded.get("method")
    if not isinstance(request_id, (str, int)) or isinstance(request_id, bool):
        return None
    if not isinstance(method, str) or method == "subscriptions/listen":
        return None
    if not isinstance(decoded.get("params", {}), dict):
        return None
    if any(name.lower().startswith(PARAM_HEADER) for name in headers):
        return None
    if find_duplicated_routing_header(headers.get_all()) is not None:
        return None
    folded = {name.lower(): value for name, value in headers.items()}
    route = classify_inbound_request(decoded, headers=folded)
    return route if isinstance(route, InboundModernRoute) else None


def accepted(accept: str) -> set[str]:
    """The media types an Accept header names (parameters dropped)."""
    return {part.split(";")[0].strip().lower() for part in accept.split(",")}


@dataclass
class Exchange:
    """The SDK's dispatch context for one exchange: no requests back to the client (the
    revision has none); notifications go onto the answer's event stream, which the first
    of them opens, or are dropped when the answer can only be JSON (as in the SDK's JSON
    mode)."""

    handler: McpHandler
    transport: TransportContext
    request_id: str | int
    message_metadata: ServerMessageMetadata
    progress_token: Any
    may_stream: bool
    stream: EventStream | None = None
    cancel_requested: anyio.Event = field(default_factory=anyio.Event)
    can_send_request: bool = field(default=False, init=False)

    async def send_raw_request(
        self, method: str, params: Mapping[str, Any] | None, opts: Any = None
    ) -> dict[str, Any]:
        raise NoBackChannelError(method)

    async def notify(self, method: str, params: Mapping[str, Any] | None, opts: Any = None) -> None:
        if not self.may_stream:
            return
        message: dict[str, Any] = {"jsonrpc": "2.0", "method": method}
        if params is not None:
            message["params"] = dict(params)
        with contextlib.suppress(StreamClosedError):  # (the client left: the call is ending)
            await (await self.opened()).send(Named("message", message))

    async def progress(
        self, progress: float, total: float | None = None, message: str | None = None
    ) -> None:
        if self.progress_token is None:
            return
        params: dict[str, Any] = {"progressToken": self.progress_token, "progress": progress}
        if total is not None:
            params["total"] = total
        if message is not None:
            params["message"] = message
        await self.notify("notifications/progress", params)

    async def opened(self) -> EventStream:
        """The answer's event stream, its headers sent when it is opened (kept alive by the
        handler's pings from then on)."""
        if self.stream is None:
            self.stream = self.handler.event_stream()
            await self.stream.open()
        return self.stream


async def answer(
    handler: McpHandler,
    server: Any,
    lifespan_state: Any,
    decoded: dict[str, Any],
    route: InboundModernRoute,
    quiet_for: float,
) -> None:
    """Run the request through the SDK and write its answer: plain JSON if it ends before a
    notification and within `quiet_for` seconds, else an event stream that ends with it. A
    client that leaves cancels the call."""
    request = handler.request
    exchange = Exchange(
        handler=handler,
        transport=TransportContext(
            kind="streamable-http", can_send_request=False, headers=request.headers
        ),
        request_id=decoded["id"],
        message_metadata=ServerMessageMetadata(request_context=handler),
        progress_token=progress_token_from_params(decoded.get("params")),
        may_stream=bool(accepted(request.headers.get("Accept", "")) & STREAM_TYPES),
    )
    connection = Connection.from_envelope(
        route.protocol_version, route.client_info, route.client_capabilities
    )
    call = serve_one(
        server,
        exchange,
        decoded["method"],
        decoded.get("params"),
        connection=connection,
        lifespan_state=lifespan_state,
    )
    running = asyncio.ensure_future(reply(exchange.request_id, call))
    try:
        quiet = quiet_for if exchange.may_stream else None
        await first_done((running, handler.left), quiet)  # (its timer holds no request)
        if not running.done() and not handler.left.done():
            await exchange.opened()  # quiet for long: a stream, so that pings keep it open
            await first_done((running, handler.left), None)
        if handler.left.done():
            return
        message, status = running.result()
        if exchange.stream is None:
            handler.set_status(status)
            handler.finish(orjson.dumps(message), set_content_type="application/json")
            return
        with contextlib.suppress(StreamClosedError):
            await exchange.stream.send(Named("message", message), last=True)
        await exchange.stream.close()
    finally:
        if not running.done():
            running.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await running


async def reply(request_id: str | int, call: Any) -> tuple[dict[str, Any], int]:
    """The JSON-RPC reply to the call, and its HTTP status as the SDK maps it."""
    try:
        result = await call
    except Exception as exc:
        error = modern_error_data(exc).model_dump(mode="json", by_alias=True, exclude_none=True)
        status = ERROR_CODE_HTTP_STATUS.get(error["code"], 200)
        return {"jsonrpc": "2.0", "id": request_id, "error": error}, status
    return {"jsonrpc": "2.0", "id": request_id, "result": result}, 200
