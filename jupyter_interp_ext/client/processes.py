"""`sandbox.sessions` and `sandbox.processes` (beyond E2B): persistent shells and the
background processes of this server, sync and async."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Iterator
from typing import TYPE_CHECKING

from . import calls
from .commands import CommandOutput
from .models import OutputMessage, ProcessInfo, SessionInfo
from .streams import following_process

if TYPE_CHECKING:
    from .sandbox import AsyncSandbox, Sandbox


class Sessions:
    """Persistent shells: `cd`, `export` and functions carry from command to command."""

    def __init__(self, sandbox: Sandbox) -> None:
        self._sandbox = sandbox

    def create(
        self,
        session_id: str | None = None,
        envs: dict[str, str] | None = None,
        cwd: str | None = None,
        timeout: float | None = None,
    ) -> SessionInfo:
        """Start an execution session: a shell whose cwd and exports persist (`timeout`:
        each command's limit in seconds)."""
        return self._sandbox._call(self._sandbox._new_session(session_id, envs, cwd, timeout))

    def list(self) -> list[SessionInfo]:
        """The live sessions."""
        return self._sandbox._call(calls.list_sessions())

    def delete(self, session_id: str) -> None:
        """End a session and everything it started."""
        self._sandbox._call(calls.delete_session(session_id))


class AsyncSessions:
    """`Sessions` for asyncio."""

    def __init__(self, sandbox: AsyncSandbox) -> None:
        self._sandbox = sandbox

    async def create(
        self,
        session_id: str | None = None,
        envs: dict[str, str] | None = None,
        cwd: str | None = None,
        timeout: float | None = None,
    ) -> SessionInfo:
        """As `Sessions.create`."""
        call = self._sandbox._new_session(session_id, envs, cwd, timeout)
        return await self._sandbox._call(call)

    async def list(self) -> list[SessionInfo]:
        """As `Sessions.list`."""
        return await self._sandbox._call(calls.list_sessions())

    async def delete(self, session_id: str) -> None:
        """As `Sessions.delete`."""
        await self._sandbox._call(calls.delete_session(session_id))


class Processes:
    """Background processes, followed or killed with everything they started."""

    def __init__(self, sandbox: Sandbox) -> None:
        self._sandbox = sandbox

    def start(
        self,
        cmd: str,
        session_id: str | None = None,
        cwd: str | None = None,
        envs: dict[str, str] | None = None,
        timeout: float | None = None,
        process_id: str | None = None,
    ) -> ProcessInfo:
        """Start a command in the background (in a session's shell, if named)."""
        envs = self._sandbox._with_envs(envs)
        body = calls.command_body(cmd, session_id, cwd, envs, timeout)
        return self._sandbox._call(self._sandbox._new_process(body, None, process_id))

    def get(self, process_id: str) -> ProcessInfo:
        """One process's state."""
        return self._sandbox._call(calls.get_process(process_id))

    def logs(self, process_id: str) -> tuple[str, str]:
        """(stdout, stderr) kept so far."""
        return self._sandbox._call(calls.process_logs(process_id))

    def kill(self, process_id: str) -> list[int]:
        """Kill the process and everything it started: the pids killed."""
        return self._sandbox._call(calls.kill_process(process_id))

    def stream(self, process_id: str) -> Iterator[OutputMessage]:
        """Its output from the start, then live, until it exits."""
        return self._sandbox._fed(following_process(process_id), CommandOutput().feed)

    def list(self, status: str | None = None) -> list[ProcessInfo]:
        """Processes, optionally only those with `status` (`running`, `completed`…)."""
        return self._sandbox._call(calls.list_processes(status))


class AsyncProcesses:
    """`Processes` for asyncio."""

    def __init__(self, sandbox: AsyncSandbox) -> None:
        self._sandbox = sandbox

    async def start(
        self,
        cmd: str,
        session_id: str | None = None,
        cwd: str | None = None,
        envs: dict[str, str] | None = None,
        timeout: float | None = None,
        process_id: str | None = None,
    ) -> ProcessInfo:
        """As `Processes.start`."""
        envs = self._sandbox._with_envs(envs)
        body = calls.command_body(cmd, session_id, cwd, envs, timeout)
        return await self._sandbox._call(self._sandbox._new_process(body, None, process_id))

    async def get(self, process_id: str) -> ProcessInfo:
        """As `Processes.get`."""
        return await self._sandbox._call(calls.get_process(process_id))

    async def logs(self, process_id: str) -> tuple[str, str]:
        """As `Processes.logs`."""
        return await self._sandbox._call(calls.process_logs(process_id))

    async def kill(self, process_id: str) -> list[int]:
        """As `Processes.kill`."""
        return await self._sandbox._call(calls.kill_process(process_id))

    def stream(self, process_id: str) -> AsyncGenerator[OutputMessage, None]:
        """As `Processes.stream` (close it, `contextlib.aclosing`, to leave early)."""
        return self._sandbox._fed(following_process(process_id), CommandOutput().feed)

    async def list(self, status: str | None = None) -> list[ProcessInfo]:
        """As `Processes.list`."""
        return await self._sandbox._call(calls.list_processes(status))
