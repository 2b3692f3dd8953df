"""Every request the client makes, written once: route, body, and how to read the answer.

`Sandbox` and `AsyncSandbox` only carry these out (docs/api.md describes each route), so the
sync and async clients cannot drift apart.
"""

from __future__ import annotations

import base64
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import IO, Any, Generic, TypeVar

from .errors import NotFoundError
from .models import (
    CodeContext,
    CommandResult,
    EntryInfo,
    ExecutionInfo,
    FileType,
    ProcessInfo,
    SessionInfo,
    WriteInfo,
    checked,
)

NO_SESSION = "__DISABLE_SESSION__"
T = TypeVar("T")


def _as_is(answer: Any) -> Any:
    return answer


def _nothing(answer: Any) -> None:
    return None


@dataclass(frozen=True)
class Call(Generic[T]):
    """One request: `parse` turns the JSON answer into what the method returns; `safe` marks a
    request that may be sent again after a failed connection (it changes nothing); `long` one
    that may take as long as the work it starts (no read timeout)."""

    method: str
    path: str
    body: dict[str, Any] | None = None
    params: dict[str, str] = field(default_factory=dict)
    parse: Callable[[Any], T] = _as_is
    safe: bool = False
    long: bool = False
    request_timeout: float | None = None  # seconds to connect and send (E2B's request_timeout)
    url: str | None = None  # an absolute URL instead of `path` under the API (the Hub's API)
    headers: dict[str, str] = field(default_factory=dict)


def _present(**fields: Any) -> dict[str, Any]:
    """A body without the fields left out (the server reads null as absent anyway)."""
    return {name: value for name, value in fields.items() if value is not None}


def milliseconds(seconds: float | None) -> float | None:
    """Seconds as the API's milliseconds (None stays None)."""
    return None if seconds is None else seconds * 1000


def ping() -> Call[str]:
    """`GET /api/ping`."""
    return Call("GET", "api/ping", parse=lambda a: a["message"], safe=True)


def create_context(
    language: str,
    cwd: str | None,
    envs: dict[str, str] | None,
    labels: dict[str, str] | None = None,
) -> Call[CodeContext]:
    """`POST /api/contexts`."""
    body = _present(language=language, cwd=cwd, env_vars=envs, labels=labels)
    return Call("POST", "api/contexts", body, parse=CodeContext.from_json)


def list_contexts() -> Call[list[CodeContext]]:
    """`GET /api/contexts`."""
    return Call(
        "GET",
        "api/contexts",
        parse=lambda a: [CodeContext.from_json(c) for c in a["contexts"]],
        safe=True,
    )


def delete_context(context_id: str) -> Call[None]:
    """`DELETE /api/contexts/{id}`."""
    return Call("DELETE", f"api/contexts/{context_id}", parse=_nothing)


def restart_context(context_id: str) -> Call[None]:
    """`POST /api/contexts/{id}/restart`."""
    return Call("POST", f"api/contexts/{context_id}/restart", {}, parse=_nothing)


def interrupt_context(context_id: str) -> Call[None]:
    """`POST /api/contexts/{id}/interrupt`."""
    return Call("POST", f"api/contexts/{context_id}/interrupt", {}, parse=_nothing)


def run_code(
    context_id: str,
    code: str,
    timeout: float | None,
    envs: dict[str, str] | None = None,
    detach: bool = False,
) -> Call[Any]:
    """`POST /api/execute/code` (a stream); a `timeout` of 0 asks for no limit. Its
    idempotency key makes it safe to send again: the server never runs it twice."""
    body = _present(
        context_id=context_id,
        code=code,
        timeout_ms=milliseconds(timeout),
        env_vars=envs,
        detach=detach or None,
    )
    key = {"Idempotency-Key": uuid.uuid4().hex}
    return Call("POST", "api/execute/code", body, safe=True, long=True, headers=key)


def get_execution(execution_id: str) -> Call[ExecutionInfo]:
    """`GET /api/execute/code/{id}`."""
    return Call("GET", f"api/execute/code/{execution_id}", parse=ExecutionInfo.from_json, safe=True)


def cancel_execution(execution_id: str) -> Call[ExecutionInfo]:
    """`DELETE /api/execute/code/{id}`: stop a run (its answer comes once it stopped)."""
    return Call(
        "DELETE", f"api/execute/code/{execution_id}", parse=ExecutionInfo.from_json, long=True
    )


def follow_execution(execution_id: str, after: int = 0) -> Call[Any]:
    """`GET /api/execute/code/{id}/stream` (a stream of the events after id `after`)."""
    path = f"api/execute/code/{execution_id}/stream"
    return Call("GET", path, params={"after": str(after)}, safe=True, long=True)


