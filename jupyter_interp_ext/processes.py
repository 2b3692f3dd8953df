"""Background processes: started from a session's state, followed live, killed as whole trees."""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import secrets
import signal
import time
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from traitlets import Float, Int
from traitlets.config import LoggingConfigurable

from . import metrics
from .errors import SandboxError, limit_reached, now_iso
from .process_tree import signal_tree, spawn_bash

KILLED_CODES = {137, 143, -signal.SIGKILL, -signal.SIGTERM}
KILL_GRACE = 3.0


class OutputBuffer:
    """The latest `limit` characters of one stream, and who is listening for more."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.chunks: deque[str] = deque()
        self.size = 0
        self.dropped = 0
        self.decoder = codecs.getincrementaldecoder("utf-8")("replace")

    def append(self, text: str) -> None:
        self.chunks.append(text)
        self.size += len(text)
        while self.size > self.limit and self.chunks:
            excess = self.size - self.limit
            head = self.chunks.popleft()
            if len(head) > excess:
                self.chunks.appendleft(head[excess:])
                head = head[:excess]
            self.size -= len(head)
            self.dropped += len(head)

    def text(self) -> str:
        return "".join(self.chunks)


@dataclass
class BackgroundProcess:
    id: str
    command: str
    process: asyncio.subprocess.Process
    stdout: OutputBuffer
    stderr: OutputBuffer
    session_id: str | None = None
    start_time: str = field(default_factory=now_iso)
    end_time: str | None = None
    ended_at: float | None = None
    exit_code: int | None = None
    status: str = "running"
    killed: bool = False
    listeners: set[asyncio.Queue] = field(default_factory=set)
    done: asyncio.Event = field(default_factory=asyncio.Event)
    supervisor: asyncio.Future | None = None

    @property
    def pid(self) -> int:
        return self.process.pid

    def to_json(self, *, with_end: bool = True) -> dict[str, Any]:
        info = {
            "id": self.id,
            "pid": self.pid,
            "command": self.command,
            "status": self.status,
            "startTime": self.start_time,
            "exitCode": self.exit_code,
            "sessionId": self.session_id,
        }
        if with_end:
            info["endTime"] = self.end_time
        return info

    def publish(self, kind: str, data: str) -> None:
        (self.stdout if kind == "stdout" else self.stderr).append(data)
        for queue in self.listeners:
            queue.put_nowait((kind, data))

    async def follow(self, *, replay: bool) -> AsyncIterator[tuple[str, str]]:
        """(stream, text) pairs: what was buffered (if `replay`), then live output until exit."""
        queue: asyncio.Queue = asyncio.Queue()
        if replay:
            for kind, buffer in (("stdout", self.stdout), ("stderr", self.stderr)):
                if buffer.size:
                    yield kind, buffer.text()
        if self.done.is_set():
            return
        self.listeners.add(queue)
        try:
            while True:
                item = await queue.get()
                if item is None:
                    return
                yield item
        finally:
            self.listeners.discard(queue)


class ProcessManager(LoggingConfigurable):
    """The sandbox-wide process table (shared by every session)."""

    buffer_chars = Int(
        1024 * 1024, help="Characters of stdout (and of stderr) kept per process."
    ).tag(config=True)
    keep_finished = Int(200, help="Finished processes kept for listing.").tag(config=True)
    max_running = Int(
        256, help="Processes that may run at once (0: no limit); more are refused with 429."
    ).tag(config=True)
    keep_finished_seconds = Float(3600.0, help="Seconds a finished process stays listed.").tag(
        config=True
    )

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._processes: dict[str, BackgroundProcess] = {}

    async def start(
        self,
        command: str,
        cwd: str,
        env: dict[str, str],
        *,
        process_id: str | None = None,
        timeout: float | None = None,
        session_id: str | None = None,
    ) -> BackgroundProcess:
        if not command.strip():
            raise SandboxError("INVALID_COMMAND", "Command must not be empty", {"command": command})
        self._prune()
        running = sum(1 for p in self._processes.values() if not p.done.is_set())
        if self.max_running and running >= self.max_running:
            raise limit_reached("running processes", self.max_running, "ProcessManager.max_running")
        process_id = process_id or f"proc_{int(time.time() * 1000)}_{secrets.token_hex(3)}"
        if process_id in self._processes:
            raise SandboxError(
                "RESOURCE_BUSY",
                f"Process id '{process_id}' is already in use",
                {"processId": process_id},
            )
        try:
            process = await spawn_bash(command, cwd, env)
        except OSError as exc:
            raise SandboxError("STREAM_START_ERROR", f"Failed to start process: {exc}") from None
        proc = BackgroundProcess(
            process_id,
            command,
            process,
            OutputBuffer(self.buffer_chars),
            OutputBuffer(self.buffer_chars),
            session_id,
        )
        self._processes[process_id] = proc
        metrics.PROCESSES.inc()
        proc.supervisor = asyncio.ensure_future(self._supervise(proc, timeout))
        self.log.info("Process %s started (pid %s): %s", process_id, process.pid, command)
        return proc

    async def _supervise(self, proc: BackgroundProcess, timeout: float | None) -> None:
        readers = [
            asyncio.ensure_future(self._pump(proc, "stdout", proc.process.stdout)),
            asyncio.ensure_future(self._pump(proc, "stderr", proc.process.stderr)),
        ]
        try:
            await asyncio.wait_for(proc.process.wait(), timeout)
        except asyncio.TimeoutError:
            await self._kill(proc)
        # Grandchildren may hold the pipes open: stop reading once the process itself is gone.
        await asyncio.wait(readers, timeout=0.5)
        for reader in readers:
            reader.cancel()
        code = proc.process.returncode
        proc.exit_code = 128 - code if code is not None and code < 0 else code
        if proc.killed or code in KILLED_CODES:
            proc.status = "killed"
        else:
            proc.status = "completed" if code == 0 else "failed"
        proc.end_time = now_iso()
        proc.ended_at = time.time()
        proc.done.set()
        metrics.PROCESSES.dec()
        for queue in proc.listeners:
            queue.put_nowait(None)

    async def _pump(self, proc: BackgroundProcess, kind: str, stream: Any) -> None:
        buffer = proc.stdout if kind == "stdout" else proc.stderr
        while chunk := await stream.read(65536):
            text = buffer.decoder.decode(chunk)
            if text:
                proc.publish(kind, text)

    def get(self, process_id: str) -> BackgroundProcess:
        proc = self._processes.get(process_id)
        if proc is None:
            raise SandboxError(
                "PROCESS_NOT_FOUND", f"Process {process_id} not found", {"processId": process_id}
            )
        return proc

    def list(self, status: str | None = None) -> list[BackgroundProcess]:
        self._prune()
        return [p for p in self._processes.values() if status in (None, p.status)]

    async def kill(self, process_id: str) -> None:
        """Kill a running process and everything it started."""
        proc = self.get(process_id)
        if proc.done.is_set():
            raise SandboxError(
                "COMMAND_NOT_FOUND",
                f"Process {process_id} is not running ({proc.status})",
                {"processId": process_id, "status": proc.status},
            )
        await self._kill(proc)
        await proc.done.wait()

    async def _kill(self, proc: BackgroundProcess) -> None:
        proc.killed = True
        signal_tree(proc.pid, signal.SIGTERM)
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(asyncio.shield(proc.process.wait()), KILL_GRACE)
        signal_tree(proc.pid, signal.SIGKILL)

    async def kill_all(self) -> int:
        running = [p for p in self._processes.values() if not p.done.is_set()]
        await asyncio.gather(*(self._kill(p) for p in running))
        await asyncio.gather(*(p.done.wait() for p in running))
        return len(running)

    def _prune(self) -> None:
        """Forget finished processes past the age or count limit."""
        finished = sorted(
            (p for p in self._processes.values() if p.ended_at is not None),
            key=lambda p: p.ended_at or 0,
        )
        cutoff = time.time() - self.keep_finished_seconds
        excess = len(finished) - self.keep_finished
        for index, proc in enumerate(finished):
            if index < excess or (proc.ended_at or 0) < cutoff:
                del self._processes[proc.id]

    async def shutdown(self) -> None:
        with contextlib.suppress(Exception):
            await self.kill_all()
