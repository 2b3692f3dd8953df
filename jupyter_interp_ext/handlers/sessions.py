"""Execution sessions: docs/api.md, "Execution sessions and commands"."""

from __future__ import annotations

from jupyter_server.auth.decorator import authorized
from tornado import web

from jupyter_interp_ext.protocol.validation import (
    optional_env,
    optional_id,
    optional_labels,
    optional_milliseconds,
    optional_str,
    required_str,
)

from .base import SandboxHandler

AUTH_RESOURCE = "sessions"


class SessionsHandler(SandboxHandler):
    """Execution sessions (persistent shells), authorized on Jupyter's `sessions`."""

    auth_resource = AUTH_RESOURCE


class SessionCreateHandler(SessionsHandler):
    """`POST /api/session/create`: start a shell session."""

    @web.authenticated
    @authorized("write")
    async def post(self) -> None:
        body = await self.json_body(required=False)
        session = await self.shell_sessions.create(
            optional_id(body, "id"),
            optional_env(body, "env"),
            optional_str(body, "cwd"),
            optional_milliseconds(body, "commandTimeoutMs"),
            optional_labels(body),
        )
        self.write_json(
            {
                "data": session.to_json(),
                "id": session.id,
                "sessionId": session.id,
                "containerPlacementId": None,
            }
        )


class SessionListHandler(SessionsHandler):
    """`GET /api/session/list`: the live sessions."""

    @web.authenticated
    @authorized("read")
    async def get(self) -> None:
        sessions = self.shell_sessions.list()
        self.write_json(
            {"data": [s.id for s in sessions], "sessions": [s.to_json() for s in sessions]}
        )


class SessionDeleteHandler(SessionsHandler):
    """`POST /api/session/delete`: end a session and what it started."""

    @web.authenticated
    @authorized("write")
    async def post(self) -> None:
        session_id = required_str(await self.json_body(), "sessionId", allow_empty=False)
        await self.shell_sessions.delete(session_id)
        self.write_json({"sessionId": session_id})
