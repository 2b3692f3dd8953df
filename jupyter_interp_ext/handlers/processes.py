"""Background processes: docs/api.md, "Processes"."""

from __future__ import annotations

from typing import Any

from jupyter_server.auth.decorator import authorized
from tornado import web

from jupyter_interp_ext import metrics
from jupyter_interp_ext.protocol.events import PROCESS_EXIT
from jupyter_interp_ext.protocol.validation import CommandRequest, optional_labels
from jupyter_interp_ext.shells.ports import PortCheck, watch_port
from jupyter_interp_ext.shells.processes import BackgroundProcess, follow
from jupyter_interp_ext.shells.sessions import NO_SESSION

from .base import SandboxHandler

AUTH_RESOURCE = "terminals"


class ProcessesHandler(SandboxHandler):
    """Background processes and ports, authorized on Jupyter's `terminals`."""

    auth_resource = AUTH_RESOURCE

    async def launch(self, body: dict[str, Any], request: CommandRequest) -> BackgroundProcess:
        """Start the request's command in the background from its session's current state."""
        session_id = self.session_id(body)
        cwd, env = await self.shell_sessions.process_launch(session_id, request.env, request.cwd)
        return await self.processes.start(
            request.command,
            cwd,
            env,
            process_id=request.process_id,
            timeout=request.timeout,
            session_id=session_id,
            labels=optional_labels(body),
        )

    async def run_to_end(self, body: dict[str, Any], request: CommandRequest) -> dict[str, Any]:
        """Run the request's command to its end in the body's session (a fresh shell when it
        names none): `POST /api/execute`'s answer."""
        session_id = self.session_id(body)
        args = (request.command, request.env, request.cwd, request.timeout)
        if session_id == NO_SESSION:
            result = await self.shell_sessions.execute_sessionless(*args)
        else:
            result = await self.shell_sessions.execute(session_id, *args)
        return {
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

    def write_started(self, proc: BackgroundProcess) -> None:
        self.write_json({"processId": proc.id, "pid": proc.pid, "command": proc.command})


class PortWatchHandler(ProcessesHandler):
    """`watching`, then `ready` (with the port's proxy URL) or `process_exited`."""

    @web.authenticated
    @authorized("execute")
    async def post(self) -> None:
        check = PortCheck.parse(await self.json_body())
        process = self.processes.get(check.process_id) if check.process_id else None
        with self.processes.port_watch_slot():
            await self.stream_events(watch_port(check, process, self.proxied))

    def proxied(self, port: int) -> str | None:
        """The port's preview URL (handlers/previews.py), with jupyter-server-proxy installed."""
        prefix = self.settings["interp_proxy_prefix"]
        return None if prefix is None else f"{prefix}{port}/"


class ProcessStartHandler(ProcessesHandler):
    """`POST /api/process/start`: start a command in the background."""

    @web.authenticated
    @authorized("execute")
    async def post(self) -> None:
        body = await self.json_body()
        self.write_started(await self.launch(body, CommandRequest.parse(body)))


class ProcessListHandler(ProcessesHandler):
    """`GET /api/process/list`: processes, optionally by status."""

    @web.authenticated
    @authorized("execute")
    async def get(self) -> None:
        status = self.get_query_argument("status", None)
        procs = self.processes.list(status)
        self.write_json({"processes": [p.to_json(with_end=False) for p in procs]})


class ProcessKillAllHandler(ProcessesHandler):
    """`DELETE /api/process/kill-all`: kill every running process."""

    @web.authenticated
    @authorized("execute")
    async def delete(self) -> None:
        self.write_json({"cleanedCount": await self.processes.kill_all()})


class ProcessHandler(ProcessesHandler):
    """`GET`/`DELETE /api/process/{id}`: one process's state, or kill it."""

    @web.authenticated
    @authorized("execute")
    async def get(self, process_id: str) -> None:
        self.write_json({"process": self.processes.get(process_id).to_json()})

    @web.authenticated
    @authorized("execute")
    async def delete(self, process_id: str) -> None:
        killed = await self.processes.kill(process_id)
        self.write_json({"processId": process_id, "killedPids": killed})


class ProcessLogsHandler(ProcessesHandler):
    """`GET /api/process/{id}/logs`: the output kept so far."""

    @web.authenticated
    @authorized("execute")
    async def get(self, process_id: str) -> None:
        proc = self.processes.get(process_id)
        self.write_json(
            {"processId": proc.id, "stdout": proc.stdout.text(), "stderr": proc.stderr.text()}
        )


class ProcessStreamHandler(ProcessesHandler):
    """`process_info`, the output so far, live output, then `exit`; each output event and
    `exit` carry ids, and a reader resumes after one with `Last-Event-ID` (or `?after=`)."""

    @web.authenticated
    @authorized("execute")
    async def get(self, process_id: str) -> None:
        proc = self.processes.get(process_id)
        after = self.after_event_id()
        if after:
            metrics.RESUMES.labels("process").inc()
        tag = {"processId": proc.id}
        first = {"type": "process_info", **tag, "command": proc.command, "status": proc.status}
        await self.stream_events(follow(proc, first, _exit_event, tag, after))


def _exit_event(proc: BackgroundProcess) -> dict[str, Any]:
    """`exit`; beyond upstream, `timedOut` when the process was killed at its limit."""
    return {
        "type": PROCESS_EXIT,
        "processId": proc.id,
        "exitCode": proc.exit_code,
        "data": f"Process {proc.status} with exit code {proc.exit_code}",
        **({"timedOut": True} if proc.timed_out else {}),
    }
