"""A Python client for the Sandbox API of a Jupyter server with this extension.

    from jupyter_interp_ext.client import Sandbox
    with Sandbox("http://127.0.0.1:8888/", token="...") as sandbox:
        print(sandbox.run_code("1 + 1").text)

Depends on httpx and httpx-sse, and of this package only on `protocol/` (the wire format): it
imports nothing of the server. Its exceptions carry E2B's names (`SandboxException`,
`TimeoutException`, `NotFoundException`, `InvalidArgumentException`, `AuthenticationException`).
"""

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
    SandboxTimeoutError,
    TerminatedError,
    TimeoutException,
    TransportError,
    ValidationError,
)
from .models import (
    CodeContext,
    CommandResult,
    Completed,
    EntryInfo,
    Execution,
    ExecutionError,
    FileType,
    Logs,
    OutputMessage,
    ProcessInfo,
    Result,
    SessionInfo,
    WriteInfo,
)
from .sandbox import AsyncCommandHandle, AsyncSandbox, CommandHandle, Sandbox

__all__ = [
    "AsyncCommandHandle",
    "AsyncSandbox",
    "AuthenticationException",
    "ClientError",
    "CodeContext",
    "CommandExitException",
    "CommandHandle",
    "CommandResult",
    "Completed",
    "ConflictError",
    "EntryInfo",
    "Execution",
    "ExecutionError",
    "FileType",
    "InvalidArgumentException",
    "LimitError",
    "Logs",
    "NotFoundError",
    "NotFoundException",
    "OutputMessage",
    "PermissionDeniedError",
    "ProcessInfo",
    "Result",
    "Sandbox",
    "SandboxError",
    "SandboxException",
    "SandboxTimeoutError",
    "SessionInfo",
    "TerminatedError",
    "TimeoutException",
    "TransportError",
    "ValidationError",
    "WriteInfo",
]
