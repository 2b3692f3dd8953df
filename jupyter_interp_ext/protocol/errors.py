"""Protocol errors: the `code` → HTTP status map of the Sandbox API and the body it expects."""

from __future__ import annotations

from typing import Any

from .timestamps import now_iso

_STATUS_BY_CODE: dict[str, int] = {
    **dict.fromkeys(
        [
            "IS_DIRECTORY",
            "NOT_DIRECTORY",
            "INVALID_COMMAND",
            "VALIDATION_FAILED",
            "NAME_TOO_LONG",
            "INVALID_GIT_URL",
            "INVALID_BACKUP_CONFIG",
        ],
        400,
    ),
    "GIT_AUTH_FAILED": 401,
    "GIT_NETWORK_ERROR": 502,
    **dict.fromkeys(["PERMISSION_DENIED", "COMMAND_PERMISSION_DENIED", "READ_ONLY"], 403),
    **dict.fromkeys(
        [
            "FILE_NOT_FOUND",
            "COMMAND_NOT_FOUND",
            "PROCESS_NOT_FOUND",
            "CONTEXT_NOT_FOUND",
            "GIT_REPOSITORY_NOT_FOUND",
            "GIT_BRANCH_NOT_FOUND",
            "BACKUP_NOT_FOUND",
            "EXECUTION_NOT_FOUND",
            "TERMINAL_NOT_FOUND",
        ],
        404,
    ),
    **dict.fromkeys(
        [
            "FILE_EXISTS",
            "RESOURCE_BUSY",
            "SESSION_ALREADY_EXISTS",
            "FILES_NOT_SHARED",
            "IDEMPOTENCY_KEY_REUSED",
        ],
        409,
    ),
    **dict.fromkeys(["SESSION_DESTROYED", "SESSION_TERMINATED", "CONTEXT_TERMINATED"], 410),
    "FILE_TOO_LARGE": 413,
    **dict.fromkeys(["INTERPRETER_NOT_READY", "TERMINALS_UNAVAILABLE"], 503),
}


def status_for(code: str) -> int:
    """HTTP status the official client expects for an error code (unknown codes are 500)."""
    return _STATUS_BY_CODE.get(code, 500)


class ProtocolError(Exception):
    """An error the server answers with the protocol's error body instead of a traceback
    (raised inside the server; the Python client raises its own `client.SandboxError` when it
    receives such a body)."""

    def __init__(
        self,
        code: str,
        message: str,
        context: dict[str, Any] | None = None,
        status: int | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.context = context or {}
        self.status = status or status_for(code)

    def body(self) -> dict[str, Any]:
        """The error body of docs/api.md ("Conventions"), with `error` and `details` as aliases.

        `/api/execute/code` clients read `error`, every other client reads `message`; sending
        both keeps every client's typed error populated.
        """
        return {
            "code": self.code,
            "message": self.message,
            "error": self.message,
            "context": self.context,
            "details": self.context,
            "httpStatus": self.status,
            "timestamp": now_iso(),
        }


def validation_error(field: str, message: str) -> ProtocolError:
    """400 VALIDATION_FAILED naming the offending request field."""
    return ProtocolError(
        "VALIDATION_FAILED",
        f"Invalid request: {message}",
        {"validationErrors": [{"field": field, "message": message, "code": "INVALID_FIELD"}]},
    )


def limit_reached(what: str, limit: int, trait: str) -> ProtocolError:
    """429: a configured cap is reached; the client may retry once something is released."""
    return ProtocolError(
        "RESOURCE_LIMIT_REACHED",
        f"Too many {what}: the limit is {limit} ({trait}); delete some and try again",
        {"limit": limit, "setting": trait},
        status=429,
    )


def context_not_found(context_id: str, why: str = "") -> ProtocolError:
    """404 for an id that names no live context."""
    return ProtocolError(
        "CONTEXT_NOT_FOUND",
        f"Code context '{context_id}' not found{why}",
        {"contextId": context_id},
    )
