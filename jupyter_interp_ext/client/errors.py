"""The client's errors, under E2B's names as the classes to catch: `SandboxException` is the
base of everything the client raises; what the server answered is a `SandboxError` (with the
protocol's code, message, status and context) of a family that is also E2B's class for it
(`ValidationError` is an `InvalidArgumentException`, `NotFoundError` a `NotFoundException`,
`PermissionDeniedError` an `AuthenticationException`, `SandboxTimeoutError` a
`TimeoutException`); a failure to reach the server is a `TransportError`."""

from __future__ import annotations

from typing import Any


class SandboxException(Exception):
    """Anything the client raises (E2B's base class)."""


ClientError = SandboxException  # this client's earlier name for the base class


class TimeoutException(SandboxException):
    """A run or a command went past its timeout, or a request past its own (E2B's name)."""


class InvalidArgumentException(SandboxException, ValueError):
    """The call's arguments cannot be sent as they are (E2B's name; a ValueError too, as
    Python's own bad arguments are)."""


class NotFoundException(SandboxException):
    """What the call names does not exist (E2B's name)."""


class AuthenticationException(SandboxException):
    """The server refused the credentials, or the caller's rights (E2B's name)."""


class CommandExitException(SandboxException):
    """A command exited with a non-zero code (E2B's name): its `stdout`, `stderr`,
    `exit_code` and `error`, as the result would have had them."""

    def __init__(self, stdout: str, stderr: str, exit_code: int, error: str | None = None) -> None:
        super().__init__(f"Command exited with code {exit_code} and error:\n{stderr}")
        self.stdout = stdout
        self.stderr = stderr
        self.exit_code = exit_code
        self.error = error


class TransportError(SandboxException):
    """The server could not be reached or the connection broke (the cause is attached)."""


class SandboxError(SandboxException):
    """An error the server answered, with the protocol's `code`, `message`, HTTP `status` and
    `context` (what the request named: a path, a context id, a setting)."""

    def __init__(self, code: str, message: str, status: int, context: dict[str, Any]) -> None:
        super().__init__(f"{code}: {message}" if code else message)
        self.code = code
        self.message = message
        self.status = status
        self.context = context


class ValidationError(SandboxError, InvalidArgumentException):
    """400: the request was malformed or names something of the wrong kind."""


class PermissionDeniedError(SandboxError, AuthenticationException):
    """401/403: bad or missing credentials, or a path outside the allowed roots."""


class NotFoundError(SandboxError, NotFoundException):
    """404: no such context, session, process, file or route."""


class ConflictError(SandboxError):
    """409: the id or path is taken."""


class TerminatedError(SandboxError):
    """410: the context's kernel or the session's shell has ended."""


class LimitError(SandboxError):
    """413/429: a size limit or a cap on contexts, sessions or processes was reached."""


class SandboxStoppedError(SandboxError):
    """The sandbox's server is not running: a redirect away from the API, or a Hub's 424
    (its server is stopped). A sandbox on a Hub starts it again, once, by itself."""


class SandboxTimeoutError(SandboxError, TimeoutException):
    """A command ran past its timeout and was killed."""


_BY_STATUS: dict[int, type[SandboxError]] = {
    400: ValidationError,
    401: PermissionDeniedError,
    403: PermissionDeniedError,
    404: NotFoundError,
    409: ConflictError,
    410: TerminatedError,
    413: LimitError,
    429: LimitError,
}


def error_from_answer(status: int, body: Any, fallback: str) -> SandboxError:
    """The error for an answer with an error status (`body`: its JSON, if it had any)."""
    if not isinstance(body, dict):
        body = {}
    context = body.get("context") if isinstance(body.get("context"), dict) else {}
    code = str(body.get("code") or "")
    message = str(body.get("message") or body.get("error") or fallback)
    if 300 <= status < 400 or status == 424:
        return SandboxStoppedError(
            code or "SERVER_NOT_RUNNING",
            f"the server is not running, or this is not its URL ({status} {fallback})",
            status,
            context,
        )
    if context.get("timedOut"):
        return SandboxTimeoutError(code, message, status, context)
    kind = _BY_STATUS.get(status, SandboxError)
    return kind(code, message, status, context)
