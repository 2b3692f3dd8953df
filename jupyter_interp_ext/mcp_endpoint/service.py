"""The MCP server: the official SDK's low-level server with the sandbox's tools, notebooks and
tasks. A 2026-07-28 request (a single exchange) goes from the handler to the SDK's request
runner (exchange.py); the earlier handshake revisions, and whatever the SDK must refuse, go
to the SDK's streamable-HTTP transport in stateless mode (no sessions).

Each request arrives through `McpHandler` (handlers/mcp.py), which has authenticated the
caller; each call's context carries the handler, so every tool asks the server's authorizer
with the caller's own identity."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import orjson
from jupyter_server.utils import url_path_join

from jupyter_interp_ext._version import __version__
from jupyter_interp_ext.protocol.errors import ProtocolError

from .asgi import App, serve
from .content import failure
from .tasks import TASKS_EXTENSION, Tasks
from .tools import CONTENTS_READ, KERNELS_EXECUTE, KERNELS_READ, Call, Tool, tools_for

if TYPE_CHECKING:
    from jupyter_interp_ext.handlers.mcp import McpHandler

INSTRUCTIONS = (
    "A sandbox on a Jupyter server: run code in persistent kernels (run_code; variables "
    "persist per context), run shell commands, manage background processes and files. Each "
    "context's notebook is a resource that opens in JupyterLab."
)
NOTEBOOK_MIME = "application/x-ipynb+json"
# Where the 2026-07-28 revision carries the client's capabilities: each request's `_meta`.
CLIENT_CAPABILITIES = "io.modelcontextprotocol/clientCapabilities"
# How long the SDK's event stream stays quiet before its first keep-alive ping.
STREAM_PING_SECONDS = 15.0
# JSON-RPC error codes for the task methods.
INVALID_PARAMS = -32602
INVALID_REQUEST = -32600


class McpService:
    """The SDK's server and transports: started on the first request, stopped with the
    extension.

    Two transports serve the one server for the requests `exchange.py` leaves to them: one
    may answer with an event stream (needed for progress notifications, and pinged while a
    long call runs quiet so that proxies keep the connection), the other answers with plain
    JSON, for the calls that need neither: the stream's machinery costs more than the SDK's
    whole handling of a call otherwise."""

    def __init__(self, task_after: float, on_started: Callable[[], None]) -> None:
        self.task_after = task_after
        self.on_started = on_started  # (the SDK's modules and models are loaded by then)
        self._apps: tuple[App, App] | None = None
        self._starting = asyncio.Lock()
        self._stop = asyncio.Event()
        self._runner: asyncio.Task[None] | None = None
        self._server: Any = None
        self._lifespan_state: Any = None
        self.tasks: Tasks | None = None

    async def serve(self, handler: McpHandler, body: bytes) -> None:
        """Answer the handler's request (its `body` read): a 2026-07-28 request that passes
        the SDK's checks from the handler itself (exchange.py), anything else through one
        of the SDK's transports. The SDK is imported and started on the first request."""
        from . import exchange

        if self._apps is None:
            async with self._starting:
                if self._apps is None:
                    self._apps = await self._start(handler)
                    self.on_started()
        try:
            decoded = orjson.loads(body)
        except orjson.JSONDecodeError:
            decoded = None
        route = exchange.admitted(handler, decoded)
        if route is not None:
            await exchange.answer(
                handler, self._server, self._lifespan_state, decoded, route, STREAM_PING_SECONDS
            )
            return
        streamed, plain = self._apps
        app = streamed if needs_stream(decoded, self.task_after) else plain
        await serve(handler, app, body, {"jupyter_handler": handler}, handler.left)

    async def _start(self, handler: McpHandler) -> tuple[App, App]:
        from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
        from mcp.server.transport_security import TransportSecuritySettings

        self.tasks = Tasks(handler.execution.executions, handler.execution.retain_seconds)
        tools = tools_for(previews=handler.settings["interp_proxy_prefix"] is not None)
        self._server = server = build_server(tools, self)
        streamed, plain = (
            StreamableHTTPSessionManager(
                app=server,
                stateless=True,
                json_response=json_response,
                # Jupyter checks Host and Origin itself (allow_origin, allow_remote_access).
                security_settings=TransportSecuritySettings(enable_dns_rebinding_protection=False),
                max_request_body_size=handler.settings["interp_max_request_bytes"] or 4 << 20,
            )
            for json_response in (False, True)
        )
        running = asyncio.Event()

        async def run() -> None:
            async with server.lifespan(server) as state, streamed.run(), plain.run():
                self._lifespan_state = state
                running.set()
                await self._stop.wait()

        self._runner = asyncio.ensure_future(run())
        await running.wait()
        return streamed.handle_request, plain.handle_request

    async def stop(self) -> None:
        """End the transport (requests in flight are cancelled)."""
        self._stop.set()
        if self._runner is not None:
            await self._runner
        await _end_sse_shutdown_watcher()


