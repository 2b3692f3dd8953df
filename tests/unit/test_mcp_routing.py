"""Which of the MCP endpoint's two transports answers a request: the one that can stream
(progress, keep-alive pings) whenever an answer might need it."""

from __future__ import annotations

import json
from typing import Any

import pytest

from jupyter_interp_ext.mcp_endpoint.service import CLIENT_CAPABILITIES, needs_stream
from jupyter_interp_ext.mcp_endpoint.tasks import TASKS_EXTENSION

TAKES_TASKS = {CLIENT_CAPABILITIES: {"extensions": {TASKS_EXTENSION: {}}}}


def call(name: str, meta: dict[str, Any] | None = None) -> bytes:
    params = {"name": name, "arguments": {}, "_meta": meta or {}}
    message = {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": params}
    return json.dumps(message).encode()


@pytest.mark.parametrize(
    ("body", "streamed"),
    [
        (call("read_file"), False),
        (call("run_code", TAKES_TASKS), False),  # a task comes before the first ping
        (call("run_code"), True),  # waits for the end, however long
        (call("run_command", TAKES_TASKS), True),
        (call("read_file", {"progressToken": 1}), True),
        (b'{"jsonrpc": "2.0", "id": 1, "method": "tools/list"}', False),
        (b"not json", True),
        (b"[1, 2]", True),
        (call("run_code", {CLIENT_CAPABILITIES: {"extensions": 3}}), True),
    ],
)
def test_answers_that_may_need_a_stream_get_the_streaming_transport(body, streamed):
    assert needs_stream(body, task_after=10.0) is streamed


def test_a_task_wait_past_the_first_ping_streams_run_code():
    assert needs_stream(call("run_code", TAKES_TASKS), task_after=20.0)
