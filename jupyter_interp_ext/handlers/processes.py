"""Background processes: docs/api.md, "Processes"."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

from jupyter_server.auth.decorator import authorized
from tornado import web

from ..events import PROCESS_EXIT
from ..ports import PortCheck, watch_port
from ..processes import BackgroundProcess
from ..timestamps import now_iso
from ..validation import CommandRequest
from .base import SandboxHandler

AUTH_RESOURCE = "terminals"


class ProcessesHandler(SandboxHandler):
    auth_resource = AUTH_RESOURCE

    async def launch(self, body: dict[str, Any]) -> BackgroundProcess:
        """Start the body's command in the background from its session's current state."""
        request = CommandRequest.parse(body)
        session_id = self.session_id(body)
        cwd, env = await self.shell_sessions.process_launch(session_id, request.env, request.cwd)
        return await self.processes.start(
            request.command,
            cwd,
            env,
            process_id=request.process_id,
            timeout=request.timeout,
            session_id=session_id,
        )

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
        """The port's preview URL (see previews.py), when jupyter-server-proxy is installed."""
        prefix = self.settings["interp_proxy_prefix"]
        return None if prefix is None else f"{prefix}{port}/"


class ProcessStartHandler(ProcessesHandler):
    @web.authenticated
    @authorized("execute")
    async def post(self) -> None:
        self.write_started(await self.launch(await self.json_body()))


class ProcessListHandler(ProcessesHandler):
    @web.authenticated
    @authorized("execute")
    async def get(self) -> None:
        status = self.get_query_argument("status", None)
        procs = self.processes.list(status)
        self.write_json({"processes": [p.to_json(with_end=False) for p in procs]})


class ProcessKillAllHandler(ProcessesHandler):
    @web.authenticated
    @authorized("execute")
    async def delete(self) -> None:
        self.write_json({"cleanedCount": await self.processes.kill_all()})


class ProcessHandler(ProcessesHandler):
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
    @web.authenticated
    @authorized("execute")
    async def get(self, process_id: str) -> None:
        proc = self.processes.get(process_id)
        self.write_json(
            {"processId": proc.id, "stdout": proc.stdout.text(), "stderr": proc.stderr.text()}
        )


class ProcessStreamHandler(ProcessesHandler):
    """`process_info`, the output so far, live output, then `exit`."""

    @web.authenticated
    @authorized("execute")
    async def get(self, process_id: str) -> None:
        proc = self.processes.get(process_id)
        tag = {"processId": proc.id}
        first = {"type": "process_info", **tag, "command": proc.command, "status": proc.status}
        await self.stream_events(follow_events(proc, first, _exit_event, tag))


def _exit_event(proc: BackgroundProcess) -> dict[str, Any]:
    return {
        "type": PROCESS_EXIT,
        "processId": proc.id,
        "exitCode": proc.exit_code,
        "data": f"Process {proc.status} with exit code {proc.exit_code}",
    }


async def follow_events(
    proc: BackgroundProcess,
    first: dict[str, Any],
    last: Callable[[BackgroundProcess], dict[str, Any]],
    tag: dict[str, Any],
) -> AsyncIterator[dict[str, Any]]:
    """`first`, every output of the process from its start (each event with `tag`), then
    `last(proc)` once it ended: the one follow loop of every process-backed stream."""
    yield {**first, "timestamp": now_iso()}
    async for kind, data in proc.follow(replay=True):
        yield {"type": kind, "data": data, **tag, "timestamp": now_iso()}
    yield {**last(proc), "timestamp": now_iso()}
