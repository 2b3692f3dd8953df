"""Code contexts and code execution: PROTOCOL.md §3.1."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from jupyter_server.auth.decorator import authorized
from tornado import web
from tornado.iostream import StreamClosedError

from ..bodies import optional_milliseconds, optional_str, optional_str_map, required_str
from ..errors import validation_error
from ..outputs import error_event
from ..sessions import NO_SESSION
from ..sse import EventStream
from .base import SandboxHandler

AUTH_RESOURCE = "kernels"
TERMINAL_EVENTS = ("execution_complete", "error")


class InterpreterHandler(SandboxHandler):
    auth_resource = AUTH_RESOURCE


class HealthHandler(InterpreterHandler):
    @web.authenticated
    @authorized
    async def get(self) -> None:
        self.write_json(
            {
                "status": "healthy",
                "languages": await self.contexts.languages(),
                "contexts": len(self.contexts.list()),
                "pool": {
                    lang: self.kernel_pool.ready_count(lang) for lang in self.kernel_pool.sizes
                },
            }
        )


class ContextsHandler(InterpreterHandler):
    @web.authenticated
    @authorized
    async def get(self) -> None:
        self.write_json({"contexts": [c.to_json() for c in self.contexts.list()]})

    @web.authenticated
    @authorized
    async def post(self) -> None:
        body = self.json_body(required=False)
        session_id = self.session_id(body, default=None)
        base = None
        if session_id is not None and session_id != NO_SESSION:
            base = await self.sessions.snapshot(session_id)
        context = await self.contexts.create(
            language=optional_str(body, "language") or "python",
            cwd=optional_str(body, "cwd"),
            env_vars=optional_str_map(body, "env_vars"),
            base=base,
        )
        self.write_json({"contextId": context.id, "language": context.language, "cwd": context.cwd})


class ContextHandler(InterpreterHandler):
    @web.authenticated
    @authorized
    async def delete(self, context_id: str) -> None:
        await self.contexts.delete(context_id)
        self.write_json({"contextId": context_id})


class ExecuteCodeHandler(InterpreterHandler):
    """Streams a run's events as the kernel produces them."""

    @web.authenticated
    @authorized("execute")
    async def post(self) -> None:
        body = self.json_body()
        context = self.contexts.get(required_str(body, "context_id", allow_empty=False))
        code = required_str(body, "code")
        timeout = optional_milliseconds(body, "timeout_ms")
        language = optional_str(body, "language")
        if language and (await self.contexts.resolve(language)).name != context.language:
            raise validation_error(
                "language",
                f"context {context.id} runs {context.language}, not {language}",
            )
        await self.contexts.ensure_running(context)
        stream = EventStream(self)
        await stream.open()
        await self._stream_run(stream, context, code, timeout)
        await stream.close()

    def on_connection_close(self) -> None:
        if self.execution.interrupt_on_disconnect:
            self.client_gone.set()

    @property
    def client_gone(self) -> asyncio.Event:
        if not hasattr(self, "_client_gone"):
            self._client_gone = asyncio.Event()
        return self._client_gone

    async def _stream_run(
        self, stream: EventStream, context: Any, code: str, timeout: float | None
    ) -> None:
        terminal_sent = False
        keepalive = asyncio.ensure_future(self._keep_alive(stream))
        run = self.execution.run(context, code, timeout, self.client_gone)
        try:
            async with contextlib.aclosing(run) as events:
                async for event in events:
                    terminal_sent = event["type"] in TERMINAL_EVENTS
                    await self._send(stream, event)
        except Exception as exc:
            self.log.exception("Run on context %s failed", context.id)
            if not terminal_sent:
                await self._send(stream, error_event("InternalError", str(exc), []))
        finally:
            keepalive.cancel()

    async def _send(self, stream: EventStream, event: dict[str, Any]) -> None:
        if self.client_gone.is_set():
            return
        try:
            await stream.send(event)
        except StreamClosedError:
            self.on_connection_close()

    async def _keep_alive(self, stream: EventStream) -> None:
        """Tornado notices a vanished client only when it writes: write during silences."""
        interval = self.execution.keepalive_seconds
        while interval > 0 and not self.client_gone.is_set():
            await asyncio.sleep(interval)
            try:
                await stream.comment("keepalive")
            except StreamClosedError:
                self.on_connection_close()
