"""`{prefix}/ws/pty` and `{prefix}/ws/terminal`: WebSockets to Jupyter's terminals, in the
framings the official client speaks (jupyter_interp_ext/terminals). Both are authorized as
Jupyter's own terminals are: `execute` on `terminals`.

Both framings: binary frames carry terminal bytes both ways, text frames carry JSON control
messages. `/ws/pty` (client 0.12): the session's terminal; what it kept is sent first as one
binary frame, then `{"type":"ready","pid"}`, then live output. `/ws/terminal` (the next client):
any terminal by name; `{"type":"ready","cursor"}`, then each piece of output as a
`{"type":"chunk","cursor","byteLength"}` frame followed by its bytes, so a client that
reconnects with the last cursor it saw gets what followed, nothing twice."""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any, ClassVar

from jupyter_server.base.handlers import JupyterHandler
from jupyter_server.base.websocket import WebSocketMixin
from tornado.web import HTTPError
from tornado.websocket import WebSocketClosedError, WebSocketHandler

from jupyter_interp_ext import metrics
from jupyter_interp_ext.protocol.errors import ProtocolError, validation_error
from jupyter_interp_ext.protocol.validation import check_id
from jupyter_interp_ext.terminals.manager import SandboxTerminals
from jupyter_interp_ext.terminals.terminal import Exited, SandboxTerminal, Truncated

from .base import to_sandbox_error

AUTH_RESOURCE = "terminals"
# Close codes: done; a policy refusal (no such terminal); the server could not go on.
CLOSE_DONE, CLOSE_REFUSED, CLOSE_FAILED = 1000, 1008, 1011
MAX_SIZE = 10_000  # columns or rows, as terminado bounds a client's size
INVALID_CONTROL = "Invalid control message"


class TerminalSocket(WebSocketMixin, JupyterHandler, WebSocketHandler):
    """What both routes share: authorization, sizes, input, and the relay of output."""

    route: ClassVar[str]
    terminal: SandboxTerminal | None = None
    _relay: asyncio.Future[None] | None = None
    _counted = False

    @property
    def terminals(self) -> SandboxTerminals:
        return self.settings["interp_terminals"]

    async def get(self, *args: Any, **kwargs: Any) -> None:
        if not self.current_user:
            raise HTTPError(403)
        if not self.authorizer.is_authorized(self, self.current_user, "execute", AUTH_RESOURCE):
            raise HTTPError(403, "Terminals need the right to run commands (execute on terminals)")
        self.check_arguments()
        await super().get(*args, **kwargs)

    def check_arguments(self) -> None:
        """Refuse a malformed request before upgrading (400 with the error body)."""
        if self.request.headers.get("Upgrade", "").lower() != "websocket":
            raise ProtocolError(
                "VALIDATION_FAILED",
                "This is a WebSocket route: connect with Upgrade: websocket",
                status=400,
            )
        self.size_argument("cols")
        self.size_argument("rows")

    def size_argument(self, name: str) -> int | None:
        value = self.get_query_argument(name, None)
        if value is None or value == "":
            return None
        if not (value.isascii() and value.isdigit()) or not 0 < int(value) <= MAX_SIZE:
            raise validation_error(name, f"'{name}' must be a whole number from 1 to {MAX_SIZE}")
        return int(value)

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        exc = kwargs.get("exc_info", (None, None, None))[1]
        error = to_sandbox_error(exc, status_code)
        self.set_status(error.status)
        self.set_header("Content-Type", "application/json")
        self.finish(error.body())

    async def attach(self) -> SandboxTerminal:
        raise NotImplementedError

    async def relay(self, terminal: SandboxTerminal) -> None:
        raise NotImplementedError

    async def open(self, *args: Any, **kwargs: Any) -> None:
        # Keystrokes and their echo are small frames: sent at once, not held back by TCP
        # for the peer's acknowledgement of the last one (up to 40 ms a keystroke).
        self.set_nodelay(True)
        metrics.TERMINAL_CONNECTIONS.labels(self.route).inc()
        self._counted = True
        try:
            self.terminal = await self.attach()
        except ProtocolError as exc:
            self.send_control({"type": "error", "message": exc.message})
            self.close(CLOSE_REFUSED if exc.status == 404 else CLOSE_FAILED, exc.message[:120])
            return
        cols, rows = self.size_argument("cols"), self.size_argument("rows")
        if cols and rows:
            self.terminal.resize(self, rows, cols)
        self._relay = asyncio.ensure_future(self._relay_until_closed(self.terminal))

    async def _relay_until_closed(self, terminal: SandboxTerminal) -> None:
        with contextlib.suppress(WebSocketClosedError):
            await self.relay(terminal)

    async def on_message(self, message: str | bytes) -> None:
        terminal = self.terminal
        if terminal is None:
            return
        if isinstance(message, bytes):
            terminal.write(message)
            return
        try:
            control = json.loads(message)
        except ValueError:
            control = None
        if not isinstance(control, dict) or not await self.control(terminal, control):
            self.send_control({"type": "error", "message": INVALID_CONTROL})

    async def control(self, terminal: SandboxTerminal, message: dict[str, Any]) -> bool:
        """Act on a control message; False: it is not one this route takes."""
        raise NotImplementedError

    def resize(self, terminal: SandboxTerminal, message: dict[str, Any]) -> bool:
        cols, rows = message.get("cols"), message.get("rows")
        if not all(_is_size(n) for n in (cols, rows)):
            return False
        terminal.resize(self, int(rows), int(cols))  # type: ignore[arg-type]
        return True

    def send_control(self, message: dict[str, Any]) -> None:
        with contextlib.suppress(WebSocketClosedError):
            self.write_message(json.dumps(message))

    async def send_bytes(self, data: bytes) -> None:
        await self.write_message(data, binary=True)

    def on_close(self) -> None:
        if self._relay is not None:
            self._relay.cancel()
        if self.terminal is not None:
            self.terminal.forget(self)
        if self._counted:
            metrics.TERMINAL_CONNECTIONS.labels(self.route).dec()
            self._counted = False


