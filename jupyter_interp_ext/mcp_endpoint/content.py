"""What a tool answers, as MCP's `CallToolResult` on the wire: text an agent reads, images as
image blocks, and the whole run as structured content for a program."""

from __future__ import annotations

import json
from typing import Any

from jupyter_interp_ext.protocol.events import RUN_ERROR

# A finished call's `resultType` (2026-07-28; the SDK drops it for earlier revisions). A call
# that became a task answers "task" instead (tasks.py).
COMPLETE = "complete"
# Result formats sent as image blocks (the types MCP clients show to models).
IMAGE_FORMATS = {"png": "image/png", "jpeg": "image/jpeg"}
# Formats shown as text, in order of preference, when a result has no image.
TEXT_FORMATS = ("text", "markdown", "latex")


def answer(
    content: list[dict[str, Any]],
    structured: dict[str, Any] | None = None,
    *,
    is_error: bool = False,
) -> dict[str, Any]:
    """A tool's answer: its content blocks, and `structured` for programs when given."""
    reply: dict[str, Any] = {"resultType": COMPLETE, "content": content, "isError": is_error}
    if structured is not None:
        reply["structuredContent"] = structured
    return reply


def result(
    text: str, structured: dict[str, Any] | None = None, *, is_error: bool = False
) -> dict[str, Any]:
    """A tool's answer as one text block, and `structured` for programs when given."""
    return answer([{"type": "text", "text": text}], structured, is_error=is_error)


def failure(code: str, message: str) -> dict[str, Any]:
    """A tool that could not do what it was asked: a tool error the model can read and act
    on (not a protocol error), with the API's error code."""
    return result(f"{code}: {message}", {"code": code, "message": message}, is_error=True)


def json_result(payload: dict[str, Any], *, is_error: bool = False) -> dict[str, Any]:
    """`payload` as structured content and as its JSON text (for clients that read text only)."""
    return result(json.dumps(payload, indent=1, default=str), payload, is_error=is_error)


def run_result(execution_id: str, context_id: str, events: list[dict[str, Any]]) -> dict[str, Any]:
    """A code run's answer: stdout, stderr, each result's text or image, and the error (the
    run's failure is a tool error); structured content keeps every event's data."""
    stdout = "".join(e["text"] for e in events if e["type"] == "stdout")
    stderr = "".join(e["text"] for e in events if e["type"] == "stderr")
    results = [_without_type(e) for e in events if e["type"] == "result"]
    notices = [e["message"] for e in events if e["type"] == "events_lost"]
    error = next((_without_type(e) for e in events if e["type"] == RUN_ERROR), None)
    complete = next((e for e in events if e["type"] == "execution_complete"), None)

    content: list[dict[str, Any]] = []
    texts = [*notices]
    if stdout:
        texts.append(stdout)
    if stderr:
        texts.append(f"[stderr]\n{stderr}")
    content.extend({"type": "text", "text": t} for t in texts)
    for item in results:
        content.extend(_result_blocks(item))
    if error is not None:
        lines = error.get("traceback") or [f"{error['ename']}: {error['evalue']}"]
        content.append({"type": "text", "text": "\n".join(lines)})
    if not content:
        content.append({"type": "text", "text": "(no output)"})
    structured = {
        "executionId": execution_id,
        "contextId": context_id,
        "stdout": stdout,
        "stderr": stderr,
        "results": results,
        "error": error,
        "executionCount": complete.get("execution_count") if complete else None,
    }
    return answer(content, structured, is_error=error is not None)


def _result_blocks(item: dict[str, Any]) -> list[dict[str, Any]]:
    """One result as blocks: its images, else its best text form."""
    images = [
        {"type": "image", "data": item[name], "mimeType": mime}
        for name, mime in IMAGE_FORMATS.items()
        if isinstance(item.get(name), str)
    ]
    if images:
        return images
    for name in TEXT_FORMATS:
        if isinstance(item.get(name), str):
            return [{"type": "text", "text": item[name]}]
    if "json" in item:
        return [{"type": "text", "text": json.dumps(item["json"], default=str)}]
    return []


def _without_type(event: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in event.items() if k != "type"}
