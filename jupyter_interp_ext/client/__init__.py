"""A Python client for the Sandbox API of a Jupyter server with this extension.

    from jupyter_interp_ext.client import Sandbox
    with Sandbox("http://127.0.0.1:8888/", token="...") as sandbox:
        print(sandbox.run_code("1 + 1").text)

Depends on httpx and httpx-sse, and of this package only on `protocol/` (the wire format): it
imports nothing of the server. Its exceptions carry E2B's names (`SandboxException`,
`TimeoutException`, `NotFoundException`, `InvalidArgumentException`, `AuthenticationException`).
"""

from .commands import AsyncCommandHandle, AsyncCommands, CommandHandle, Commands
from .errors import (
    AuthenticationException,
    ClientError,
    CommandExitException,
    ConflictError,
    InvalidArgumentException,
    LimitError,
    NotFoundError,
    NotFoundException,
    PermissionDeniedError,
    SandboxError,
    SandboxException,
    SandboxStoppedError,
    SandboxTimeoutError,
    TerminatedError,
    TimeoutException,
    TransportError,
    ValidationError,
)
from .executions import AsyncExecutions, Executions
from .files import AsyncFiles, AsyncWatchHandle, Files, WatchHandle
from .hub import HubProgress, SandboxInfo
from .models import (
    CodeContext,
    CommandResult,
    Completed,
    EntryInfo,
    Execution,
    ExecutionError,
    ExecutionInfo,
    FilesystemEvent,
    FilesystemEventType,
    FileType,
    Logs,
    OutputMessage,
    ProcessInfo,
    Result,
    SessionInfo,
    StreamItem,
    WriteEntry,
    WriteInfo,
)
from .processes import AsyncProcesses, AsyncSessions, Processes, Sessions
from .pty import AsyncPty, AsyncPtyHandle, Pty, PtyHandle, PtySize
from .sandbox import AsyncSandbox, Sandbox, get_sandbox

__all__ = [
    "AsyncCommandHandle",
    "AsyncCommands",
    "AsyncExecutions",
    "AsyncFiles",
    "AsyncProcesses",
    "AsyncPty",
    "AsyncPtyHandle",
    "AsyncSandbox",
    "AsyncSessions",
    "AsyncWatchHandle",
    "AuthenticationException",
    "ClientError",
    "CodeContext",
    "CommandExitException",
    "CommandHandle",
    "CommandResult",
    "Commands",
    "Completed",
    "ConflictError",
    "EntryInfo",
    "Execution",
    "ExecutionError",
    "ExecutionInfo",
    "Executions",
    "FileType",
    "Files",
    "FilesystemEvent",
    "FilesystemEventType",
    "HubProgress",
    "InvalidArgumentException",
    "LimitError",
    "Logs",
    "NotFoundError",
    "NotFoundException",
    "OutputMessage",
    "PermissionDeniedError",
    "ProcessInfo",
    "Processes",
    "Pty",
    "PtyHandle",
    "PtySize",
    "Result",
    "Sandbox",
    "SandboxError",
    "SandboxException",
    "SandboxInfo",
    "SandboxStoppedError",
    "SandboxTimeoutError",
    "SessionInfo",
    "Sessions",
    "StreamItem",
    "TerminatedError",
    "TimeoutException",
    "TransportError",
    "ValidationError",
    "WatchHandle",
    "WriteEntry",
    "WriteInfo",
    "get_sandbox",
]
