"""Who answers an MCP request: the handler itself (a 2026-07-28 request passing every check
of the SDK's transport), else the one of the SDK's two transports that can stream (progress,
keep-alive pings) whenever an answer might need it."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from tornado.httputil import HTTPHeaders

from jupyter_interp_ext.mcp_endpoint.exchange import admitted
from jupyter_interp_ext.mcp_endpoint.service import CLIENT_CAPABILITIES, needs_stream
from jupyter_interp_ext.mcp_endpoint.tasks import TASKS_EXTENSION

TAKES_TASKS = {CLIENT_CAPABILITIES: {"extensions": {TASKS_EXTENSION: {}}}}


def call(name: str, meta: dict[str, Any] | None = None) -> dict[str, Any]:
    params = {"name": name, "arguments": {}, "_meta": meta or {}}
    return {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": params}


@pytest.mark.parametrize(
    ("body", "streamed"),
    [
        (call("read_file"), False),
        (call("run_code", TAKES_TASKS), False),  # a task comes before the first ping
        (call("run_code"), True),  # waits for the end, however long
        (call("run_command", TAKES_TASKS), True),
        (call("read_file", {"progressToken": 1}), True),
        ({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}, False),
        (None, True),  # not JSON
        ([1, 2], True),
        (call("run_code", {CLIENT_CAPABILITIES: {"extensions": 3}}), True),
    ],
)
def test_answers_that_may_need_a_stream_get_the_streaming_transport(body, streamed):
    assert needs_stream(body, task_after=10.0) is streamed


def test_a_task_wait_past_the_first_ping_streams_run_code():
    assert needs_stream(call("run_code", TAKES_TASKS), task_after=20.0)


MODERN = "2026-07-28"
ENVELOPE = {"io.modelcontextprotocol/protocolVersion": MODERN, CLIENT_CAPABILITIES: {}}
ROUTING = {
    "Accept": "application/json, text/event-stream",
    "MCP-Protocol-Version": MODERN,
    "Mcp-Method": "tools/call",
    "Mcp-Name": "run_code",
}


def handler_for(method: str = "POST", **headers: str) -> SimpleNamespace:
    """Just what `admitted` reads of a handler: its request's method and headers."""
    sent = HTTPHeaders({**ROUTING, **headers})
    return SimpleNamespace(request=SimpleNamespace(method=method, headers=sent))


def test_a_2026_request_that_passes_every_check_is_answered_by_the_handler():
    route = admitted(handler_for(), call("run_code", ENVELOPE))
    assert route is not None and route.protocol_version == MODERN


@pytest.mark.parametrize(
    ("handler", "body"),
    [
        (handler_for("GET"), call("run_code", ENVELOPE)),
        (handler_for(**{"MCP-Protocol-Version": "2025-11-25"}), call("run_code", ENVELOPE)),
        (handler_for(Accept="text/event-stream"), call("run_code", ENVELOPE)),  # no JSON
        (handler_for(**{"Mcp-Name": "read_file"}), call("run_code", ENVELOPE)),  # mismatch
        (handler_for(**{"Mcp-Param-Path": "x"}), call("run_code", ENVELOPE)),
        (handler_for(), call("run_code")),  # no envelope
        (handler_for(), {"jsonrpc": "2.0", "method": "notifications/cancelled"}),
        (handler_for(), [call("run_code", ENVELOPE)]),  # a batch
        (handler_for(), {**call("run_code", ENVELOPE), "id": True}),
        (handler_for(), None),  # not JSON
    ],
    ids=[
        "GET",
        "earlier revision",
        "accepts no JSON",
        "header disagrees with body",
        "Mcp-Param header",
        "no envelope",
        "notification",
        "batch",
        "bad id",
        "not JSON",
    ],
)
def test_anything_else_goes_to_the_sdks_transport(handler, body):
    """The transport answers these as the SDK does (refusals, 202, 405, 406)."""
    assert admitted(handler, body) is None
