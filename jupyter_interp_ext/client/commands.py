"""`sandbox.commands`: E2B's shell commands, sync (`Commands`) and async (`AsyncCommands`),
and the handles of commands run in the background."""

from __future__ import annotations

import contextlib
import dataclasses
import time
from collections.abc import AsyncGenerator, Callable, Iterator
from typing import TYPE_CHECKING, Any, Literal, overload

from . import calls
from .errors import InvalidArgumentException, NotFoundError
from .files import stream_error
from .models import CommandResult, OutputMessage, ProcessInfo, RunCallbacks, checked, nanoseconds
from .streams import following_process

if TYPE_CHECKING:
    from .sandbox import AsyncSandbox, Sandbox

OutputCallback = Callable[[OutputMessage], Any]


class CommandOutput:
    """Collects a streamed command (`start`, `stdout`/`stderr`, `complete` or `exit`). With
    `strip_newline`, its result drops one trailing newline, as `/api/execute` does for a
    command run in a session, so a result is the same streamed or not."""

    def __init__(self, strip_newline: bool = False) -> None:
        self.strip_newline = strip_newline
        self.stdout: list[str] = []
        self.stderr: list[str] = []
        self.exit_code: int | None = None
        self.timed_out = False
        self.started = time.monotonic()

    def feed(self, event: dict[str, Any]) -> OutputMessage | None:
        """Take one event: the output it carries, if any (an `error` event raises)."""
        kind = event.get("type")
        if kind in ("stdout", "stderr"):
            getattr(self, kind).append(event.get("data", ""))
            stamp = nanoseconds(event.get("timestamp"))
            return OutputMessage(event.get("data", ""), stamp, error=kind == "stderr")
        if kind in ("complete", "exit"):
            self.exit_code = event.get("exitCode")
            self.timed_out = bool(event.get("timedOut"))
        elif kind == "error":
            raise stream_error(event)
        return None

    def result(self) -> CommandResult:
        """The command's result, or what it raises (see `checked`)."""
        duration = round((time.monotonic() - self.started) * 1000)
        exit_code = -1 if self.exit_code is None else self.exit_code
        stdout, stderr = "".join(self.stdout), "".join(self.stderr)
        if self.strip_newline:
            stdout, stderr = stdout.removesuffix("\n"), stderr.removesuffix("\n")
        return checked(CommandResult(stdout, stderr, exit_code, duration), self.timed_out)


@dataclasses.dataclass
class _Plan:
    """What one `commands.run` sends: the body, and how its answer is followed."""

    body: dict[str, Any]
    streamed: bool
    strip_newline: bool


def _plan(
    sandbox: Sandbox | AsyncSandbox,
    cmd: str,
    envs: dict[str, str] | None,
    cwd: str | None,
    stdin: bool | None,
    timeout: float | None,
    session_id: str | None,
    callbacks: RunCallbacks,
) -> _Plan:
    if stdin:
        raise InvalidArgumentException("stdin cannot be kept open: commands read /dev/null")
    session = session_id or calls.NO_SESSION
    body = calls.command_body(cmd, session, cwd, sandbox._with_envs(envs) or None, timeout or None)
    streamed = callbacks.on_stdout is not None or callbacks.on_stderr is not None
    return _Plan(body, streamed, strip_newline=session != calls.NO_SESSION)


def _pair(message: OutputMessage) -> tuple[str | None, str | None, None]:
    """E2B's (stdout, stderr, pty) triple for one piece of output."""
    return (None, message.line, None) if message.error else (message.line, None, None)


def _running_pid(processes: list[ProcessInfo], pid: int | None) -> str | None:
    return next((p.id for p in processes if p.pid == pid), None)


