"""Background processes: started from a session's state, followed live, killed as whole trees."""

from __future__ import annotations

import asyncio
import builtins
import codecs
import contextlib
import secrets
import signal
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from traitlets import Float, Int
from traitlets.config import LoggingConfigurable

from jupyter_interp_ext import metrics
from jupyter_interp_ext.protocol.errors import ProtocolError, limit_reached
from jupyter_interp_ext.protocol.sse import Item, Numbered, encode
from jupyter_interp_ext.protocol.timestamps import now_iso

from .process_tree import Child, spawn_bash

KILLED_CODES = {137, 143, -signal.SIGKILL, -signal.SIGTERM}


@dataclass
class Chunk:
    seq: int  # order among all output of the process (both streams)
    offset: int  # characters of this stream before it
    text: str


class OutputBuffer:
    """The latest `limit` characters of one stream, as numbered chunks followers can resume
    from: memory is bounded here, never per follower."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.chunks: deque[Chunk] = deque()
        self.size = 0  # characters held
        self.total = 0  # characters ever appended
        self.decoder = codecs.getincrementaldecoder("utf-8")("replace")
        self.dropped_seq = 0  # the newest chunk some or all of whose text was dropped

    @property
    def start(self) -> int:
        """Offset of the first character still held (all before it were dropped)."""
        return self.total - self.size

    def append(self, seq: int, text: str) -> None:
        self.chunks.append(Chunk(seq, self.total, text))
        self.size += len(text)
        self.total += len(text)
        while self.size > self.limit:
            head = self.chunks[0]
            self.dropped_seq = head.seq
            excess = self.size - self.limit
            if len(head.text) > excess:
                self.chunks[0] = Chunk(head.seq, head.offset + excess, head.text[excess:])
                self.size -= excess
            else:
                self.chunks.popleft()
                self.size -= len(head.text)

    def text(self) -> str:
        return "".join(chunk.text for chunk in self.chunks)

    def offset_after(self, seq: int) -> int | None:
        """Where a reader that had everything numbered up to `seq` is in this stream: the
        offset of the first held chunk after it (None if some of what followed was dropped)."""
        if seq == 0:
            return self.start
        if self.dropped_seq > seq:
            return None
        following = self.after(seq)
        return following[0].offset if following else self.total

    def after(self, seq: int) -> list[Chunk]:
        """The chunks numbered after `seq`, oldest first (scanned from the newest end)."""
        found = []
        for chunk in reversed(self.chunks):
            if chunk.seq <= seq:
                break
            found.append(chunk)
        found.reverse()
        return found


def _missed(kind: str, buffer: OutputBuffer, had: int | None, chunk: Chunk) -> str:
    """The notice that goes before `chunk` for a reader whose last text of the stream ended at
    offset `had` (None: unknown, some of what followed was dropped)."""
    if had is None:
        return f"[earlier {kind} dropped: the last {buffer.limit} characters are kept]\n"
    if (missed := chunk.offset - had) > 0:
        return f"[{missed} characters of {kind} dropped: the reader fell behind]\n"
    return ""


@dataclass
class BackgroundProcess:
    id: str
    command: str
    child: Child
    stdout: OutputBuffer
    stderr: OutputBuffer
    session_id: str | None = None
    start_time: str = field(default_factory=now_iso)
    end_time: str | None = None
    ended_at: float | None = None
    exit_code: int | None = None
    status: str = "running"
    killed: bool = False
    timed_out: bool = False  # killed at its time limit
    done: asyncio.Event = field(default_factory=asyncio.Event)
    supervisor: asyncio.Future | None = None
    seq: int = 0
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    labels: dict[str, str] = field(default_factory=dict)  # the creator's, to find it again

    @property
    def pid(self) -> int:
        return self.child.pid

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
        if self.labels:
            info["labels"] = self.labels
        return info

    def receive(self, kind: str, data: bytes) -> None:
        """Bytes from one of the process's pipes."""
        buffer = self.stdout if kind == "stdout" else self.stderr
        if text := buffer.decoder.decode(data):
            self.seq += 1
            buffer.append(self.seq, text)
            self._wake()

    def _wake(self) -> None:
        self.changed.set()
        self.changed = asyncio.Event()

    async def follow(self, after: int = 0) -> AsyncIterator[tuple[int, str, str]]:
        """(id, stream, text) of the output numbered after `after`, what is held then live
        output, until exit.

        A follower only keeps its place in the buffers; one that falls further behind than
        they hold gets a notice of what it missed (in the text of the next chunk, which keeps
        its id) instead of unbounded memory.
        """
        buffers = {"stdout": self.stdout, "stderr": self.stderr}
        seq = after
        delivered: dict[str, int | None] = {
            kind: buffer.offset_after(after) for kind, buffer in buffers.items()
        }
        while True:
            changed, finished = self.changed, self.done.is_set()
            batch = sorted(
                ((chunk.seq, kind, chunk) for kind, b in buffers.items() for chunk in b.after(seq)),
                key=lambda item: item[0],
            )
            for chunk_seq, kind, chunk in batch:
                seq = chunk_seq
                yield seq, kind, _missed(kind, buffers[kind], delivered[kind], chunk) + chunk.text
                delivered[kind] = chunk.offset + len(chunk.text)
            if finished and not batch:
                return
            if not batch:
                await changed.wait()

    def ended(self, code: int) -> None:
        self.exit_code = 128 - code if code < 0 else code
        if self.killed or code in KILLED_CODES:
            self.status = "killed"
        else:
            self.status = "completed" if code == 0 else "failed"
        self.end_time = now_iso()
        self.ended_at = time.time()
        self.done.set()
        self._wake()


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
    max_port_watches = Int(
        64, help="Port-watch streams open at once (0: no limit); more are refused with 429."
    ).tag(config=True)

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._processes: dict[str, BackgroundProcess] = {}
        self._port_watches = 0

    @contextlib.contextmanager
    def port_watch_slot(self) -> Iterator[None]:
        """Hold one of the `max_port_watches` slots while a port is watched; 429 if none."""
        if self.max_port_watches and self._port_watches >= self.max_port_watches:
            raise limit_reached(
                "port watches", self.max_port_watches, "ProcessManager.max_port_watches"
            )
        self._port_watches += 1
        try:
            yield
        finally:
            self._port_watches -= 1

    async def start(
        self,
        command: str,
        cwd: str,
        env: dict[str, str],
        *,
        process_id: str | None = None,
        timeout: float | None = None,
        session_id: str | None = None,
        labels: dict[str, str] | None = None,
    ) -> BackgroundProcess:
        if not command.strip():
            raise ProtocolError(
                "INVALID_COMMAND", "Command must not be empty", {"command": command}
            )
        self._prune()
        running = sum(1 for p in self._processes.values() if not p.done.is_set())
        if self.max_running and running >= self.max_running:
            raise limit_reached("running processes", self.max_running, "ProcessManager.max_running")
        process_id = process_id or f"proc_{int(time.time() * 1000)}_{secrets.token_hex(3)}"
        if process_id in self._processes:
            raise ProtocolError(
                "RESOURCE_BUSY",
                f"Process id '{process_id}' is already in use",
                {"processId": process_id},
            )
        try:
            child = await spawn_bash(command, cwd, env)
        except OSError as exc:
            raise ProtocolError("STREAM_START_ERROR", f"Failed to start process: {exc}") from None
        proc = BackgroundProcess(
            process_id,
            command,
            child,
            OutputBuffer(self.buffer_chars),
            OutputBuffer(self.buffer_chars),
            session_id,
            labels=dict(labels or {}),
        )
        child.listen(proc.receive)
        self._processes[process_id] = proc
        metrics.PROCESSES.inc()
        proc.supervisor = asyncio.ensure_future(self._supervise(proc, timeout))
        self.log.info("Process %s started (pid %s): %s", process_id, child.pid, command)
        return proc

    async def _supervise(self, proc: BackgroundProcess, timeout: float | None) -> None:
        """Wait for the process itself to exit (not for pipes its leftovers may hold)."""
        try:
            await asyncio.wait_for(proc.child.wait(), timeout)
        except asyncio.TimeoutError:
            proc.timed_out = True
            await self._kill(proc)
        code = await proc.child.wait()
        await proc.child.finish_output()
        proc.ended(code)
        metrics.PROCESSES.dec()

    def get(self, process_id: str) -> BackgroundProcess:
        proc = self._processes.get(process_id)
        if proc is None:
            raise ProtocolError(
                "PROCESS_NOT_FOUND", f"Process {process_id} not found", {"processId": process_id}
            )
        return proc

    def list(self, status: str | None = None) -> list[BackgroundProcess]:
        self._prune()
        return [p for p in self._processes.values() if status in (None, p.status)]

    async def kill(self, process_id: str) -> builtins.list[int]:
        """Kill a running process and everything it started; the pids that were signalled."""
        proc = self.get(process_id)
        if proc.done.is_set():
            raise ProtocolError(
                "COMMAND_NOT_FOUND",
                f"Process {process_id} is not running ({proc.status})",
                {"processId": process_id, "status": proc.status},
            )
        killed = await self._kill(proc)
        await proc.done.wait()
        return killed

    async def _kill(self, proc: BackgroundProcess) -> builtins.list[int]:
        proc.killed = True
        killed = await proc.child.kill_tree()
        self.log.info("Process %s killed: pids %s", proc.id, killed)
        return killed

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


async def follow(
    proc: BackgroundProcess,
    first: dict[str, Any],
    last: Callable[[BackgroundProcess], dict[str, Any]],
    tag: dict[str, Any],
    after: int = 0,
) -> AsyncIterator[Item]:
    """`first`, every output of the process from its start (each event with `tag` and its
    id), then `last(proc)` once it ended: the one follow loop of every process-backed stream.
    A reader resuming `after` an id gets only what followed it (and no `first` again)."""
    if after == 0:
        yield {**first, "timestamp": now_iso()}
    async for seq, kind, data in proc.follow(after):
        event = {"type": kind, "data": data, **tag, "timestamp": now_iso()}
        yield Numbered(seq, encode(event))
    if after <= proc.seq:
        yield Numbered(proc.seq + 1, encode({**last(proc), "timestamp": now_iso()}), final=True)
