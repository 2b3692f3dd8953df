"""Configured caps: past them a clear 429, and room again once something is released."""

from __future__ import annotations

import asyncio

import pytest


@pytest.fixture
def jp_server_config():
    return {
        "ServerApp": {"jpserver_extensions": {"jupyter_interp_ext": True}},
        "CodeContextRegistry": {"max_contexts": 1},
        "ShellSessionManager": {"max_sessions": 1},
        "ProcessManager": {"max_running": 1},
        "InterpreterApp": {"max_request_bytes": 1000},
    }


def assert_limited(status: int, body: dict, setting: str) -> None:
    assert (status, body["code"], body["httpStatus"]) == (429, "RESOURCE_LIMIT_REACHED", 429)
    assert body["context"]["setting"] == setting
    assert setting in body["message"]


@pytest.mark.slow
async def test_context_cap(api):
    first = await api.create("python")
    status, body = await api.call("POST", "api/contexts", {"language": "python"})
    assert_limited(status, body, "CodeContextRegistry.max_contexts")
    await api.call("DELETE", f"api/contexts/{first['contextId']}")
    assert (await api.create("python"))["language"] == "python"


async def test_session_cap(api):
    status, _ = await api.call("POST", "api/execute", {"command": "true", "sessionId": "one"})
    assert status == 200
    status, body = await api.call("POST", "api/execute", {"command": "true", "sessionId": "two"})
    assert_limited(status, body, "ShellSessionManager.max_sessions")
    await api.call("POST", "api/session/delete", {"sessionId": "one"})
    status, _ = await api.call("POST", "api/execute", {"command": "true", "sessionId": "two"})
    assert status == 200


async def test_running_process_cap(api):
    none = "__DISABLE_SESSION__"
    status, first = await api.call(
        "POST", "api/process/start", {"command": "sleep 300", "sessionId": none}
    )
    status, body = await api.call(
        "POST", "api/process/start", {"command": "sleep 300", "sessionId": none}
    )
    assert_limited(status, body, "ProcessManager.max_running")
    await api.call("DELETE", f"api/process/{first['processId']}")
    status, second = await api.call(
        "POST", "api/process/start", {"command": "true", "sessionId": none}
    )
    assert status == 200


async def test_request_body_limit(api, jp_root_dir):
    status, body = await api.call("POST", "api/write", {"path": "big.txt", "content": "x" * 2000})
    assert (status, body["code"], body["httpStatus"]) == (413, "REQUEST_TOO_LARGE", 413)
    assert not (jp_root_dir / "big.txt").exists()
    status, _ = await api.call("POST", "api/write", {"path": "small.txt", "content": "x" * 500})
    assert status == 200


async def test_an_oversized_body_is_refused_before_it_is_sent(jp_http_port, jp_base_url, api):
    """A client that declares a huge body is answered 413 from the headers alone: the server
    never waits for (or holds) the body."""
    reader, writer = await asyncio.open_connection("127.0.0.1", jp_http_port)
    head = (
        f"POST {jp_base_url}sandbox/api/write HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Authorization: {api.headers['Authorization']}\r\n"
        "Content-Type: application/json\r\nContent-Length: 1073741824\r\n\r\n"
    )
    writer.write(head.encode())
    await writer.drain()
    status_line = await asyncio.wait_for(reader.readline(), 10)
    writer.close()
    assert status_line.split()[1] == b"413"
