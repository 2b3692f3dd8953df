"""Shell commands: docs/api.md, "Execution sessions and commands". Authorized as
processes are (`terminals`): a command is a terminal's job, for Jupyter's authorizer."""

from __future__ import annotations

from typing import Any

from jupyter_server.auth.decorator import authorized
from tornado import web

from jupyter_interp_ext.protocol.events import COMMAND_COMPLETE
from jupyter_interp_ext.protocol.validation import CommandRequest
from jupyter_interp_ext.shells.processes import BackgroundProcess, follow

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
        self.write_json(await self.run_to_end(body, request))


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