class Commands:
    """Shell commands as E2B's: each run in a fresh shell unless `session_id` names one of
    this server's persistent sessions (where `cd` and `export` carry over). `user` is
    accepted and ignored (commands run as the server's user)."""

    def __init__(self, sandbox: Sandbox) -> None:
        self._sandbox = sandbox

    @overload
    def run(
        self,
        cmd: str,
        background: Literal[False] = False,
        envs: dict[str, str] | None = None,
        user: str | None = None,
        cwd: str | None = None,
        on_stdout: OutputCallback | None = None,
        on_stderr: OutputCallback | None = None,
        stdin: bool | None = None,
        timeout: float | None = 60,
        request_timeout: float | None = None,
        session_id: str | None = None,
    ) -> CommandResult: ...

    @overload
    def run(
        self,
        cmd: str,
        background: Literal[True],
        envs: dict[str, str] | None = None,
        user: str | None = None,
        cwd: str | None = None,
        on_stdout: OutputCallback | None = None,
        on_stderr: OutputCallback | None = None,
        stdin: bool | None = None,
        timeout: float | None = 60,
        request_timeout: float | None = None,
        session_id: str | None = None,
    ) -> CommandHandle: ...

    def run(
        self,
        cmd: str,
        background: bool = False,
        envs: dict[str, str] | None = None,
        user: str | None = None,
        cwd: str | None = None,
        on_stdout: OutputCallback | None = None,
        on_stderr: OutputCallback | None = None,
        stdin: bool | None = None,
        timeout: float | None = 60,
        request_timeout: float | None = None,
        session_id: str | None = None,
    ) -> CommandResult | CommandHandle:
        """Run `cmd` to its end: a `CommandResult`; a non-zero exit raises
        `CommandExitException` and one past `timeout` seconds (60; 0: no limit) raises
        `TimeoutException`. Callbacks get output as it comes. With `background`, a
        `CommandHandle` at once. `stdin` cannot be kept open (commands read /dev/null)."""
        callbacks = RunCallbacks(on_stdout=on_stdout, on_stderr=on_stderr)
        plan = _plan(self._sandbox, cmd, envs, cwd, stdin, timeout, session_id, callbacks)
        if background:
            info = self._sandbox._call(self._sandbox._new_process(plan.body, request_timeout))
            return CommandHandle(self._sandbox, info)
        if plan.streamed:
            output = CommandOutput(plan.strip_newline)
            return self._sandbox._streamed_command(
                calls.execute_stream(plan.body), callbacks, output
            )
        return self._sandbox._call(calls.execute(plan.body, request_timeout))

    def list(self, request_timeout: float | None = None) -> list[ProcessInfo]:
        """The commands running in the background (each a `ProcessInfo` of this server)."""
        return self._sandbox._call(calls.list_processes("running"))

    def kill(self, pid: int, request_timeout: float | None = None) -> bool:
        """Kill the background command with this pid and everything it started: whether
        there was one to kill."""
        process_id = _running_pid(self._sandbox._call(calls.list_processes("running")), pid)
        if process_id is None:
            return False
        try:
            self._sandbox._call(calls.kill_process(process_id))
        except NotFoundError:  # it ended meanwhile
            return False
        return True


class CommandHandle:
    """A command running in the background, as E2B's handle: its `pid`, `wait()` for its
    result, `kill()`, and iteration over its output as `(stdout, stderr, pty)` triples (one
    of the three set)."""

    def __init__(self, sandbox: Sandbox, info: ProcessInfo) -> None:
        self._sandbox = sandbox
        self.info = info
        self.pid = info.pid

    def __iter__(self) -> Iterator[tuple[str | None, str | None, None]]:
        for message in self._sandbox._fed(following_process(self.info.id), CommandOutput().feed):
            yield _pair(message)

    def wait(
        self, on_stdout: OutputCallback | None = None, on_stderr: OutputCallback | None = None
    ) -> CommandResult:
        """Follow the command to its end: its result (or CommandExitException)."""
        callbacks = RunCallbacks(on_stdout=on_stdout, on_stderr=on_stderr)
        place = following_process(self.info.id)
        return self._sandbox._streamed_command(place, callbacks, CommandOutput())

    def kill(self) -> bool:
        """Kill it and everything it started: whether it was still running."""
        return self._sandbox.commands.kill(self.pid or -1)


