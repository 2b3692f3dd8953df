"""`sandbox.executions` (beyond E2B): code runs the server keeps, by their execution id: see
one's state, follow it again (after the last event seen), stop it. A run started with
`run_code(..., detach=True)` is found here."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Iterator
from typing import TYPE_CHECKING

from jupyter_interp_ext.protocol.events import ends_run

from . import calls
from .models import Execution, ExecutionInfo, StreamItem, run_item
from .streams import Place

if TYPE_CHECKING:
    from .sandbox import AsyncSandbox, Sandbox


def following(execution_id: str, after: int) -> Place:
    """Where a reader of run `execution_id` starts: after event `after`."""
    place = Place(
        calls.follow_execution(execution_id, after),
        ends_run,
        lambda last: calls.follow_execution(execution_id, last),
    )
    place.last_id = after
    return place


class Executions:
    """Code runs the server keeps, followed again or stopped by their id."""

    def __init__(self, sandbox: Sandbox) -> None:
        self._sandbox = sandbox

    def get(self, execution_id: str) -> ExecutionInfo:
        """A run's state: running, completed, error or interrupted; its events so far."""
        return self._sandbox._call(calls.get_execution(execution_id))

    def stream(self, execution_id: str, after: int = 0) -> Iterator[StreamItem]:
        """The run's outputs after event `after` (0: all kept), then live to its end, as
        `run_code_stream` gives them; a broken connection is picked up where it broke.
        Leaving early leaves the run running."""
        execution = Execution()
        return self._sandbox._fed(following(execution_id, after), lambda e: run_item(e, execution))

    def cancel(self, execution_id: str) -> ExecutionInfo:
        """Stop a run (interrupting its kernel, which keeps its state): its state after."""
        return self._sandbox._call(calls.cancel_execution(execution_id))


class AsyncExecutions:
    """`Executions` for asyncio."""

    def __init__(self, sandbox: AsyncSandbox) -> None:
        self._sandbox = sandbox

    async def get(self, execution_id: str) -> ExecutionInfo:
        """As `Executions.get`."""
        return await self._sandbox._call(calls.get_execution(execution_id))

    def stream(self, execution_id: str, after: int = 0) -> AsyncGenerator[StreamItem, None]:
        """As `Executions.stream` (close it, `contextlib.aclosing`, to leave early)."""
        execution = Execution()
        return self._sandbox._fed(following(execution_id, after), lambda e: run_item(e, execution))

    async def cancel(self, execution_id: str) -> ExecutionInfo:
        """As `Executions.cancel`."""
        return await self._sandbox._call(calls.cancel_execution(execution_id))