def command_body(
    cmd: str,
    session_id: str | None,
    cwd: str | None,
    envs: dict[str, str] | None,
    timeout: float | None,
) -> dict[str, Any]:
    """The body of a command request."""
    return _present(
        command=cmd, sessionId=session_id, cwd=cwd, env=envs, timeoutMs=milliseconds(timeout)
    )


def execute(body: dict[str, Any], request_timeout: float | None = None) -> Call[CommandResult]:
    """`POST /api/execute`: a command to its end."""

    def parse(answer: dict[str, Any]) -> CommandResult:
        result = CommandResult(
            answer["stdout"], answer["stderr"], answer["exitCode"], answer.get("duration")
        )
        return checked(result, bool(answer.get("timedOut")))

    return Call(
        "POST", "api/execute", body, parse=parse, long=True, request_timeout=request_timeout
    )


def execute_stream(body: dict[str, Any]) -> Call[Any]:
    """`POST /api/execute/stream` (a stream)."""
    return Call("POST", "api/execute/stream", body, long=True)


def start_process(
    body: dict[str, Any], process_id: str | None, labels: dict[str, str] | None = None
) -> Call[ProcessInfo]:
    """`POST /api/process/start`."""
    return Call(
        "POST",
        "api/process/start",
        {**body, **_present(processId=process_id, labels=labels)},
        parse=ProcessInfo.from_json,
    )


def list_processes(status: str | None) -> Call[list[ProcessInfo]]:
    """`GET /api/process/list`."""
    return Call(
        "GET",
        "api/process/list",
        params=_present(status=status),
        parse=lambda a: [ProcessInfo.from_json(p) for p in a["processes"]],
        safe=True,
    )


def get_process(process_id: str) -> Call[ProcessInfo]:
    """`GET /api/process/{id}`."""
    return Call(
        "GET",
        f"api/process/{process_id}",
        parse=lambda a: ProcessInfo.from_json(a["process"]),
        safe=True,
    )


def process_logs(process_id: str) -> Call[tuple[str, str]]:
    """`GET /api/process/{id}/logs`."""
    return Call(
        "GET",
        f"api/process/{process_id}/logs",
        parse=lambda a: (a["stdout"], a["stderr"]),
        safe=True,
    )


def process_stream(process_id: str, after: int = 0) -> Call[Any]:
    """`GET /api/process/{id}/stream` (a stream of its output after id `after`)."""
    params = {"after": str(after)} if after else {}
    return Call("GET", f"api/process/{process_id}/stream", params=params, safe=True, long=True)


def kill_process(process_id: str) -> Call[list[int]]:
    """`DELETE /api/process/{id}`."""
    return Call("DELETE", f"api/process/{process_id}", parse=lambda a: a.get("killedPids", []))


def create_session(
    session_id: str | None,
    envs: dict[str, str] | None,
    cwd: str | None,
    timeout: float | None,
    labels: dict[str, str] | None = None,
) -> Call[SessionInfo]:
    """`POST /api/session/create`."""
    body = _present(
        id=session_id, env=envs, cwd=cwd, commandTimeoutMs=milliseconds(timeout), labels=labels
    )

    def parse(answer: dict[str, Any]) -> SessionInfo:
        return SessionInfo.from_json({**(answer.get("data") or {}), "id": answer["sessionId"]})

    return Call("POST", "api/session/create", body, parse=parse)


def list_sessions() -> Call[list[SessionInfo]]:
    """`GET /api/session/list`."""
    return Call(
        "GET",
        "api/session/list",
        parse=lambda a: [SessionInfo.from_json(s) for s in a["sessions"]],
        safe=True,
    )


def delete_session(session_id: str) -> Call[None]:
    """`POST /api/session/delete`."""
    return Call("POST", "api/session/delete", {"sessionId": session_id}, parse=_nothing)


def read_text(path: str, session_id: str | None, request_timeout: float | None = None) -> Call[str]:
    """`POST /api/read`, as text (a binary file's bytes decoded as UTF-8, errors replaced)."""

    def parse(answer: dict[str, Any]) -> str:
        content: str = answer["content"]
        if answer.get("encoding") == "base64":
            return base64.b64decode(content).decode("utf-8", "replace")
        return content

    return Call(
        "POST",
        "api/read",
        _present(path=path, sessionId=session_id),
        parse=parse,
        safe=True,
        request_timeout=request_timeout,
    )


def read_bytes(
    path: str, session_id: str | None, request_timeout: float | None = None
) -> Call[bytearray]:
    """`POST /api/read` of the file's bytes."""
    body = _present(path=path, sessionId=session_id, encoding="base64")

    def parse(answer: dict[str, Any]) -> bytearray:
        content: str = answer["content"]
        if answer.get("encoding") == "base64":
            return bytearray(base64.b64decode(content))
        return bytearray(content.encode("utf-8"))

    return Call("POST", "api/read", body, parse=parse, safe=True, request_timeout=request_timeout)


