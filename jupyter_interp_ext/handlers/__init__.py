"""HTTP handlers, one module per API area, and the routes that reach them."""

from __future__ import annotations

from typing import Any

from jupyter_server.utils import url_path_join

from .commands import CommandsHandler, ExecuteHandler, ExecuteStreamHandler
from .files import (
    BackupCreateHandler,
    BackupRestoreHandler,
    BackupUploadHandler,
    DeleteHandler,
    ExistsHandler,
    GitCheckoutHandler,
    ListFilesHandler,
    MkdirHandler,
    MoveHandler,
    ReadHandler,
    ReadStreamHandler,
    WatchCheckHandler,
    WatchHandler,
    WriteHandler,
)
from .interpreter import (
    ContextHandler,
    ContextInterruptHandler,
    ContextRestartHandler,
    ContextsHandler,
    ExecuteCodeHandler,
    ExecutionHandler,
    ExecutionStreamHandler,
    HealthHandler,
)
from .mcp import McpHandler
from .processes import (
    PortWatchHandler,
    ProcessHandler,
    ProcessKillAllHandler,
    ProcessListHandler,
    ProcessLogsHandler,
    ProcessStartHandler,
    ProcessStreamHandler,
)
from .service import NotFoundHandler, OpenAPIHandler, PingHandler, VersionHandler
from .sessions import SessionCreateHandler, SessionDeleteHandler, SessionListHandler
from .terminals import PtySocket, TerminalWebSocket

_ROUTES = [
    ("api/interpreter/health", HealthHandler),
    ("api/contexts", ContextsHandler),
    ("api/contexts/(?P<context_id>[^/]+)", ContextHandler),
    ("api/contexts/(?P<context_id>[^/]+)/restart", ContextRestartHandler),
    ("api/contexts/(?P<context_id>[^/]+)/interrupt", ContextInterruptHandler),
    ("api/execute/code", ExecuteCodeHandler),
    ("api/execute/code/(?P<execution_id>[^/]+)", ExecutionHandler),
    ("api/execute/code/(?P<execution_id>[^/]+)/stream", ExecutionStreamHandler),
    ("api/execute", ExecuteHandler),
    ("api/execute/stream", ExecuteStreamHandler),
    ("api/commands", CommandsHandler),
    ("api/session/create", SessionCreateHandler),
    ("api/session/list", SessionListHandler),
    ("api/session/delete", SessionDeleteHandler),
    ("api/read", ReadHandler),
    ("api/read/stream", ReadStreamHandler),
    ("api/write", WriteHandler),
    ("api/delete", DeleteHandler),
    ("api/rename", MoveHandler, {"source": "oldPath", "target": "newPath"}),
    ("api/move", MoveHandler, {"source": "sourcePath", "target": "destinationPath"}),
    ("api/mkdir", MkdirHandler),
    ("api/list-files", ListFilesHandler),
    ("api/exists", ExistsHandler),
    ("api/watch", WatchHandler),
    ("api/git/checkout", GitCheckoutHandler),
    ("api/backup/create", BackupCreateHandler),
    ("api/backup/restore", BackupRestoreHandler),
    ("api/backup/upload-parts", BackupUploadHandler),
    ("api/watch/check", WatchCheckHandler),
    ("api/process/start", ProcessStartHandler),
    ("api/port-watch", PortWatchHandler),
    ("api/process/list", ProcessListHandler),
    ("api/process/kill-all", ProcessKillAllHandler),
    ("api/process/(?P<process_id>[^/]+)", ProcessHandler),
    ("api/process/(?P<process_id>[^/]+)/logs", ProcessLogsHandler),
    ("api/process/(?P<process_id>[^/]+)/stream", ProcessStreamHandler),
    ("api/ping", PingHandler),
    ("api/version", VersionHandler),
    ("api/openapi.json", OpenAPIHandler),
    ("api/(?P<rest>.*)", NotFoundHandler),
    ("ws/pty", PtySocket),
    ("ws/terminal", TerminalWebSocket),
]


def routes(prefix: str, mcp: bool) -> list[tuple[Any, ...]]:
    """Every route under `/{prefix}/` (the server's base_url is added by the ExtensionApp);
    `mcp`: with the MCP endpoint."""
    served = _ROUTES + ([("mcp", McpHandler)] if mcp else [])
    return [(url_path_join("/", prefix, str(route[0])), *route[1:]) for route in served]
