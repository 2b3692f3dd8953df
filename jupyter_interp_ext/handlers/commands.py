"""Shell commands: PROTOCOL.md §3.3."""

from __future__ import annotations

from jupyter_server.auth.decorator import authorized
from tornado import web
from tornado.iostream import StreamClosedError

from ..bodies import CommandRequest
from ..errors import now_iso
from ..sessions import NO_SESSION
from ..sse import EventStream
from .processes import ProcessesHandler


class ExecuteHandler(ProcessesHandler):
    """Runs a command to completion in the session's shell (or a fresh one, sessionless)."""

    @web.authenticated
    @authorized("execute")
    async def post(self) -> None:
        body = self.json_body()
        request = CommandRequest.parse(body)
        if request.background:
            self.write_started(await self.launch(body))
            return
        session_id = self.session_id(body)
        args = (request.command, request.env, request.cwd, request.timeout)
        if session_id == NO_SESSION:
            result = await self.sessions.execute_sessionless(*args)
        else:
            result = await self.sessions.execute(session_id, *args)
        self.write_json(
            {
                "success": result.exit_code == 0,
                "exitCode": result.exit_code,
                "stdout": result.stdout,
                "stderr": result.stderr,
                "command": request.command,
                "duration": result.duration_ms,
                "sessionId": session_id,
            }
        )


class ExecuteStreamHandler(ProcessesHandler):
    """`start`, then output as it comes, then `complete`; the command is a process too."""

    @web.authenticated
    @authorized("execute")
    async def post(self) -> None:
        proc = await self.launch(self.json_body())
        stream = EventStream(self)
        await stream.open()
        try:
            await stream.send(
                {
                    "type": "start",
                    "command": proc.command,
                    "processId": proc.id,
                    "pid": proc.pid,
                    "timestamp": now_iso(),
                }
            )
            async for kind, data in proc.follow(replay=True):
                await stream.send({"type": kind, "data": data, "timestamp": now_iso()})
            await proc.done.wait()
            await stream.send(
                {"type": "complete", "exitCode": proc.exit_code, "timestamp": now_iso()}
            )
        except StreamClosedError:
            return  # detached: the command keeps running as a process
        await stream.close()