def read_stream(path: str, session_id: str | None) -> Call[Any]:
    """`POST /api/read/stream` (a stream)."""
    return Call("POST", "api/read/stream", _present(path=path, sessionId=session_id), long=True)


def write_file(
    path: str,
    data: str | bytes | IO[Any],
    session_id: str | None,
    request_timeout: float | None = None,
) -> Call[WriteInfo]:
    """`POST /api/write` of text, bytes or what a file object holds."""
    content = data.read() if hasattr(data, "read") else data
    if isinstance(content, bytes):
        body = _present(
            path=path,
            content=base64.b64encode(content).decode("ascii"),
            encoding="base64",
            sessionId=session_id,
        )
    else:
        body = _present(path=path, content=content, sessionId=session_id)

    def parse(answer: dict[str, Any]) -> WriteInfo:
        written = str(answer["path"])
        return WriteInfo(written.rstrip("/").rsplit("/", 1)[-1], FileType.FILE, written)

    return Call("POST", "api/write", body, parse=parse, request_timeout=request_timeout)


def list_files(
    path: str, depth: int | None, session_id: str | None, request_timeout: float | None = None
) -> Call[list[EntryInfo]]:
    """`POST /api/list-files`, down to `depth` levels (1: the folder's own entries; None: all)."""
    body = _present(path=path, sessionId=session_id, options={"recursive": depth != 1})

    def parse(answer: dict[str, Any]) -> list[EntryInfo]:
        entries = [EntryInfo.from_json(f) for f in answer["files"]]
        if depth is None:
            return entries
        return [e for e in entries if e.relative_path.count("/") < depth]

    return Call(
        "POST", "api/list-files", body, parse=parse, safe=True, request_timeout=request_timeout
    )


def entry_info(
    path: str, session_id: str | None, request_timeout: float | None = None
) -> Call[EntryInfo]:
    """One entry's information, from a listing of its folder."""
    folder, _, name = path.rstrip("/").rpartition("/")
    listing = list_files(
        folder or ("/" if path.startswith("/") else "."), 1, session_id, request_timeout
    )

    def parse(answer: dict[str, Any]) -> EntryInfo:
        entries: list[EntryInfo] = listing.parse(answer)
        for entry in entries:
            if entry.name == name:
                return entry
        raise NotFoundError("FILE_NOT_FOUND", f"File not found: {path}", 404, {"path": path})

    return Call(
        listing.method,
        listing.path,
        listing.body,
        parse=parse,
        safe=True,
        request_timeout=request_timeout,
    )


def exists(path: str, session_id: str | None, request_timeout: float | None = None) -> Call[bool]:
    """`POST /api/exists`."""
    body = _present(path=path, sessionId=session_id)
    return Call(
        "POST",
        "api/exists",
        body,
        parse=lambda a: a["exists"],
        safe=True,
        request_timeout=request_timeout,
    )


def make_dir(path: str, session_id: str | None, request_timeout: float | None = None) -> Call[bool]:
    """Create a directory and its parents: True, or False if it was there already."""
    body = _present(path=path, recursive=True, sessionId=session_id)
    return Call(
        "POST", "api/mkdir", body, parse=lambda a: a["created"], request_timeout=request_timeout
    )


def rename(
    old: str, new: str, session_id: str | None, request_timeout: float | None = None
) -> Call[str]:
    """`POST /api/rename`."""
    body = _present(oldPath=old, newPath=new, sessionId=session_id)
    return Call(
        "POST",
        "api/rename",
        body,
        parse=lambda a: a.get("newPath", new),
        request_timeout=request_timeout,
    )


def remove(path: str, session_id: str | None, request_timeout: float | None = None) -> Call[None]:
    """`POST /api/delete`."""
    body = _present(path=path, sessionId=session_id)
    return Call("POST", "api/delete", body, parse=_nothing, request_timeout=request_timeout)


def watch(path: str, recursive: bool, session_id: str | None) -> Call[Any]:
    """`POST /api/watch` (a stream that lasts until it is closed)."""
    body = _present(path=path, recursive=recursive, sessionId=session_id)
    return Call("POST", "api/watch", body, long=True)


def stream_chunk(event: dict[str, Any], binary: bool) -> bytes | None:
    """The bytes of one `/api/read/stream` chunk event (None for other events)."""
    if event.get("type") != "chunk":
        return None
    data = event.get("data", "")
    return base64.b64decode(data) if binary else data.encode("utf-8")
