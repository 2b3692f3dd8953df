"""Running code in a context and streaming what the kernel produces as Sandbox events."""

from __future__ import annotations

import asyncio
import contextlib
import queue
import time
from collections.abc import AsyncIterator, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import orjson
from traitlets import Bool, Dict, Float, Instance, Int
from traitlets.config import LoggingConfigurable

from jupyter_interp_ext import metrics
from jupyter_interp_ext.notebooks.cells import RunRecord
from jupyter_interp_ext.protocol.errors import validation_error
from jupyter_interp_ext.protocol.events import RUN_COMPLETE, ends_run
from jupyter_interp_ext.protocol.limits import truncation_notice, utf8_prefix, utf8_size
from jupyter_interp_ext.protocol.sse import Encoded
from jupyter_interp_ext.protocol.timers import in_own_context

from .contexts import CodeContext, CodeContextRegistry
from .executions import Execution, ExecutionStore, Stop, produce
from .kernel_client import reply_to, run_silently, wait_for_message
from .languages import default_drain_seconds
from .outputs import (
    display_update_event,
    error_from,
    event_size,
    result_event,
    server_error_event,
    stream_event,
)
from .raw_text import RawText

# What a run yields: events, or output text already encoded (spliced from the kernel's bytes).
Event = dict[str, Any] | Encoded

LIVENESS_INTERVAL = 1.0
# Output text longer than this is sent as several events, each encoded on its own.
EVENT_CHARS = 1024 * 1024


@dataclass(frozen=True)
class Deadline:
    """When a run must have ended (a loop time), and the limit it was set from: a run stopped
    at its deadline says the limit the caller asked for, not the time it measured."""

    at: float
    seconds: float

    def left(self, loop: asyncio.AbstractEventLoop) -> float:
        """Seconds until the deadline (never below zero)."""
        return max(0.0, self.at - loop.time())


