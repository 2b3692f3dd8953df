"""MCP's tasks extension (`io.modelcontextprotocol/tasks`: `tasks/get`, `tasks/update`,
`tasks/cancel`) on durable runs: a task is a code run the client stopped waiting for, its id
the run's id, its result read from the run's kept events. A task lasts as long as its run is
kept (`ExecutionManager.retain_seconds` after it ends)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import orjson

from jupyter_interp_ext.interpreter.executions import Execution, ExecutionStore
from jupyter_interp_ext.protocol.errors import ProtocolError

from .content import run_result

TASKS_EXTENSION = "io.modelcontextprotocol/tasks"
# How often a client is asked to poll a task.
POLL_INTERVAL_MS = 1000


class Tasks:
    """The runs handed out as tasks (by id); forgotten with their runs."""

    def __init__(self, store: ExecutionStore, retain_seconds: float) -> None:
        self.store = store
        self.retain_seconds = retain_seconds
        self.ids: set[str] = set()

    def create(self, execution: Execution) -> dict[str, Any]:
        """Hand `execution` out as a task: it runs on with no reader (as a detached run)
        and is answered as `CreateTaskResult`."""
        self.ids.intersection_update(self.store.executions)  # runs forgotten since
        execution.detached = True
        self.ids.add(execution.id)
        return {"resultType": "task", **self._task(execution)}

    def find(self, task_id: str) -> Execution:
        """The task's run; an unknown or expired task is the spec's invalid-params error."""
        execution = self.store.executions.get(task_id) if task_id in self.ids else None
        if execution is None:
            raise ProtocolError(
                "TASK_NOT_FOUND",
                f"Failed to retrieve task: task {task_id} not found (unknown, or expired: "
                "ExecutionManager.retain_seconds)",
                {"taskId": task_id},
                status=404,
            )
        return execution

    async def detailed(self, execution: Execution) -> dict[str, Any]:
        """`tasks/get`'s answer: the task, with the tool's result once the run has ended."""
        task = self._task(execution)
        if task["status"] == "completed":
            task["result"] = run_result(
                execution.id, execution.context_id, await _events(execution)
            )
        return task

    def _task(self, execution: Execution) -> dict[str, Any]:
        status = _status(execution)
        task: dict[str, Any] = {
            "taskId": execution.id,
            "status": status,
            "statusMessage": f"{execution.last_id} events so far"
            if status == "working"
            else f"the run {execution.status}",
            "createdAt": execution.started_at,
            "lastUpdatedAt": execution.ended_at or execution.started_at,
            "ttlMs": self._ttl_ms(execution),
            "pollIntervalMs": POLL_INTERVAL_MS,
        }
        return task

    def _ttl_ms(self, execution: Execution) -> int | None:
        """Kept while it runs (null: no limit yet), then `retain_seconds` past its end."""
        if execution.ended_at is None:
            return None
        ran = datetime.fromisoformat(execution.ended_at) - datetime.fromisoformat(
            execution.started_at
        )
        return round((ran.total_seconds() + self.retain_seconds) * 1000)


# A run's status → its task's: a run whose code raised, or that was stopped at its time
# limit, is a completed task whose result is a tool error, as the extension says; a run a
# caller cancelled is a cancelled task.
_STATUS = {"running": "working", "completed": "completed", "error": "completed"}


def _status(execution: Execution) -> str:
    if execution.status == "interrupted" and execution.stop.ename == "ExecutionCancelled":
        return "cancelled"
    return _STATUS.get(execution.status, "completed")


async def _events(execution: Execution) -> list[dict[str, Any]]:
    """Every event kept of an ended run (a notice first if some were dropped)."""
    follower = execution.follow()
    try:
        return [orjson.loads(entry.body) async for entry in follower]
    finally:
        await follower.aclose()
