"""Durable runs: every run's events, numbered from 1 and kept within budgets, so that readers
can leave and come back (from the last id they saw) while the run goes on.

A run is produced by a task of its own into an `Execution`; each request that streams it is a
`Follower` reading from there. Memory is bounded per run and in all (oldest first: whole ended
runs, then events every reader has passed); a live reader never loses an event, since a run
waits for its slowest reader before it drops what that reader has not had yet.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
import uuid
from collections import deque
from collections.abc import AsyncIterator
from typing import Any, Protocol

from jupyter_interp_ext import metrics
from jupyter_interp_ext.protocol.errors import ProtocolError
from jupyter_interp_ext.protocol.events import RUN_COMPLETE, ends_run
from jupyter_interp_ext.protocol.sse import Encoded, Numbered, encode
from jupyter_interp_ext.protocol.timestamps import now_iso

from .outputs import server_error_event

# Runs the server (or its user) stopped end as `interrupted`, not as errors of their code.
_INTERRUPTED_REASONS = ("timeout", "disconnected", "cancelled")


class Stop(asyncio.Event):
    """Set to stop a run; says why, for its terminal event (a reader that never came back, by
    default, or a caller that cancelled it)."""

    ename = "ClientDisconnected"
    why = "The client disconnected"

    def cancel(self) -> None:
        """Stop the run at a caller's request."""
        if not self.is_set():
            self.ename, self.why = "ExecutionCancelled", "The run was cancelled"
            self.set()


class Limits(Protocol):
    """What is kept, and for how long: `ExecutionManager`'s settings, read when used."""

    retain_bytes_per_run: int
    retain_bytes: int
    retain_seconds: float
    retain_runs: int
    reconnect_grace: float


class ExecutionStore:
    """The runs the server keeps, by id and by idempotency key."""

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self.executions: dict[str, Execution] = {}  # oldest first
        self.ended_runs: dict[str, Execution] = {}  # the ended ones, in the order they ended
        self.by_key: dict[str, Execution] = {}
        self.held = 0  # bytes of events kept across all runs

    def add(self, execution: Execution) -> None:
        self.executions[execution.id] = execution
        if execution.key is not None:
            self.by_key[execution.key] = execution
        metrics.RETAINED_EXECUTIONS.set(len(self.executions))

    def get(self, execution_id: str) -> Execution:
        """The run `execution_id`; 404 if unknown or forgotten."""
        execution = self.executions.get(execution_id)
        if execution is None:
            raise ProtocolError(
                "EXECUTION_NOT_FOUND",
                f"Execution {execution_id} not found (unknown, or its events were no longer "
                "kept: ExecutionManager.retain_seconds)",
                {"executionId": execution_id},
            )
        return execution

    def keyed(self, key: str, context_id: str, code: str) -> Execution | None:
        """The run an earlier request with this idempotency key started, if still kept; 409
        if that request asked for something else."""
        execution = self.by_key.get(key)
        if execution is not None and execution.fingerprint != fingerprint(context_id, code):
            raise ProtocolError(
                "IDEMPOTENCY_KEY_REUSED",
                f"Idempotency-Key {key!r} was used for another run (execution {execution.id}) "
                "with a different context or code",
                {"executionId": execution.id},
            )
        return execution

    def resized(self, change: int) -> None:
        self.held += change
        metrics.RETAINED_BYTES.set(self.held)

    def make_room(self) -> None:
        """Over the total budget, forget ended runs, the oldest first."""
        while self.held > self.limits.retain_bytes and self.ended_runs:
            self.forget(next(iter(self.ended_runs.values())), "bytes")

    def ended(self, execution: Execution) -> None:
        """A run ended: kept `keep_seconds`, and within `max_kept` ended runs."""
        loop = asyncio.get_running_loop()
        execution.expiry = loop.call_later(
            self.limits.retain_seconds, self.forget, execution, "age"
        )
        self.ended_runs[execution.id] = execution
        while len(self.ended_runs) > self.limits.retain_runs:
            self.forget(next(iter(self.ended_runs.values())), "count")

    def forget(self, execution: Execution, why: str) -> None:
        """Drop a run and its events (a reader still on it finishes with what it holds)."""
        if self.executions.pop(execution.id, None) is None:
            return
        self.ended_runs.pop(execution.id, None)
        if execution.expiry is not None:
            execution.expiry.cancel()  # which held it until then
        if execution.key is not None and self.by_key.get(execution.key) is execution:
            del self.by_key[execution.key]
        self.resized(-execution.bytes)
        if not execution.followers:
            execution.entries.clear()
        metrics.RETAINED_EXECUTIONS.set(len(self.executions))
        metrics.EXPIRED_EXECUTIONS.labels(why).inc()