class PtySocket(TerminalSocket):
    """`/ws/pty?sessionId=&cols=&rows=&shell=`: the session's terminal (made on first use)."""

    route = "pty"

    def check_arguments(self) -> None:
        super().check_arguments()
        session = self.get_query_argument("sessionId", "")
        if not session:
            raise validation_error("sessionId", "sessionId query parameter required")
        check_id(session, "sessionId")

    async def attach(self) -> SandboxTerminal:
        return await self.terminals.for_session(
            self.get_query_argument("sessionId"),
            self.size_argument("cols"),
            self.size_argument("rows"),
            self.get_query_argument("shell", None) or None,
        )

    async def relay(self, terminal: SandboxTerminal) -> None:
        cursor = terminal.cursor
        _, _, kept = terminal.since(None)
        if kept:
            await self.send_bytes("".join(chunk.text for chunk in kept).encode())
        # (`pid`, the terminal program's, is ours: the official client reads `type` only.)
        self.send_control({"type": "ready", "pid": terminal.pid})
        async for item in terminal.follow(cursor):
            if isinstance(item, Exited):
                exit: dict[str, Any] = {"type": "exit", "code": item.code}
                if item.signal_name:
                    exit["signal"] = item.signal_name
                self.send_control(exit)
                self.close(CLOSE_DONE, "Terminal exited")
                return
            if not isinstance(item, Truncated):  # (this framing has no word for it)
                await self.send_bytes(item.text.encode())

    async def control(self, terminal: SandboxTerminal, message: dict[str, Any]) -> bool:
        if message.get("type") != "resize":
            return True  # (the upstream container ignores other types)
        if not self.resize(terminal, message):
            self.send_control(
                {"type": "error", "message": "Invalid dimensions: cols and rows must be positive"}
            )
        return True


class TerminalWebSocket(TerminalSocket):
    """`/ws/terminal?terminalId=&cursor=&cols=&rows=`: any of the server's terminals by name,
    resumed after `cursor`."""

    route = "terminal"

    def check_arguments(self) -> None:
        super().check_arguments()
        if not self.get_query_argument("terminalId", ""):
            raise validation_error("terminalId", "terminalId query parameter required")

    async def attach(self) -> SandboxTerminal:
        return self.terminals.get(self.get_query_argument("terminalId"))

    async def relay(self, terminal: SandboxTerminal) -> None:
        cursor = self.get_query_argument("cursor", None) or None
        ready: dict[str, Any] = {"type": "ready"}
        if cursor is not None:
            ready["cursor"] = cursor
        self.send_control(ready)
        async for item in terminal.follow(cursor):
            if isinstance(item, Truncated):
                self.send_control({"type": "truncated"})
            elif isinstance(item, Exited):
                exit = {"type": "exit", "cursor": terminal.cursor, "exit": item.to_json()}
                self.send_control(exit)
                self.close(CLOSE_DONE, "Terminal exited")
                return
            else:
                data = item.text.encode()
                chunk = {"type": "chunk", "cursor": str(item.seq), "byteLength": len(data)}
                self.send_control(chunk)
                await self.send_bytes(data)

    async def control(self, terminal: SandboxTerminal, message: dict[str, Any]) -> bool:
        kind = message.get("type")
        if kind == "resize":
            return self.resize(terminal, message)
        if kind == "interrupt":
            terminal.interrupt()
            return True
        if kind == "terminate":
            await self.terminals.terminate(terminal.name)
            return True
        return False


def _is_size(value: Any) -> bool:
    return (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and value == int(value)
        and 0 < value <= MAX_SIZE
    )
