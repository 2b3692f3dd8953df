"""Shell commands: docs/api.md, "Execution sessions and commands". Authorized as
processes are (`terminals`): a command is a terminal's job, for Jupyter's authorizer."""

from __future__ import annotations

from typing import Any

from jupyter_server.auth.decorator import authorized
from tornado import web

from jupyter_interp_ext.protocol.events import COMMAND_COMPLETE
from jupyter_interp_ext.protocol.validation import CommandRequest
from jupyter_interp_ext.shells.processes import BackgroundProcess, follow
from jupyter_interp_ext.shells.sessions import NO_SESSION

from .processes import ProcessesHandler


class ExecuteHandler(ProcessesHandler):
    """Runs a command to completion in the session's shell (or a fresh one, sessionless)."""

    @web.authenticated
    @authorized("execute")
    async def post(self) -> None:
        body = await self.json_body()
        request = CommandRequest.parse(body)
        if request.background:
            self.write_started(await self.launch(body, request))
            return
        session_id = self.session_id(body)
        args = (request.command, request.env, request.cwd, request.timeout)
        if session_id == NO_SESSION:
            result = await self.shell_sessions.execute_sessionless(*args)
        else:
            result = await self.shell_sessions.execute(session_id, *args)
        self.write_json(
            {
                "success": result.exit_code == 0,
                "exitCode": result.exit_code,
                "stdout": result.stdout,
                "stderr": result.stderr,
                "command": request.command,
                "duration": result.duration_ms,
                "sessionId": session_id,
                # Beyond upstream: a sessionless command killed at its time limit (exit 124)
                # says so, so a client tells it from a command that exits 124 itself.
                **({"timedOut": True} if result.timed_out else {}),
            }
        )


class CommandsHandler(ProcessesHandler):
    """The commands agents usually need that the shells' PATH has."""

    @web.authenticated
    @authorized("read")
    async def get(self) -> None:
        found = self.shell_sessions.available_commands()
        self.write_json({"availableCommands": found, "count": len(found)})


class ExecuteStreamHandler(ProcessesHandler):
    """`start`, then output as it comes, then `complete`; the command is a process too, and
    keeps running if the client leaves."""

    @web.authenticated
    @authorized("execute")
    async def post(self) -> None:
        body = await self.json_body()
        proc = await self.launch(body, CommandRequest.parse(body))
        first = {"type": "start", "command": proc.command, "processId": proc.id, "pid": proc.pid}
        await self.stream_events(follow(proc, first, _complete_event, {}))


def _complete_event(proc: BackgroundProcess) -> dict[str, Any]:
    """`complete`; beyond upstream, `timedOut` when the command was killed at its limit."""
    timed_out = {"timedOut": True} if proc.timed_out else {}
    return {"type": COMMAND_COMPLETE, "exitCode": proc.exit_code, **timed_out}