def fingerprint(context_id: str, code: str) -> str:
    """What an idempotent retry must ask for again: the same code in the same context."""
    return hashlib.sha256(f"{context_id}\0{code}".encode()).hexdigest()


class Execution:
    """One run: its events as encoded (`Numbered`, ids from 1), its readers and its state."""

    def __init__(
        self, store: ExecutionStore, context_id: str, code: str, key: str | None, detached: bool
    ) -> None:
        self.store = store
        self.id = uuid.uuid4().hex
        self.context_id = context_id
        self.key = key
        self.fingerprint = fingerprint(context_id, code) if key is not None else ""
        self.detached = detached
        self.stop = Stop()
        self.task: asyncio.Future[None] | None = None  # the producer, held so it is not lost
        self.entries: deque[Numbered] = deque()
        self.bytes = 0
        self.last_id = 0
        self.status = "running"
        self.started_at = now_iso()
        self.ended_at: str | None = None
        self.followers: set[Follower] = set()
        self._changed = asyncio.Event()
        self._progress: asyncio.Future[None] | None = None  # a producer waiting for readers
        self._grace: asyncio.TimerHandle | None = None
        self.expiry: asyncio.TimerHandle | None = None  # when its store forgets it

    def to_json(self) -> dict[str, Any]:
        return {
            "executionId": self.id,
            "contextId": self.context_id,
            "status": self.status,
            "events": self.last_id,
            "firstEventId": self.entries[0].id if self.entries else self.last_id + 1,
            "readers": len(self.followers),
            "detached": self.detached,
            "startedAt": self.started_at,
            "endedAt": self.ended_at,
        }

    # The producer's side.

    def append(self, event: dict[str, Any] | Encoded) -> None:
        """Keep the run's next event and wake its readers."""
        self.last_id += 1
        # Kept as a copy of its exact size: orjson's output holds on to its working buffer
        # (measured with orjson 3.13: a 1 MB event's bytes held 8 MB, a 130-byte one 4 KB).
        body = event.body if isinstance(event, Encoded) else memoryview(encode(event)).tobytes()
        entry = Numbered(self.last_id, body, ends_run(event))
        self.entries.append(entry)
        self.bytes += len(entry.body)
        self.store.resized(len(entry.body))
        if ends_run(event):
            self.status = status_of(event)
            self.ended_at = now_iso()
            self._cancel_grace()
            self.store.ended(self)
        self._changed.set()
        self._changed = asyncio.Event()

    async def room(self, until: float | None) -> None:
        """Within budget again: drop what every reader has passed, or else wait for the
        slowest reader to read on (up to `until`, a loop time: the run's deadline)."""
        loop = asyncio.get_running_loop()
        while not self._trim() and not self.stop.is_set():
            timeout = None if until is None else until - loop.time()
            if timeout is not None and timeout <= 0:
                return
            progress: asyncio.Future[Any] = loop.create_future()
            self._progress = progress
            stopping = asyncio.ensure_future(self.stop.wait())  # a run stopped goes on to end
            try:
                await asyncio.wait(
                    {progress, stopping}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
                )
            finally:
                stopping.cancel()
                self._progress = None

    def _trim(self) -> bool:
        """Drop the oldest events no reader still needs while over a budget (never the final
        one); whether within budgets now."""
        self.store.make_room()
        passed = min((f.position for f in self.followers), default=self.last_id)
        while self.over_budget():
            if not self.entries or self.entries[0].final or self.entries[0].id > passed:
                return False
            head = self.entries.popleft()
            self.bytes -= len(head.body)
            self.store.resized(-len(head.body))
            metrics.DROPPED_EVENTS.inc()
        return True

    def ended(self) -> bool:
        return self.ended_at is not None

    def over_budget(self) -> bool:
        limits = self.store.limits
        return self.bytes > limits.retain_bytes_per_run or self.store.held > limits.retain_bytes

    # The readers' side.

    def follow(self, after: int = 0, kind: str = "") -> Follower:
        """A reader of the events after id `after`, attached now (so the run counts it even
        before it reads); `kind` names a reader that comes back (`resume`, `retry`)."""
        if kind:
            metrics.RESUMES.labels(kind).inc()
        return Follower(self, after, kind)

    def _attach(self, follower: Follower) -> None:
        self.followers.add(follower)
        self._cancel_grace()

    def _detach(self, follower: Follower) -> None:
        if follower not in self.followers:
            return
        self.followers.discard(follower)
        self._read_on()
        if self.followers or self.detached or self.ended():
            return
        grace = self.store.limits.reconnect_grace
        if grace > 0:
            self._grace = asyncio.get_running_loop().call_later(grace, self.stop.set)
        else:
            self.stop.set()

    def _read_on(self) -> None:
        """A reader moved on or left: a producer waiting for room may find some."""
        if self._progress is not None and not self._progress.done():
            self._progress.set_result(None)

    def _cancel_grace(self) -> None:
        if self._grace is not None:
            self._grace.cancel()
            self._grace = None