class ExecutionManager(LoggingConfigurable):
    """One run at a time per context; each run ends in exactly one terminal event."""

    default_timeout = Float(
        300.0, help="Seconds a run may take when the request gives no timeout_ms (0: no limit)."
    ).tag(config=True)

    interrupt_grace = Float(
        3.0, help="Seconds a kernel has to stop after an interrupt before it is restarted."
    ).tag(config=True)

    max_output_bytes = Int(
        128 * 1024 * 1024,
        help="Output bytes (stdout, stderr and results together) one run may stream; the rest "
        "is dropped and a final stderr notice says how much.",
    ).tag(config=True)

    drain_seconds = Dict(
        default_drain_seconds(),
        help="Per language: how long to keep reading output after the run is idle and "
        "replied (Deno publishes results just after `idle`).",
    ).tag(config=True)

    interrupt_on_disconnect = Bool(
        True,
        help="Interrupt a run left without a reader for reconnect_grace seconds, so it does not "
        "hold the context (False: as if every run were detached).",
    ).tag(config=True)

    reconnect_grace = Float(
        30.0,
        help="Seconds a run whose last reader left keeps going, waiting for one to come back "
        "(GET /api/execute/code/{id}/stream), before it is interrupted (0: at once).",
    ).tag(config=True)

    retain_seconds = Float(
        600.0, help="Seconds an ended run's events and status are kept for readers."
    ).tag(config=True)

    retain_runs = Int(1000, help="Ended runs kept at most (the oldest are forgotten first).").tag(
        config=True
    )

    retain_bytes_per_run = Int(
        64 * 1024 * 1024,
        help="Bytes of one run's events kept for readers that come back; past it the oldest "
        "events every reader has had are dropped (a live reader waits for none of them).",
    ).tag(config=True)

    retain_bytes = Int(
        256 * 1024 * 1024,
        help="Bytes of events kept across all runs; past it ended runs are forgotten, the "
        "oldest first, then running runs drop events as past retain_bytes_per_run.",
    ).tag(config=True)

    contexts = Instance(CodeContextRegistry)

    @property
    def executions(self) -> ExecutionStore:
        """The runs kept for readers (made on first use, from the settings above)."""
        if self._executions is None:
            self._executions = ExecutionStore(self)
        return self._executions

    _executions: ExecutionStore | None = None

    def start(
        self,
        context: CodeContext,
        code: str,
        deadline: Deadline | None,
        env: dict[str, str],
        *,
        key: str | None = None,
        detach: bool = False,
    ) -> Execution:
        """Start a run in a task of its own, kept as an `Execution` for readers to follow."""
        detached = detach or not self.interrupt_on_disconnect
        execution = Execution(self.executions, context.id, code, key, detached)
        events = self.run(context, code, deadline, execution.stop, env)
        until = deadline.at if deadline is not None else None
        # In a context of its own: the run outlives its request, which Jupyter keeps in a
        # context variable, and a task holds its context for as long as the task is held
        # (here, as long as the run is kept): every kept run held its handler, request and
        # connection (ExecutionManager.retain_seconds), all for the collector to walk.
        execution.task = in_own_context(asyncio.ensure_future, produce(execution, events, until))
        self.executions.add(execution)
        return execution

    def deadline(self, timeout: float | None) -> Deadline | None:
        """The loop time by which a run asked for now must end (None: no limit; a `timeout` of
        0 asks for none). It covers the run's whole life: waiting for the context, the prelude
        and the code."""
        limit = timeout if timeout is not None else self.default_timeout
        return Deadline(asyncio.get_running_loop().time() + limit, limit) if limit else None

    def run(
        self,
        context: CodeContext,
        code: str,
        deadline: Deadline | None,
        stop: Stop | None = None,
        env: dict[str, str] | None = None,
    ) -> AsyncIterator[Event]:
        """Yield events for one run of `code`; runs on one context never interleave, and each
        ends in exactly one terminal event, whatever goes wrong inside.

        Setting `stop` (no reader came back, or a caller cancelled) stops the run like the
        deadline does; `env` is set in the kernel for this run only (what was there before is
        put back after it).
        """
        run = self._run(context, code, deadline, stop or Stop(), env or {})
        return self._guarded(run, context)

    def check_run_env(self, context: CodeContext, env: dict[str, str]) -> None:
        """400 if the context's language cannot take variables for one run."""
        if env and context.runs.run_env is None:
            raise validation_error(
                "env_vars", f"{context.language} contexts cannot take variables for one run"
            )

    async def _run(
        self,
        context: CodeContext,
        code: str,
        deadline: Deadline | None,
        stop: Stop,
        env: dict[str, str],
    ) -> AsyncIterator[Event]:
        started = time.monotonic()
        if not await _acquire(context.lock, deadline, stop):
            ename, why = (stop.ename, stop.why) if stop.is_set() else ("TimeoutError", "")
            event = server_error_event(
                ename,
                f"{why or 'Execution timed out'} while waiting for the context's previous run "
                "to end",
            )
            self._account(context, event["reason"], 0, 0)
            yield event
            return
        restore = ""
        try:
            if context.needs_prelude or self.contexts.replaced(context):
                await self.contexts.run_prelude(context)
            if env and context.runs.run_env is not None:
                apply, restore = context.runs.run_env(env)
                await run_silently(context.client, apply, self.contexts.ready_timeout)
            notebooks = self.contexts.notebooks
            record = notebooks.record_run(context.id, code) if notebooks is not None else None
            run = _Run(self, context, deadline, stop, record)
            outcome = "incomplete"
            try:
                async for item in run.events(code):
                    if ends_run(item):
                        outcome = _outcome(item)
                        if record is not None:
                            record.end(item)
                    yield item
            finally:
                if record is not None:
                    record.end(None)
                self._account(context, outcome, time.monotonic() - started, run.bytes_sent)
        finally:
            if restore and not context.closed and not self.contexts.replaced(context):
                await self._put_back(context, restore)
            context.lock.release()

    async def _put_back(self, context: CodeContext, restore: str) -> None:
        """Restore the variables a run was given (a kernel restarted meanwhile has its own
        environment again, so failing here loses nothing)."""
        try:
            await run_silently(context.client, restore, self.interrupt_grace)
        except Exception as exc:
            self.log.info("Context %s: run variables not restored (%s)", context.id, exc)

    async def _guarded(
        self, events: AsyncIterator[Event], context: CodeContext
    ) -> AsyncIterator[Event]:
        """`events`, ended by an `error` event if they fail before their terminal one."""
        ended = False
        try:
            async with contextlib.aclosing(events):  # type: ignore[type-var]
                async for event in events:
                    ended = ends_run(event)
                    yield event
        except Exception as exc:
            self.log.exception("Run on context %s failed", context.id)
            if not ended:
                yield server_error_event("InternalError", str(exc))

    def _account(self, context: CodeContext, outcome: str, seconds: float, sent: int) -> None:
        """One metrics update and one structured log line per run."""
        metrics.EXECUTIONS.labels(context.language, outcome).inc()
        metrics.EXECUTION_SECONDS.labels(context.language).observe(seconds)
        metrics.OUTPUT_BYTES.labels("code").inc(sent)
        if outcome == "timeout":
            metrics.TIMEOUTS.labels("code").inc()
        elif outcome == "kernel_lost":
            metrics.KERNEL_DEATHS.inc()
        self.log.info(
            "execution context=%s language=%s outcome=%s duration_ms=%.1f bytes_out=%d",
            context.id,
            context.language,
            outcome,
            seconds * 1000,
            sent,
        )


