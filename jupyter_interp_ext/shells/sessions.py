"""Execution sessions: named persistent shells, plus one-shot sessionless commands."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from secrets import token_hex
from typing import Any

from traitlets import Float, Instance, Int, List, Unicode
from traitlets.config import LoggingConfigurable

from jupyter_interp_ext import metrics
from jupyter_interp_ext._version import __version__
from jupyter_interp_ext.launch import LaunchPolicy, cd_failed, command_dir
from jupyter_interp_ext.protocol.errors import ProtocolError, limit_reached, validation_error

from .process_tree import alive, run_to_end
from .shell import CommandOutcome, CommandTimedOut, Shell, ShellExited

DEFAULT_SESSION = "default"
SHELL_FILES_PREFIX = "sandbox-shells-"
NO_SESSION = "__DISABLE_SESSION__"
SESSIONLESS_TIMEOUT_EXIT = 124


@dataclass
class ShellSession:
    """A session as the API sees it: an id, a shell and the lock that orders its commands."""

    id: str
    shell: Shell
    command_timeout: float | None
    created: float = field(default_factory=time.time)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    labels: dict[str, str] = field(default_factory=dict)  # the creator's, to find it again

    def to_json(self) -> dict[str, Any]:
        answer: dict[str, Any] = {
            "id": self.id,
            "cwd": self.shell.cwd,
            "pid": self.shell.pid,
            "createdAt": self.created,
        }
        if self.labels:
            answer["labels"] = self.labels
        return answer


class ShellSessionManager(LoggingConfigurable):
    """Creates shells on demand, runs commands in them, and ends them."""

    command_output_limit = Int(
        16 * 1024 * 1024, help="Bytes of stdout (and of stderr) kept from one command."
    ).tag(config=True)

    default_command_timeout = Float(
        0.0,
        help="Seconds a foreground command may run when neither the request nor its "
        "session sets a limit (0: no limit).",
    ).tag(config=True)

    max_sessions = Int(
        64, help="Sessions (shells) that may exist at once (0: no limit); more get 429."
    ).tag(config=True)

    reported_commands = List(
        Unicode(),
        [
            "bash",
            "sh",
            "python3",
            "python",
            "pip",
            "node",
            "npm",
            "npx",
            "deno",
            "git",
            "curl",
            "wget",
            "ls",
            "cat",
            "grep",
            "find",
            "sed",
            "awk",
            "sort",
            "head",
            "tail",
            "tar",
            "gzip",
            "zip",
            "unzip",
            "jq",
            "make",
            "gcc",
            "g++",
            "rg",
            "sqlite3",
        ],
        help="Commands `/api/commands` reports when they are on the shells' PATH: what agents "
        "usually check for before they plan.",
    ).tag(config=True)

    launch = Instance(LaunchPolicy)
    root_dir = Unicode()

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._sessions: dict[str, ShellSession] = {}
        self._starting: dict[str, asyncio.Lock] = {}
        self.files_dir = shell_files_dir()
        # Called with a session's id when it ends (its terminal ends with it).
        self.on_end: list[Callable[[str], Awaitable[None]]] = []

    def _new_shell(self, cwd: str, env: dict[str, str]) -> Shell:
        self.files_dir.mkdir(mode=0o700, exist_ok=True)
        return Shell(cwd, env, self.command_output_limit, self.files_dir)

    def base_environment(self, extra: dict[str, str]) -> dict[str, str]:
        """What every shell and process starts with: the server's env minus secrets, plus ours."""
        env = self.launch.environment(os.environ, extra)
        env.update(LANG="C.UTF-8", LC_ALL="C.UTF-8", SANDBOX_VERSION=__version__)
        return env

    def available_commands(self) -> list[str]:
        """The reported commands found on the PATH a new shell gets."""
        path = self.base_environment({}).get("PATH", os.defpath)
        return [name for name in self.reported_commands if shutil.which(name, path=path)]

    def list(self) -> list[ShellSession]:
        return [s for s in self._sessions.values() if s.shell.alive]

    async def create(
        self,
        session_id: str | None,
        env: dict[str, str],
        cwd: str | None,
        command_timeout: float | None = None,
        labels: dict[str, str] | None = None,
    ) -> ShellSession:
        """A new session; 409 if one with this id is alive (a dead one is replaced)."""
        session_id = session_id or f"session_{int(time.time() * 1000)}_{token_hex(6)}"
        if session_id == NO_SESSION:
            raise validation_error("id", f"'{NO_SESSION}' is reserved for sessionless commands")
        existing = self._sessions.get(session_id)
        if existing is not None and existing.shell.alive:
            raise ProtocolError(
                "SESSION_ALREADY_EXISTS",
                f"Session '{session_id}' already exists",
                {"sessionId": session_id, "containerPlacementId": None},
            )
        if self.max_sessions and len(self.list()) >= self.max_sessions:
            raise limit_reached("sessions", self.max_sessions, "ShellSessionManager.max_sessions")
        cwd = self.launch.start_dir(cwd, self.root_dir)
        shell = self._new_shell(cwd, self.base_environment(env))
        await shell.start()
        session = ShellSession(session_id, shell, command_timeout, labels=dict(labels or {}))
        self._sessions[session_id] = session
        metrics.SESSIONS.set(len(self._sessions))
        self.log.info("Session %s started in %s (pid %s)", session_id, shell.cwd, shell.pid)
        return session

    async def get_or_create(self, session_id: str) -> ShellSession:
        """The live session with this id, created with defaults if there is none."""
        session = self._sessions.get(session_id)
        if session is not None and session.shell.alive:
            return session
        lock = self._starting.setdefault(session_id, asyncio.Lock())
        async with lock:
            session = self._sessions.get(session_id)
            if session is not None and session.shell.alive:
                return session
            return await self.create(session_id, {}, None)

    async def execute(
        self,
        session_id: str,
        command: str,
        env: dict[str, str],
        cwd: str | None,
        timeout: float | None,
    ) -> CommandOutcome:
        """Run a command in a session's shell (waiting for the commands before it)."""
        session = await self.get_or_create(session_id)
        limit = timeout or session.command_timeout or self.default_command_timeout or None
        async with session.lock:
            if self._sessions.get(session_id) is not session:
                raise ProtocolError(
                    "SESSION_DESTROYED",
                    f"Session '{session_id}' was deleted before this command could run",
                    {"sessionId": session_id},
                )
            try:
                result = await session.shell.run(command, env, cwd, limit)
            except ShellExited as exc:
                await self._discard(session)
                self._account(session_id, "terminated", None)
                raise ProtocolError(
                    "SESSION_TERMINATED",
                    f"Session '{session_id}' ended: the command exited the shell "
                    f"(exit code {exc.exit_code})",
                    {"sessionId": session_id, "exitCode": exc.exit_code},
                ) from None
            except CommandTimedOut:
                if not session.shell.alive:
                    await self._discard(session)
                self._account(session_id, "timeout", None)
                raise ProtocolError(
                    "COMMAND_EXECUTION_ERROR",
                    f"Failed to execute command '{command}' in session '{session_id}': "
                    f"Command timeout after {round((limit or 0) * 1000)}ms",
                    {"command": command, "sessionId": session_id, "timedOut": True},
                ) from None
        result = CommandOutcome(
            result.exit_code,
            _strip_newline(result.stdout),
            _strip_newline(result.stderr),
            result.duration_ms,
        )
        self._account(session_id, "ok" if result.exit_code == 0 else "failed", result)
        return result

    async def execute_sessionless(
        self, command: str, env: dict[str, str], cwd: str | None, timeout: float | None
    ) -> CommandOutcome:
        """A fresh `bash -c` sharing nothing; a timeout is exit code 124, as upstream. It is
        done when bash exits, even if something it left behind still holds its output.
        A `cwd` that does not exist fails the command as it would in a session."""
        started = time.monotonic()
        workdir = command_dir(cwd, self.root_dir)
        if workdir is None:
            result = CommandOutcome(1, "", cd_failed(cwd or ""), 0)
            self._account(NO_SESSION, "failed", result)
            return result
        limit = timeout or self.default_command_timeout or None
        env = self.base_environment(env)
        run = await run_to_end(command, workdir, env, limit, self.command_output_limit)
        code, out, err = run.exit_code, run.stdout, run.stderr
        if run.timed_out:
            code = SESSIONLESS_TIMEOUT_EXIT
            err += f"\nCommand timed out after {round((limit or 0) * 1000)}ms"
            self.log.info("Sessionless command timed out; killed pids %s", run.killed)
        duration = round((time.monotonic() - started) * 1000)
        result = CommandOutcome(code, out, err, duration, timed_out=run.timed_out)
        outcome = "timeout" if run.timed_out else "ok" if code == 0 else "failed"
        self._account(NO_SESSION, outcome, result)
        return result

    def _account(self, session_id: str, outcome: str, result: CommandOutcome | None) -> None:
        """One metrics update and one structured log line per foreground command."""
        sent = len(result.stdout.encode()) + len(result.stderr.encode()) if result else 0
        metrics.COMMANDS.labels(outcome).inc()
        metrics.OUTPUT_BYTES.labels("command").inc(sent)
        if outcome == "timeout":
            metrics.TIMEOUTS.labels("command").inc()
        self.log.info(
            "command session=%s outcome=%s exit_code=%s duration_ms=%s bytes_out=%d",
            session_id,
            outcome,
            result.exit_code if result else "-",
            result.duration_ms if result else "-",
            sent,
        )

    async def process_launch(
        self, session_id: str, env: dict[str, str], cwd: str | None
    ) -> tuple[str, dict[str, str]]:
        """Where and with what environment a background command of this session starts.

        In a session it inherits the shell's current directory and exports, like a subshell;
        sessionless it gets the server's environment and root.
        """
        if session_id == NO_SESSION:
            base_cwd, base_env = self.root_dir, self.base_environment({})
        else:
            base_cwd, base_env = await self.snapshot(session_id)
        target = command_dir(cwd, base_cwd)
        if target is None:
            raise ProtocolError(
                "FILE_NOT_FOUND", f"Directory not found: {cwd}", {"path": cwd, "field": "cwd"}
            )
        return target, self.launch.environment(base_env, env)

    def current_dir(self, session_id: str) -> str:
        """Where relative paths of this session point: its shell's current directory, read
        from the process itself (no command, no waiting behind a running one). A session
        that does not exist is not created for this: its paths start at the root."""
        session = self._sessions.get(session_id)
        if session_id == NO_SESSION or session is None or not session.shell.alive:
            return self.root_dir
        return session.shell.current_dir()

    async def snapshot(self, session_id: str) -> tuple[str, dict[str, str]]:
        """The session shell's current directory and environment (after `cd` and `export`)."""
        session = await self.get_or_create(session_id)
        async with session.lock:
            return await session.shell.snapshot()

    async def delete(self, session_id: str) -> None:
        """Wait for the running command, then kill the shell and everything it started."""
        session = self._sessions.get(session_id)
        if session is None:
            raise ProtocolError(
                "SESSION_NOT_FOUND",
                f"Session '{session_id}' not found",
                {"sessionId": session_id},
                status=404,
            )
        async with session.lock:
            await self._discard(session)
        self.log.info("Session %s deleted", session_id)

    async def _discard(self, session: ShellSession) -> None:
        if self._sessions.get(session.id) is session:
            del self._sessions[session.id]
            metrics.SESSIONS.set(len(self._sessions))
        await session.shell.kill()
        for ended in self.on_end:
            await ended(session.id)

    async def shutdown(self) -> None:
        for session in list(self._sessions.values()):
            with contextlib.suppress(Exception):
                await self._discard(session)
        shutil.rmtree(self.files_dir, ignore_errors=True)


def shell_files_dir() -> Path:
    """This server's folder for its shells' command files: `sandbox-shells-<pid>` in the
    temporary directory. Folders of servers that are gone (killed before they could clean up)
    are removed here, so none outlives its server for longer than the next start."""
    temp = Path(tempfile.gettempdir())
    for stale in temp.glob(f"{SHELL_FILES_PREFIX}*"):
        pid = stale.name[len(SHELL_FILES_PREFIX) :]
        if pid.isdigit() and int(pid) != os.getpid() and not alive(int(pid)):
            shutil.rmtree(stale, ignore_errors=True)
    return temp / f"{SHELL_FILES_PREFIX}{os.getpid()}"


def _strip_newline(text: str) -> str:
    """Session mode drops exactly one trailing newline, as the upstream server does."""
    return text[:-1] if text.endswith("\n") else text