class Follower:
    """One reader of a run: what was kept after its id, then live events, to the final one.
    If the events it asks for were dropped, its first event says how many."""

    def __init__(self, execution: Execution, after: int, kind: str) -> None:
        self.execution = execution
        self.position = max(0, min(after, execution.last_id))
        self.replayed = execution.last_id  # ids up to here existed before it came
        self.kind = kind  # for metrics: how it came (`resume` or `retry`)
        execution._attach(self)

    def __aiter__(self) -> Follower:
        return self

    async def __anext__(self) -> Numbered:
        execution = self.execution
        while True:
            entries = execution.entries
            first = entries[0].id if entries else execution.last_id + 1
            if self.position + 1 < first:
                return self._lost(first - 1)
            index = self.position + 1 - first
            if index < len(entries):
                entry = entries[index]
                self.position = entry.id
                if entry.id <= self.replayed:
                    metrics.REPLAYED_EVENTS.labels(self.kind).inc()
                execution._read_on()
                return entry
            if execution.ended() or self not in execution.followers:
                raise StopAsyncIteration
            await execution._changed.wait()

    def _lost(self, last_lost: int) -> Numbered:
        """The event that stands for events no longer kept (it takes the last one's id)."""
        lost = last_lost - self.position
        self.position = last_lost
        notice = {
            "type": "events_lost",
            "count": lost,
            "message": f"{lost} events of this run are no longer kept "
            "(ExecutionManager.retain_bytes_per_run and retain_bytes)",
            "timestamp": round(time.time() * 1000, 3),
        }
        return Numbered(last_lost, encode(notice))

    async def aclose(self) -> None:
        """Leave the run (a run left by all its readers stops after the grace period)."""
        self.execution._detach(self)


def status_of(terminal: dict[str, Any]) -> str:
    """`completed`, `interrupted` (stopped by the server or its caller) or `error`."""
    if terminal["type"] == RUN_COMPLETE:
        return "completed"
    if terminal.get("reason") in _INTERRUPTED_REASONS:
        return "interrupted"
    if terminal.get("ename") == "KeyboardInterrupt":
        return "interrupted"
    return "error"


async def produce(
    execution: Execution, events: AsyncIterator[dict[str, Any] | Encoded], until: float | None
) -> None:
    """Drive a run into its `Execution` (the run's own task, so it outlives its readers);
    a run cut short by the server's stop still ends its readers' streams with an event."""
    try:
        async for event in events:
            execution.append(event)
            if execution.ended():
                break
            if execution.over_budget():
                await execution.room(until)
    finally:
        if not execution.ended():
            execution.append(server_error_event("InternalError", "The server stopped this run"))
        aclose = getattr(events, "aclose", None)
        if aclose is not None:
            await aclose()
