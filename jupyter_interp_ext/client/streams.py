"""Streams that outlive their connection: the server numbers the events of a code run and of a
process's output, so a stream whose connection broke (a proxy's idle limit, a laptop that
slept, a server restarted behind a Hub...) is picked up after the last id seen, with nothing
lost and nothing twice. Both clients follow a `Place`; only the waiting differs."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx

from jupyter_interp_ext.protocol.events import PROCESS_EXIT

from . import calls
from .connection import RETRY_PAUSE
from .errors import TransportError

# Attempts in a row, without a new event between them, before a broken stream is given up.
RESUME_ATTEMPTS = 5


class Place:
    """Where a resumable stream is: the call to send next, the last event id seen, and (for a
    code run) the run's id, learnt from the first answer's `X-Execution-Id`."""

    def __init__(
        self,
        call: calls.Call[Any],
        final: Callable[[dict[str, Any]], bool],
        resume: Callable[[int], calls.Call[Any]] | None = None,
        *,
        cancels: bool = False,
    ) -> None:
        self.call = call
        self.final = final  # whether an event is the stream's last
        self.resume = resume  # the call that picks the stream up after an id
        self.cancels = cancels  # leaving before the end stops the run it started
        self.execution_id: str | None = None
        self.last_id = 0
        self.attempts = 0
        self.done = False

    def opened(self, response: httpx.Response) -> None:
        """The stream's answer: a run's id says how to follow it again."""
        execution_id = response.headers.get("X-Execution-Id")
        if execution_id and self.resume is None:
            self.resume = lambda after: calls.follow_execution(execution_id, after)
            self.execution_id = execution_id

    def saw(self, event_id: str, event: dict[str, Any]) -> None:
        """An event arrived (with its SSE id, "" if it has none)."""
        if event_id.isdigit():
            self.last_id = int(event_id)
        self.attempts = 0
        self.done = self.final(event)

    def retry(self, error: TransportError) -> float:
        """The pause before the call that picks the stream up again (now `call`), or raise
        `error` when it cannot be: too many attempts, or a request that may not be sent
        twice and whose stream has no id to resume from."""
        self.attempts += 1
        if self.attempts > RESUME_ATTEMPTS:
            raise error
        if self.resume is not None and (self.last_id or self.execution_id):
            self.call = self.resume(self.last_id)
        elif not self.call.safe:
            raise error
        return float(RETRY_PAUSE * 2 ** (self.attempts - 1))

    def cut_short(self) -> TransportError:
        """What a stream that ended without its last event is: a broken connection."""
        return TransportError(f"the stream ended after event {self.last_id}, before its end")

    def cancellation(self) -> calls.Call[Any] | None:
        """The call that stops the run, for a caller that left before its end."""
        if self.cancels and not self.done and self.execution_id is not None:
            return calls.cancel_execution(self.execution_id)
        return None


def following_process(process_id: str) -> Place:
    """A background process's output from its start, resumed after its last id if the
    connection breaks."""
    return Place(
        calls.process_stream(process_id),
        lambda event: event.get("type") == PROCESS_EXIT,
        lambda last: calls.process_stream(process_id, last),
    )
