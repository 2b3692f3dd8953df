"""Code contexts and code execution: docs/api.md, "Code interpreter"."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from jupyter_server.auth.decorator import authorized
from tornado import web
from tornado.iostream import StreamClosedError

from ..errors import validation_error
from ..events import ends_run
from ..outputs import error_event
from ..shell_sessions import NO_SESSION
from ..sse import EventStream
from ..validation import optional_env, optional_milliseconds, optional_str, required_str
from .base import SandboxHandler

AUTH_RESOURCE = "kernels"
# A run's response headers wait this long for its first event (most short runs then answer
# in one or two writes); a run silent for longer shows its stream starting then.
HEADERS_WITHIN = 0.05


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
        body = await self.json_body(required=False)
        session_id = self.session_id(body, default=None)
        base = None
        if session_id is not None and session_id != NO_SESSION:
            base = await self.shell_sessions.snapshot(session_id)
        context = await self.contexts.create(
            language=optional_str(body, "language") or "python",
            cwd=optional_str(body, "cwd"),
            env_vars=optional_env(body, "env_vars"),
            base=base,
        )
        answer = context.to_json()
        answer["contextId"] = answer.pop("id")
        self.write_json(answer)


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
        body = await self.json_body()
        context = self.contexts.get(required_str(body, "context_id", allow_empty=False))
        code = required_str(body, "code")
        deadline = self.execution.deadline(optional_milliseconds(body, "timeout_ms"))
        language = optional_str(body, "language")
        if language and (await self.contexts.resolve(language)).name != context.language:
            raise validation_error(
                "language",
                f"context {context.id} runs {context.language}, not {language}",
            )
        await self.contexts.ensure_running(context)
        stream = self.event_stream()
        await stream.open(headers_within=HEADERS_WITHIN)
        # A client that leaves stops the run (unless configured otherwise); either way the
        # run goes on to its terminal event, which is then sent to nobody.
        abandoned = stream.gone if self.execution.interrupt_on_disconnect else asyncio.Event()
        terminal_sent = False
        run = self.execution.run(context, code, deadline, abandoned)
        try:
            async with contextlib.aclosing(run) as events:
                async for event in events:
                    terminal_sent = ends_run(event)
                    await self._send(stream, event, deadline, last=terminal_sent)
        except Exception as exc:
            self.log.exception("Run on context %s failed", context.id)
            if not terminal_sent:
                await self._send(stream, error_event("InternalError", str(exc), []), None)
        await stream.close()

    @staticmethod
    async def _send(
        stream: EventStream, event: dict[str, Any], deadline: float | None, last: bool = False
    ) -> None:
        if not stream.gone.is_set():
            with contextlib.suppress(StreamClosedError):
                await stream.send(event, until=deadline, last=last)
