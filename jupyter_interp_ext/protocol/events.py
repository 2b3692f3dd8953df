"""The names of the events that end each stream, in one place: what produces a stream and what
watches for its end (metrics, the error fallback of a failed run) must agree on them."""

from __future__ import annotations

from typing import Any, TypeGuard

RUN_COMPLETE = "execution_complete"  # a code run ended normally, with its execution count
RUN_ERROR = "error"  # a code run ended with an exception (or was stopped)
COMMAND_COMPLETE = "complete"  # a streamed command exited
PROCESS_EXIT = "exit"  # a followed background process exited
READ_COMPLETE = "complete"  # a streamed file was sent whole
READ_ERROR = "error"  # a streamed file could not be read to the end


def ends_run(event: object) -> TypeGuard[dict[str, Any]]:
    """Whether a code-run event is the last of its run (one already encoded never is: only
    output text is)."""
    return isinstance(event, dict) and event["type"] in (RUN_COMPLETE, RUN_ERROR)
