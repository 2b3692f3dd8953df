"""Translating Jupyter iopub messages into the Sandbox API's execution events."""

from __future__ import annotations

import json
import re
import time
from typing import Any

from jupyter_interp_ext.protocol.events import RUN_ERROR
from jupyter_interp_ext.protocol.limits import utf8_size
from jupyter_interp_ext.protocol.mimes import RESULT_KEYS

from .kernel_session import header_time

_ANSI = re.compile(r"\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)|[@-Z\\-_])")


def strip_ansi(text: str) -> str:
    """Remove terminal colour and cursor codes (tracebacks arrive coloured)."""
    return _ANSI.sub("", text)


def message_time_ms(msg: dict[str, Any]) -> float:
    """When the kernel produced a message, in ms since the epoch (now, if it did not say)."""
    date = header_time(msg.get("header", {}).get("date"))
    if date is not None:
        return round(date.timestamp() * 1000, 3)
    return round(time.time() * 1000, 3)


def stream_event(msg: dict[str, Any]) -> dict[str, Any]:
    """`stream` → `stdout`/`stderr` with `text` and a numeric `timestamp`."""
    content = msg["content"]
    kind = "stderr" if content.get("name") == "stderr" else "stdout"
    return {"type": kind, "text": content.get("text", ""), "timestamp": message_time_ms(msg)}


def result_event(content: dict[str, Any], *, is_main: bool) -> dict[str, Any] | None:
    """One `result` event carrying every format of one output (None for an empty bundle)."""
    data: dict[str, Any] = content.get("data") or {}
    if not data:
        return None
    event: dict[str, Any] = {"type": "result"}
    unmapped: dict[str, Any] = {}
    for mime, value in data.items():
        key = RESULT_KEYS.get(mime)
        if key is None:
            unmapped[mime] = value
        elif key == "json":
            event[key] = _parse_json(value) if isinstance(value, str) else value
        elif isinstance(value, list):  # nbformat allows multi-line strings as lists
            event[key] = "".join(map(str, value))
        else:
            event[key] = value
    if unmapped:
        event["data"] = unmapped
    event["metadata"] = content.get("metadata") or {}
    event["isMainResult"] = is_main
    return event


def display_update_event(content: dict[str, Any]) -> dict[str, Any] | None:
    """`update_display_data` → its own event type (ignored by the official client)."""
    event = result_event(content, is_main=False)
    if event is None:
        return None
    event["type"] = "update_display_data"
    event["displayId"] = (content.get("transient") or {}).get("display_id")
    return event


def error_event(ename: str, evalue: str, traceback: list[str]) -> dict[str, Any]:
    """The terminal `error` event, with a plain-text traceback split into lines."""
    lines = [line for entry in traceback for line in strip_ansi(entry).split("\n")]
    return {
        "type": RUN_ERROR,
        "ename": ename,
        "evalue": strip_ansi(evalue),
        "traceback": lines,
    }


# The errors a run ends with when the server, not the run's code, ended it, and why: the
# `reason` of their event, so that a client tells a timeout from code that raised TimeoutError.
SERVER_ENDINGS: dict[str, str] = {
    "TimeoutError": "timeout",
    "ClientDisconnected": "disconnected",
    "ExecutionCancelled": "cancelled",
    "KernelDied": "kernel_lost",
    "KernelRestarted": "kernel_lost",
    "KernelShutDown": "kernel_lost",
    "ExecutionAborted": "aborted",
    "InternalError": "internal",
}


def server_error_event(ename: str, evalue: str) -> dict[str, Any]:
    """The terminal `error` event of a run the server ended (`ename` from SERVER_ENDINGS)."""
    return {**error_event(ename, evalue, []), "reason": SERVER_ENDINGS[ename]}


def error_from(content: dict[str, Any]) -> dict[str, Any]:
    """The `error` event for an iopub `error` message or an error `execute_reply`."""
    return error_event(
        content.get("ename", "Error"), content.get("evalue", ""), content.get("traceback", [])
    )


def _parse_json(value: str) -> Any:
    try:
        return json.loads(value)
    except json.JSONDecodeError:
        return value


def event_size(event: dict[str, Any]) -> int:
    """Bytes of user-visible output an event carries, for the per-run output cap."""
    if event["type"] in ("stdout", "stderr"):
        return utf8_size(event["text"])
    return sum(
        len(v) if isinstance(v, str) else len(json.dumps(v, default=str))
        for k, v in event.items()
        if k in RESULT_KEYS.values() or k == "data"
    )
