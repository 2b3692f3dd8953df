"""A Python client for the Sandbox API of a Jupyter server with this extension.

    from jupyter_interp_ext.client import Sandbox
    with Sandbox("http://127.0.0.1:8888/", token="...") as sandbox:
        print(sandbox.run_code("1 + 1").text)

Depends on httpx and httpx-sse only: it imports nothing of the server.
"""

from .errors import (
    ClientError,
    ConflictError,
    LimitError,
    NotFoundError,
    PermissionDeniedError,
    SandboxError,
    SandboxTimeoutError,
    TerminatedError,
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
    Logs,
    OutputMessage,
    ProcessInfo,
    Result,
    SessionInfo,
)
from .sandbox import AsyncSandbox, Sandbox

__all__ = [
    "AsyncSandbox",
    "ClientError",
    "CodeContext",
    "CommandResult",
    "Completed",
    "ConflictError",
    "EntryInfo",
    "Execution",
    "ExecutionError",
    "LimitError",
    "Logs",
    "NotFoundError",
    "OutputMessage",
    "PermissionDeniedError",
    "ProcessInfo",
    "Result",
    "Sandbox",
    "SandboxError",
    "SandboxTimeoutError",
    "SessionInfo",
    "TerminatedError",
    "TransportError",
    "ValidationError",
]