class _Run:
    """The state of one execution: output accounting, the deadline, the terminal event."""

    def __init__(
        self,
        manager: ExecutionManager,
        context: CodeContext,
        deadline: Deadline | None,
        stop: Stop,
        record: RunRecord | None = None,
    ):
        self.manager = manager
        self.record = record  # the run's cell in the context's notebook
        self.stop = stop
        self.context = context
        self.deadline = deadline
        self.loop = asyncio.get_running_loop()
        self.bytes_sent = 0
        self.bytes_dropped = 0
        self.error: dict[str, Any] | None = None
        self.restarts_at_start = context.restarts
        self.restart_requests_at_start = context.restarts_requested

    async def events(self, code: str) -> AsyncIterator[Event]:
        client = self.context.client
        msg_id = client.execute(code, store_history=True, allow_stdin=False, stop_on_error=False)
        reply = asyncio.ensure_future(reply_to(client, msg_id))
        deadline = self.deadline
        try:
            idle = False
            while not (idle and reply.done()):
                msg = await self._next_message(deadline, idle, reply)
                if self.stop.is_set():
                    yield await self._stop(msg_id, reply, idle, self.stop.ename, self.stop.why)
                    return
                if msg is None:
                    if idle and reply.done():
                        break
                    if deadline is not None and self.loop.time() >= deadline.at:
                        limit_ms = round(deadline.seconds * 1000)
                        yield await self._stop(
                            msg_id,
                            reply,
                            idle,
                            "TimeoutError",
                            f"Execution timed out after {limit_ms} ms",
                        )
                        return
                    if not await self._kernel_intact():
                        yield self._kernel_died()
                        return
                    continue
                if self._restart_requested():  # (not the interrupt Jupyter sends on the way)
                    yield self._kernel_died()
                    return
                if msg["parent_header"].get("msg_id") != msg_id:
                    continue
                if msg["msg_type"] == "status":
                    idle = idle or msg["content"].get("execution_state") == "idle"
                    continue
                for event in self._translate(msg):
                    yield event
            async for event in self._drain(msg_id):
                yield event
            if reply.cancelled() or self._restart_requested():  # (the kernel went under us)
                yield self._kernel_died()
                return
            for event in self._finish(reply.result()["content"]):
                yield event
        finally:
            reply.cancel()

    async def _next_message(
        self, deadline: Deadline | None, idle: bool, reply: asyncio.Future
    ) -> dict[str, Any] | None:
        """The next iopub message, or None when it is time to check the deadline or the kernel.

        Once the kernel is idle only the shell reply is missing: wait for that instead of iopub
        (late output, which Deno sends, is read by the drain that follows).
        """
        wait = LIVENESS_INTERVAL
        if deadline is not None:
            wait = min(wait, deadline.left(self.loop))
        if idle:
            await asyncio.wait({reply}, timeout=wait)
            return None
        if self.context.closed:  # its channels are stopped: the liveness check says why
            return None
        try:
            # (from the channel: the client's own method wraps each call in `ensure_async`)
            return await self.context.client.iopub_channel.get_msg(timeout=wait)
        except queue.Empty:
            return None
        except asyncio.CancelledError:
            if _being_cancelled():
                raise
            return None  # the channel was closed under us: the liveness check says why

    def _translate(self, msg: dict[str, Any]) -> Iterable[Event]:
        """The events one iopub message becomes, within the run's output budget."""
        kind = msg["msg_type"]
        content = msg["content"]
        if kind == "stream" and isinstance(content["text"], RawText):
            return self._spliced_text(stream_event(msg), content["text"])  # it tells the record
        if self.record is not None:
            self.record.add(msg)
        if kind == "stream":
            return self._capped_text(stream_event(msg))
        event: dict[str, Any] | None = None
        if kind in ("execute_result", "display_data"):
            event = result_event(content, is_main=kind == "execute_result")
        elif kind == "update_display_data":
            event = display_update_event(content)
        elif kind == "clear_output":
            return [{"type": "clear_output", "wait": bool(content.get("wait"))}]
        elif kind == "error":
            self.error = error_from(content)
        if event is None:
            return []
        size = event_size(event)
        if self.bytes_sent + size > self.manager.max_output_bytes:
            self.bytes_dropped += size  # a rich result is delivered whole or not at all
            return []
        self.bytes_sent += size
        return [event]

    def _capped_text(self, event: dict[str, Any]) -> Iterable[dict[str, Any]]:
        """Output text: the part that fits the budget, in events of at most `EVENT_CHARS`
        characters (no single huge event to encode), each cut only when it is sent, so a huge
        output is never held twice; the rest is counted for the notice."""
        text = event["text"]
        room = max(0, self.manager.max_output_bytes - self.bytes_sent)
        size = utf8_size(text)
        if size > room:
            text = utf8_prefix(text, room)
            kept = utf8_size(text)
            self.bytes_dropped += size - kept
            size = kept
        self.bytes_sent += size
        if len(text) <= EVENT_CHARS:
            return [event if text is event["text"] else {**event, "text": text}] if text else []
        return (
            {**event, "text": text[start : start + EVENT_CHARS]}
            for start in range(0, len(text), EVENT_CHARS)
        )

    def _spliced_text(self, event: dict[str, Any], text: RawText) -> Iterator[Event]:
        """`_capped_text` for text still as the kernel encoded it: the same budget and the
        same events, each made by splicing a piece of the kernel's bytes between the event's
        other fields, one piece at a time as they are sent."""
        head = b'{"type":"%s","text":"' % event["type"].encode()
        tail = b'","timestamp":%s}' % orjson.dumps(event["timestamp"])
        size, counted = 0, True  # the text's UTF-8 size, for the notebook (if all counted)
        try:
            for piece, chars in text.pieces(EVENT_CHARS):
                if chars is None:  # from a \u escape on, decoded as before
                    counted = False
                    yield from self._capped_text({**event, "text": piece.text()})
                    return
                room = max(0, self.manager.max_output_bytes - self.bytes_sent)
                if chars > room:
                    kept, _ = piece.prefix(room)
                    rest = RawText(text.data, kept.end, text.end).utf8_size()
                    self.bytes_dropped += rest
                    self.bytes_sent += room
                    size += room + rest
                    if room:
                        yield Encoded(kept.spliced(head, tail))
                    return
                self.bytes_sent += chars
                size += chars
                yield Encoded(piece.spliced(head, tail))
        except GeneratorExit:  # the run stopped midway: the notebook measures the text
            counted = False
            raise
        finally:
            if self.record is not None:
                self.record.add_text(event["type"], text, size if counted else None)

    async def _drain(self, msg_id: str) -> AsyncIterator[Event]:
        """Output a kernel publishes just after `idle` (Deno does) still belongs to the run."""
        grace = self.manager.drain_seconds.get(self.context.language, 0)
        if not grace:
            return
        end = self.loop.time() + grace
        while (remaining := end - self.loop.time()) > 0:
            try:
                msg = await self.context.client.get_iopub_msg(timeout=remaining)
            except queue.Empty:
                return
            if msg["parent_header"].get("msg_id") == msg_id:
                for event in self._translate(msg):
                    yield event

    def _finish(self, reply: dict[str, Any]) -> list[dict[str, Any]]:
        events: list[dict[str, Any]] = []
        if self.bytes_dropped:
            events.append(self._truncation_notice())
        if reply.get("status") == "ok" and self.error is None:
            events.append({"type": RUN_COMPLETE, "execution_count": reply.get("execution_count")})
        elif self.error is not None:
            events.append(self.error)
        elif reply.get("status") == "error":
            events.append(error_from(reply))
        else:
            events.append(server_error_event("ExecutionAborted", "The kernel aborted this run"))
        return events

    def _truncation_notice(self) -> dict[str, Any]:
        return {
            "type": "stderr",
            "text": f"\n{truncation_notice(self.bytes_dropped, self.manager.max_output_bytes)}\n",
            "timestamp": round(time.time() * 1000, 3),
        }

    async def _stop(
        self, msg_id: str, reply: asyncio.Future, idle: bool, ename: str, why: str
    ) -> dict[str, Any]:
        """Interrupt; if the kernel does not come back, restart it. The context stays usable."""
        self.manager.log.warning("Stopping a run on context %s: %s", self.context.id, why)
        try:
            await self.manager.contexts.interrupt(self.context)
        except Exception:
            # jupyter_client refuses to interrupt a kernel being restarted or shut down.
            if not await self._kernel_intact():
                return self._kernel_died()
            raise
        try:
            await asyncio.wait_for(asyncio.shield(reply), self.manager.interrupt_grace)
            if not idle:
                await self._settle(msg_id)
            how = "the kernel was interrupted; its state is kept"
        except asyncio.TimeoutError:
            await self.manager.contexts.restart(self.context)
            how = "the kernel did not stop when interrupted and was restarted; its state was lost"
        return server_error_event(ename, f"{why}: {how}")

    async def _settle(self, msg_id: str) -> None:
        """Consume the interrupted run's remaining messages so the next run starts clean."""
        with contextlib.suppress(asyncio.TimeoutError):
            while True:
                msg = await asyncio.wait_for(
                    wait_for_message(self.context.client.get_iopub_msg), 1.0
                )
                if (
                    msg["parent_header"].get("msg_id") == msg_id
                    and msg["msg_type"] == "status"
                    and msg["content"].get("execution_state") == "idle"
                ):
                    return

    async def _kernel_intact(self) -> bool:
        """False once the kernel died, was restarted (here or elsewhere) or was shut down."""
        contexts = self.manager.contexts
        if self.context.closed:
            return False
        if self.context.restarts != self.restarts_at_start or contexts.replaced(self.context):
            return False
        if self._restart_requested():
            return False
        return await contexts.is_alive(self.context)

    def _restart_requested(self) -> bool:
        """Whether the context's kernel was restarted through our route since the run began:
        Jupyter interrupts a kernel before it restarts it, and the run's KeyboardInterrupt
        is that restart's, not the caller's."""
        return self.context.restarts_requested != self.restart_requests_at_start

    def _kernel_died(self) -> dict[str, Any]:
        """The terminal event for a run whose kernel went away under it."""
        contexts = self.manager.contexts
        if self.context.closed or self.context.id not in contexts.kernel_manager:
            ename, why = "KernelShutDown", "the context's kernel was shut down"
        elif self.context.restarts != self.restarts_at_start:
            ename, why = "KernelDied", "the context's kernel died and was restarted"
        elif self._restart_requested() or contexts.replaced(self.context):
            ename, why = "KernelRestarted", "the context's kernel was restarted"
        else:
            ename, why = "KernelDied", "the context's kernel died"
        self.manager.log.warning("Run on context %s ended: %s", self.context.id, why)
        return server_error_event(ename, f"{why} while running this code; its variables are lost")


async def _acquire(lock: asyncio.Lock, deadline: Deadline | None, stop: asyncio.Event) -> bool:
    """Take the context's lock unless the deadline passes or the run is stopped first."""
    loop = asyncio.get_running_loop()
    taking = asyncio.ensure_future(lock.acquire())
    leaving = asyncio.ensure_future(stop.wait())
    timeout = None if deadline is None else deadline.left(loop)
    try:
        await asyncio.wait({taking, leaving}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    finally:
        leaving.cancel()
    if taking.done() and not taking.cancelled():
        return True
    taking.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await taking
    if taking.done() and not taking.cancelled():  # it was granted while being cancelled
        lock.release()
    return False


def _being_cancelled() -> bool:
    """Whether the current task itself is being cancelled (not just something it awaited)."""
    task = asyncio.current_task()
    cancelling = getattr(task, "cancelling", None)
    return task is not None and (cancelling is None or cancelling() > 0)


def _outcome(terminal: dict[str, Any]) -> str:
    """A run's outcome, for metrics and logs, from its terminal event."""
    if terminal["type"] == RUN_COMPLETE:
        return "ok"
    reason = terminal.get("reason")
    return reason if reason in ("timeout", "disconnected", "cancelled", "kernel_lost") else "error"
