"""Code contexts and code execution: PROTOCOL.md §3.1."""

from __future__ import annotations

import contextlib
from typing import Any

from jupyter_server.auth.decorator import authorized
from tornado import web
from tornado.iostream import StreamClosedError

from ..bodies import optional_milliseconds, optional_str, optional_str_map, required_str
from ..errors import SandboxError, validation_error
from ..outputs import error_event
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
        context = await self.contexts.create(
            language=optional_str(body, "language") or "python",
            cwd=optional_str(body, "cwd"),
            env_vars=optional_str_map(body, "env_vars"),
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
        if not await self.contexts.is_alive(context):
            raise SandboxError(
                "CONTEXT_TERMINATED",
                f"The kernel of context '{context.id}' is not running; delete the context "
                "and create a new one",
                {"contextId": context.id},
            )
        stream = EventStream(self)
        stream.open()
        await self._stream_run(stream, context, code, timeout)
        self.finish(set_content_type="text/event-stream")

    async def _stream_run(
        self, stream: EventStream, context: Any, code: str, timeout: float | None
    ):
        connected = True
        terminal_sent = False
        try:
            async with contextlib.aclosing(self.execution.run(context, code, timeout)) as events:
                async for event in events:
                    terminal_sent = event["type"] in TERMINAL_EVENTS
                    if not connected:
                        continue
                    try:
                        await stream.send(event)
                    except StreamClosedError:
                        connected = False
                        self.log.info("Client left a run on %s; interrupting it", context.id)
                        await self.contexts.interrupt(context)
        except Exception as exc:
            self.log.exception("Run on context %s failed", context.id)
            if connected and not terminal_sent:
                with contextlib.suppress(StreamClosedError):
                    await stream.send(error_event("InternalError", str(exc), []))