class AsyncCommands:
    """`Commands` for asyncio: the same methods, awaited; callbacks may be coroutine
    functions."""

    def __init__(self, sandbox: AsyncSandbox) -> None:
        self._sandbox = sandbox

    @overload
    async def run(
        self,
        cmd: str,
        background: Literal[False] = False,
        envs: dict[str, str] | None = None,
        user: str | None = None,
        cwd: str | None = None,
        on_stdout: OutputCallback | None = None,
        on_stderr: OutputCallback | None = None,
        stdin: bool | None = None,
        timeout: float | None = 60,
        request_timeout: float | None = None,
        session_id: str | None = None,
    ) -> CommandResult: ...

    @overload
    async def run(
        self,
        cmd: str,
        background: Literal[True],
        envs: dict[str, str] | None = None,
        user: str | None = None,
        cwd: str | None = None,
        on_stdout: OutputCallback | None = None,
        on_stderr: OutputCallback | None = None,
        stdin: bool | None = None,
        timeout: float | None = 60,
        request_timeout: float | None = None,
        session_id: str | None = None,
    ) -> AsyncCommandHandle: ...

    async def run(
        self,
        cmd: str,
        background: bool = False,
        envs: dict[str, str] | None = None,
        user: str | None = None,
        cwd: str | None = None,
        on_stdout: OutputCallback | None = None,
        on_stderr: OutputCallback | None = None,
        stdin: bool | None = None,
        timeout: float | None = 60,
        request_timeout: float | None = None,
        session_id: str | None = None,
    ) -> CommandResult | AsyncCommandHandle:
        """As `Commands.run`."""
        callbacks = RunCallbacks(on_stdout=on_stdout, on_stderr=on_stderr)
        plan = _plan(self._sandbox, cmd, envs, cwd, stdin, timeout, session_id, callbacks)
        if background:
            call = self._sandbox._new_process(plan.body, request_timeout)
            return AsyncCommandHandle(self._sandbox, await self._sandbox._call(call))
        if plan.streamed:
            output = CommandOutput(plan.strip_newline)
            call = calls.execute_stream(plan.body)
            return await self._sandbox._streamed_command(call, callbacks, output)
        return await self._sandbox._call(calls.execute(plan.body, request_timeout))

    async def list(self, request_timeout: float | None = None) -> list[ProcessInfo]:
        """As `Commands.list`."""
        return await self._sandbox._call(calls.list_processes("running"))

    async def kill(self, pid: int, request_timeout: float | None = None) -> bool:
        """As `Commands.kill`."""
        running = await self._sandbox._call(calls.list_processes("running"))
        if (process_id := _running_pid(running, pid)) is None:
            return False
        try:
            await self._sandbox._call(calls.kill_process(process_id))
        except NotFoundError:  # it ended meanwhile
            return False
        return True


class AsyncCommandHandle:
    """`CommandHandle` for asyncio: `await wait()`, `await kill()`, `async for` output."""

    def __init__(self, sandbox: AsyncSandbox, info: ProcessInfo) -> None:
        self._sandbox = sandbox
        self.info = info
        self.pid = info.pid

    async def __aiter__(self) -> AsyncGenerator[tuple[str | None, str | None, None], None]:
        place = following_process(self.info.id)
        async with contextlib.aclosing(self._sandbox._fed(place, CommandOutput().feed)) as items:
            async for message in items:
                yield _pair(message)

    async def wait(
        self, on_stdout: OutputCallback | None = None, on_stderr: OutputCallback | None = None
    ) -> CommandResult:
        """As `CommandHandle.wait`."""
        callbacks = RunCallbacks(on_stdout=on_stdout, on_stderr=on_stderr)
        place = following_process(self.info.id)
        return await self._sandbox._streamed_command(place, callbacks, CommandOutput())

    async def kill(self) -> bool:
        """As `CommandHandle.kill`."""
        return await self._sandbox.commands.kill(self.pid or -1)