async def _end_sse_shutdown_watcher() -> None:
    """End the task sse-starlette (the SDK's SSE responses) starts on the loop to notice a
    uvicorn shutdown: there is no uvicorn here, so it would poll every half second until the
    loop closed under it. Its `finally` lets a later server on the loop start it again."""
    from sse_starlette import sse

    watchers = [
        task
        for task in asyncio.all_tasks()
        if getattr(task.get_coro(), "cr_code", None) is sse._shutdown_watcher.__code__
    ]
    for task in watchers:
        task.cancel()
    await asyncio.gather(*watchers, return_exceptions=True)


def needs_stream(message: Any, task_after: float) -> bool:
    """Whether a request (its decoded body, None if unreadable) that the SDK's transport
    answers may need an event stream: it asks for progress, or it may run quiet for longer
    than the SDK waits before pinging (`run_command`; `run_code` unless the client takes a
    task before then). Anything unreadable goes to the stream, whose answer to it is the
    same."""
    try:
        params = message.get("params") or {}
        meta = params.get("_meta") or {}
        if "progressToken" in meta:
            return True
        if message.get("method") != "tools/call":
            return False
        name = params.get("name")
        if name == "run_code":
            capabilities = meta.get(CLIENT_CAPABILITIES) or {}
            takes_tasks = TASKS_EXTENSION in (capabilities.get("extensions") or {})
            return not (takes_tasks and task_after < STREAM_PING_SECONDS)
        return name == "run_command"
    except (AttributeError, TypeError):
        return True


