"""What every Sandbox API handler shares: manager access, JSON bodies and protocol errors."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterable
from http import HTTPStatus
from typing import Any

from jupyter_server.base.handlers import APIHandler
from tornado.web import HTTPError, RequestHandler, stream_request_body

from jupyter_interp_ext.interpreter.contexts import CodeContextRegistry
from jupyter_interp_ext.interpreter.execution import ExecutionManager
from jupyter_interp_ext.interpreter.pool import KernelPool
from jupyter_interp_ext.protocol.errors import ProtocolError, validation_error
from jupyter_interp_ext.protocol.sse import EventStream, Item
from jupyter_interp_ext.protocol.timestamps import now_iso
from jupyter_interp_ext.protocol.validation import (
    THREAD_PARSE_BYTES,
    as_json_object,
    check_id,
    decode_json,
    is_blank,
    optional_str,
)
from jupyter_interp_ext.shells.processes import ProcessManager
from jupyter_interp_ext.shells.sessions import DEFAULT_SESSION, ShellSessionManager

# Codes for errors raised by Jupyter or Tornado themselves (auth, unknown methods…).
_CODE_BY_STATUS = {400: "VALIDATION_FAILED", 403: "PERMISSION_DENIED", 404: "UNKNOWN_ERROR"}


@stream_request_body
class SandboxHandler(APIHandler):
    """Base handler: answers every failure with the error body of docs/api.md."""

    _body: Any = None
    _body_error: ProtocolError | None = None
    _raw: bytes | None = None  # the whole body, once a route asked for it
    stream: EventStream | None = None  # the response's event stream, once it has one

    @property
    def contexts(self) -> CodeContextRegistry:
        return self.settings["interp_context_registry"]

    @property
    def execution(self) -> ExecutionManager:
        return self.settings["interp_execution_manager"]

    @property
    def kernel_pool(self) -> KernelPool:
        return self.settings["interp_kernel_pool"]

    @property
    def shell_sessions(self) -> ShellSessionManager:
        return self.settings["interp_shell_session_manager"]

    @property
    def processes(self) -> ProcessManager:
        return self.settings["interp_process_manager"]

    def session_id(self, body: dict[str, Any]) -> str:
        """The request's execution session (`default` when it names none)."""
        return self.requested_session(body) or DEFAULT_SESSION

    def requested_session(self, body: dict[str, Any]) -> str | None:
        """Body `sessionId`, then `X-Session-Id`, then `?sessionId=`; never `Authorization`
        (Jupyter's token lives there). None when the request names none."""
        candidates = [
            optional_str(body, "sessionId"),
            self.request.headers.get("X-Session-Id"),
            self.get_query_argument("sessionId", None),
        ]
        for candidate in candidates:
            if candidate is None or candidate == "":
                continue
            if is_blank(candidate):
                raise validation_error("sessionId", "sessionId must not be whitespace")
            return check_id(candidate, "sessionId")
        return None

    def after_event_id(self) -> int:
        """Where a reader resumes a stream: after the id in `Last-Event-ID` (as a browser's
        EventSource sends it), else `?after=` (0: from the start). Each given must be valid."""
        given = [
            (name, value)
            for name, value in (
                ("Last-Event-ID", self.request.headers.get("Last-Event-ID")),
                ("after", self.get_query_argument("after", None)),
            )
            if value is not None
        ]
        for name, value in given:
            if not (value.isascii() and value.isdigit()) or len(value) > 18:
                raise validation_error(
                    name, f"an event id is a whole number of at most 18 digits, not {value!r}"
                )
        return int(given[0][1]) if given else 0

    def check_xsrf_cookie(self) -> None:
        """A caller with no valid credentials at all hears what a GET would tell it (send the
        token), not that an XSRF field is missing: the XSRF check protects browsers that are
        logged in. Jupyter resolves the user before this check (its private attribute says
        whether it has yet)."""
        if getattr(self, "_jupyter_current_user", True) is None:
            raise HTTPError(403)
        super().check_xsrf_cookie()

    def may_run_commands(self) -> bool:
        """Whether the caller holds `execute` on `terminals`: such a caller could make any link
        or run git itself, so routes that would refuse those to others allow them."""
        return bool(self.authorizer.is_authorized(self, self.current_user, "execute", "terminals"))

    async def prepare(self) -> None:  # type: ignore[override]
        """Runs once the headers are in, before any of the body is read: a body declared
        larger than the limit is refused at once, and one sent in chunks is cut off there."""
        await super().prepare()
        self._chunks: list[bytes] = []
        limit = self.settings["interp_max_request_bytes"]
        declared = self.request.headers.get("Content-Length", "")
        if limit and declared.isdigit() and int(declared) > limit:
            raise ProtocolError(
                "REQUEST_TOO_LARGE",
                f"Request body of {declared} bytes exceeds the {limit}-byte limit "
                "(InterpreterApp.max_request_bytes)",
                {"limit": limit},
                status=413,
            )
        connection = self.request.connection
        if limit and connection is not None and hasattr(connection, "set_max_body_size"):
            connection.set_max_body_size(limit)

    def data_received(self, chunk: bytes) -> None:
        self._chunks.append(chunk)

    def event_stream(self) -> EventStream:
        """The one writer of this response's events (made on first use)."""
        if self.stream is None:
            self.stream = EventStream(
                self,
                keepalive=self.settings["interp_keepalive_seconds"],
                write_timeout=self.settings["interp_write_timeout_seconds"],
                open_streams=self.settings["interp_open_streams"],
            )
        return self.stream

    async def stream_events(
        self,
        events: AsyncIterable[Item],
        *,
        headers_within: float = 0.0,
    ) -> None:
        """Answer with an event stream of `events` (see `EventStream.open` and `pipe` for the
        options): the one way every route streams."""
        stream = self.event_stream()
        await stream.open(headers_within)
        await stream.pipe(events)
        await stream.close()

    def on_connection_close(self) -> None:
        if self.stream is not None:
            self.stream.lost()

    async def json_body(self, *, required: bool = True) -> dict[str, Any]:
        """The JSON body, decoded once (large ones on a worker thread, so the event loop never
        stalls on them); a bad one is reported only by routes that read it."""
        if self._raw is None:
            self._raw = b"".join(self._chunks)
            self._chunks = []
            if self._raw.strip():
                try:
                    if len(self._raw) > THREAD_PARSE_BYTES:
                        self._body = await asyncio.to_thread(decode_json, self._raw)
                    else:
                        self._body = decode_json(self._raw)
                except ProtocolError as exc:
                    self._body_error = exc
        if self._body_error is not None:
            raise self._body_error
        return as_json_object(self._body, self._raw, required=required)

    def write_json(self, payload: dict[str, Any]) -> None:
        """A success body: `success` and `timestamp` are what the official client checks."""
        self.finish({"success": True, **payload, "timestamp": now_iso()})

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        self.set_header("Content-Type", "application/json")
        exc = kwargs.get("exc_info", (None, None, None))[1]
        error = to_sandbox_error(exc, status_code)
        self.set_status(error.status)
        if error.status == 405:
            self.set_header("Allow", ", ".join(self.allowed_methods()))
        self.finish(error.body())

    def allowed_methods(self) -> list[str]:
        """The HTTP methods this handler implements (for `Allow` on a 405)."""
        return [
            method
            for method in ("GET", "POST", "DELETE")
            if getattr(type(self), method.lower()) is not getattr(RequestHandler, method.lower())
        ]

    def on_finish(self) -> None:
        if self.stream is not None:
            self.stream.ended()
            # The stream refers to this handler: without the cycle, a finished request is
            # freed at once instead of by the garbage collector.
            self.stream = None

    def log_exception(self, typ: Any, value: Any, tb: Any) -> None:
        if isinstance(value, ProtocolError):
            self.log.info(
                "%s %s: %s %s", self.request.method, self.request.path, value.code, value.message
            )
            return
        super().log_exception(typ, value, tb)


def to_sandbox_error(exc: BaseException | None, status_code: int) -> ProtocolError:
    """Any failure as a protocol error; unexpected ones say what happened, never a traceback."""
    if isinstance(exc, ProtocolError):
        return exc
    if isinstance(exc, HTTPError):
        status = exc.status_code
        if exc.log_message:
            message = exc.log_message % exc.args if exc.args else exc.log_message
        elif status == 404:
            message = "The requested endpoint was not found"
        elif status == 403:
            message = "Forbidden: send the server's token (Authorization: token <token>) or log in"
        else:
            message = exc.reason or HTTPStatus(status).phrase
        return ProtocolError(_CODE_BY_STATUS.get(status, "UNKNOWN_ERROR"), message, status=status)
    if exc is not None:
        return ProtocolError("INTERNAL_ERROR", f"{type(exc).__name__}: {exc}")
    return ProtocolError("INTERNAL_ERROR", HTTPStatus(status_code).phrase, status=status_code)
