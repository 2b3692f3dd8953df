"""Code contexts and code execution: docs/api.md, "Code interpreter"."""

from __future__ import annotations

import asyncio
from typing import Any

from jupyter_server.auth.decorator import authorized
from tornado import web

from jupyter_interp_ext.interpreter.contexts import CodeContext
from jupyter_interp_ext.interpreter.executions import Execution, Follower
from jupyter_interp_ext.protocol.errors import validation_error
from jupyter_interp_ext.protocol.validation import (
    optional_bool,
    optional_env,
    optional_labels,
    optional_milliseconds,
    optional_str,
    required_str,
)
from jupyter_interp_ext.shells.sessions import NO_SESSION

from .base import SandboxHandler

AUTH_RESOURCE = "kernels"
# A run's response headers wait this long for its first event (most short runs then answer
# in one or two writes); a run silent for longer shows its stream starting then.
HEADERS_WITHIN = 0.05
# The longest `Idempotency-Key` accepted.
MAX_KEY_CHARS = 256


class InterpreterHandler(SandboxHandler):
    """Code contexts and runs, authorized on Jupyter's `kernels`."""

    auth_resource = AUTH_RESOURCE

    async def create_context(self, body: dict[str, Any]) -> CodeContext:
        """A new context as the body asks (`POST /api/contexts`' body), in the shell session
        it names, if any (its directory and exported environment)."""
        session_id = self.requested_session(body)
        base = None
        if session_id is not None and session_id != NO_SESSION:
            base = await self.shell_sessions.snapshot(session_id)
        return await self.contexts.create(
            language=optional_str(body, "language") or "python",
            cwd=optional_str(body, "cwd"),
            env_vars=optional_env(body, "env_vars"),
            base=base,
            labels=optional_labels(body),
        )

    async def start_run(
        self, context: CodeContext, code: str, body: dict[str, Any], key: str | None = None
    ) -> Execution:
        """Start `code` in `context` with the options of `POST /api/execute/code`'s body
        (`timeout_ms`, `env_vars`, `detach`, `language`), validated before anything runs."""
        timeout = optional_milliseconds(body, "timeout_ms", zero_means_none=True)
        env = optional_env(body, "env_vars")
        detach = optional_bool(body, "detach")
        self.execution.check_run_env(context, env)
        deadline = self.execution.deadline(timeout)
        language = optional_str(body, "language")
        if language and (await self.contexts.resolve(language)).name != context.language:
            raise validation_error(
                "language",
                f"context {context.id} runs {context.language}, not {language}",
            )
        await self.contexts.ensure_running(context)
        return self.execution.start(context, code, deadline, env, key=key, detach=detach)

    async def follow_run(self, execution: Execution, follower: Follower) -> None:
        """Stream a run to this client as `follower` reads it (named in `X-Execution-Id`);
        the run goes on without it if the client leaves."""
        self.set_header("X-Execution-Id", execution.id)
        try:
            await self.stream_events(follower, headers_within=HEADERS_WITHIN)
        finally:
            await follower.aclose()


class HealthHandler(InterpreterHandler):
    """`GET /api/interpreter/health`: languages, contexts and the pool."""

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
    """`GET`/`POST /api/contexts`: list contexts, or create one (a kernel)."""

    @web.authenticated
    @authorized
    async def get(self) -> None:
        self.write_json({"contexts": [c.to_json() for c in self.contexts.list()]})

    @web.authenticated
    @authorized
    async def post(self) -> None:
        context = await self.create_context(await self.json_body(required=False))
        answer = context.to_json()
        answer["contextId"] = answer.pop("id")
        self.write_json(answer)


class ContextHandler(InterpreterHandler):
    """`DELETE /api/contexts/{id}`: delete a context and shut its kernel down."""

    @web.authenticated
    @authorized
    async def delete(self, context_id: str) -> None:
        await self.contexts.delete(context_id)
        self.write_json({"contextId": context_id})


class ContextRestartHandler(InterpreterHandler):
    """`POST /api/contexts/{id}/restart`: a fresh kernel state in the same directory and
    environment (beyond the upstream API: E2B's `restart_code_context`)."""

    @web.authenticated
    @authorized("execute")
    async def post(self, context_id: str) -> None:
        await self.contexts.restart_on_request(self.contexts.get(context_id))
        self.write_json({"contextId": context_id})


class ContextInterruptHandler(InterpreterHandler):
    """`POST /api/contexts/{id}/interrupt`: stop what runs, keeping the kernel's state."""

    @web.authenticated
    @authorized("execute")
    async def post(self, context_id: str) -> None:
        await self.contexts.interrupt_on_request(self.contexts.get(context_id))
        self.write_json({"contextId": context_id})


class ExecuteCodeHandler(InterpreterHandler):
    """`POST /api/execute/code`: start a run and stream its events as the kernel produces
    them (with an `Idempotency-Key` an earlier request used, stream that run instead)."""

    @web.authenticated
    @authorized("execute")
    async def post(self) -> None:
        body = await self.json_body()
        context = self.contexts.get(required_str(body, "context_id", allow_empty=False))
        code = required_str(body, "code")
        key = self._idempotency_key()
        executions = self.execution.executions
        earlier = executions.keyed(key, context.id, code) if key is not None else None
        if earlier is not None:
            await self.follow_run(earlier, earlier.follow(0, "retry"))
            return
        execution = await self.start_run(context, code, body, key)
        await self.follow_run(execution, execution.follow())

    def _idempotency_key(self) -> str | None:
        key = self.request.headers.get("Idempotency-Key")
        if key is None:
            return None
        if not key.strip() or len(key) > MAX_KEY_CHARS:
            raise validation_error(
                "Idempotency-Key", f"Idempotency-Key must be 1 to {MAX_KEY_CHARS} characters"
            )
        return key


class ExecutionHandler(InterpreterHandler):
    """`GET /api/execute/code/{id}`: a run's state; `DELETE`: stop it (beyond upstream)."""

    @web.authenticated
    @authorized
    async def get(self, execution_id: str) -> None:
        self.write_json(self.execution.executions.get(execution_id).to_json())

    @web.authenticated
    @authorized("execute")
    async def delete(self, execution_id: str) -> None:
        execution = self.execution.executions.get(execution_id)
        execution.stop.cancel()
        if execution.task is not None:
            await asyncio.shield(execution.task)
        self.write_json(execution.to_json())


class ExecutionStreamHandler(InterpreterHandler):
    """`GET /api/execute/code/{id}/stream`: a run's events after `Last-Event-ID` (or
    `?after=`), then live to its terminal event. Following a run is running code's right."""

    @web.authenticated
    @authorized("execute")
    async def get(self, execution_id: str) -> None:
        execution = self.execution.executions.get(execution_id)
        await self.follow_run(execution, execution.follow(self.after_event_id(), "resume"))