def build_server(tools: dict[str, Tool], service: McpService) -> Any:
    """The SDK's low-level server with the sandbox's handlers."""
    import mcp_types as types
    from mcp.server._otel import OpenTelemetryMiddleware as SpanMiddleware
    from mcp.server.lowlevel import Server
    from mcp.shared.exceptions import MCPError

    from jupyter_interp_ext.handlers.mcp import McpHandler

    class UpdateTaskRequestParams(types.RequestParams):
        task_id: str
        input_responses: dict[str, Any] = {}

    def caller(ctx: Any) -> McpHandler:
        """The call's handler: its request when the handler answers it (exchange.py), else
        riding in the transport's ASGI scope."""
        request = ctx.request
        return request if isinstance(request, McpHandler) else request.scope["jupyter_handler"]

    def protocol_error(exc: ProtocolError) -> MCPError:
        code = INVALID_PARAMS if exc.status in (400, 404) else INVALID_REQUEST
        return MCPError(code=code, message=exc.message, data={"code": exc.code})

    def takes_tasks(ctx: Any) -> bool:
        capabilities = ctx.session.client_capabilities
        extensions = getattr(capabilities, "extensions", None) or {}
        return TASKS_EXTENSION in extensions

    async def list_tools(ctx: Any, params: Any) -> Any:
        """The tools the caller holds the rights for."""
        handler = caller(ctx)
        offered = [t.describe() for t in tools.values() if all(map(handler.holds, t.rights))]
        return types.ListToolsResult(tools=[types.Tool.model_validate(t) for t in offered])

    async def call_tool(ctx: Any, params: Any) -> Any:
        """A tool's answer (a tool error when it fails), or a task handle: the SDK checks
        either against the protocol's shapes as it writes it."""
        tool = tools.get(params.name)
        if tool is None:
            raise MCPError(code=INVALID_PARAMS, message=f"Unknown tool: {params.name}")
        handler = caller(ctx)

        async def progress(done: float, message: str) -> None:
            await ctx.session.report_progress(done, None, message)

        assert service.tasks is not None
        call = Call(
            handler,
            params.arguments or {},
            progress,
            service.task_after if takes_tasks(ctx) else None,
            service.tasks.create,
        )
        try:
            for right in tool.rights:
                handler.require(right)
            return await tool.run(call)
        except ProtocolError as exc:
            return failure(exc.code, exc.message)

    async def list_resources(ctx: Any, params: Any) -> Any:
        """Each context's notebook, for a caller that may list contexts."""
        handler = caller(ctx)
        if not handler.holds(KERNELS_READ):
            return types.ListResourcesResult(resources=[])
        return types.ListResourcesResult.model_validate(
            {
                "resources": [
                    {
                        "uri": notebook_url(handler, context.notebook),
                        "name": os.path.basename(context.notebook),
                        "title": f"{context.language} context {context.id}",
                        "description": "The context's runs as notebook cells; the link opens it "
                        "in JupyterLab.",
                        "mimeType": NOTEBOOK_MIME,
                    }
                    for context in handler.contexts.list()
                    if context.notebook
                ]
            }
        )

    async def read_resource(ctx: Any, params: Any) -> Any:
        handler = caller(ctx)
        uri = str(params.uri)
        notebooks = {
            notebook_url(handler, c.notebook): c.notebook
            for c in handler.contexts.list()
            if c.notebook
        }
        if uri not in notebooks:
            raise MCPError(code=INVALID_PARAMS, message=f"Unknown resource: {uri}")
        try:
            handler.require(KERNELS_READ)
            handler.require(CONTENTS_READ)
            root = handler.settings["server_root_dir"]
            real, shown = handler.path({"path": os.path.join(root, notebooks[uri])})
            answer = await handler.files.read(real, shown, "utf-8")
        except ProtocolError as exc:
            raise protocol_error(exc) from None
        contents = [{"uri": uri, "mimeType": NOTEBOOK_MIME, "text": answer["content"]}]
        return types.ReadResourceResult.model_validate({"contents": contents})

    async def get_task(ctx: Any, params: Any) -> dict[str, Any]:
        assert service.tasks is not None
        try:
            task_rights(ctx)
            return await service.tasks.detailed(service.tasks.find(params.task_id))
        except ProtocolError as exc:
            raise protocol_error(exc) from None

    async def update_task(ctx: Any, params: Any) -> dict[str, Any]:
        # No task of ours asks for input: the responses are acknowledged and ignored.
        assert service.tasks is not None
        try:
            task_rights(ctx)
            service.tasks.find(params.task_id)
        except ProtocolError as exc:
            raise protocol_error(exc) from None
        return {}

    async def cancel_task(ctx: Any, params: Any) -> dict[str, Any]:
        assert service.tasks is not None
        try:
            task_rights(ctx)
            service.tasks.find(params.task_id).stop.cancel()  # the kernel is interrupted
        except ProtocolError as exc:
            raise protocol_error(exc) from None
        return {}

    # The schemas that route an argument as an Mcp-Param-* header (`x-mcp-header`): a call's
    # headers are checked against its tool's; a schema with no such argument has nothing to
    # check (and the SDK would walk it, or list every tool, on each call to find that out).
    headed = {
        name: schema
        for name, tool in tools.items()
        if b"x-mcp-header" in orjson.dumps(schema := tool.describe()["inputSchema"])
    }

    def task_rights(ctx: Any) -> None:
        """A task is a code run: following or cancelling it is running code's right."""
        if not takes_tasks(ctx):
            raise MCPError(
                code=-32021,
                message="Missing required client capability",
                data={"requiredCapabilities": {"extensions": {TASKS_EXTENSION: {}}}},
            )
        caller(ctx).require(KERNELS_EXECUTE)

    server = Server(
        "jupyter-interp-ext",
        version=__version__,
        title="Jupyter sandbox",
        instructions=INSTRUCTIONS,
        on_list_tools=list_tools,
        on_call_tool=call_tool,
        on_list_resources=list_resources,
        on_read_resource=read_resource,
        get_tool_input_schema=headed.get,
    )
    server.add_request_handler("tasks/get", types.GetTaskRequestParams, get_task)
    server.add_request_handler("tasks/update", UpdateTaskRequestParams, update_task)
    server.add_request_handler("tasks/cancel", types.CancelTaskRequestParams, cancel_task)
    server.extensions[TASKS_EXTENSION] = {}
    if not tracing():
        server.middleware = [m for m in server.middleware if not isinstance(m, SpanMiddleware)]
    return server


def tracing() -> bool:
    """Whether OpenTelemetry has a tracer provider that records spans (as when the server runs
    under `opentelemetry-instrument`), seen when the endpoint starts. Without one the SDK's
    span for each call records nothing and costs a tenth of its handling of the call."""
    from opentelemetry import trace

    provider = trace.get_tracer_provider()
    return not isinstance(provider, (trace.ProxyTracerProvider, trace.NoOpTracerProvider))


def notebook_url(handler: McpHandler, notebook: str) -> str:
    """Where a context's notebook opens in JupyterLab on this server."""
    request = handler.request
    path = url_path_join(handler.base_url, "lab", "tree", notebook)
    return f"{request.protocol}://{request.host}{path}"
