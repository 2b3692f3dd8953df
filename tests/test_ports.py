"""Waiting for a port: ready once a process's server answers (with its URL through the
server's proxy), or told the process exited first."""

from __future__ import annotations

import sys

import pytest
from tornado.httpclient import AsyncHTTPClient, HTTPRequest

from jupyter_interp_ext.testing import free_port


@pytest.fixture
def jp_server_config():
    return {
        "ServerApp": {
            "jpserver_extensions": {"jupyter_interp_ext": True, "jupyter_server_proxy": True}
        },
        "KernelPool": {"sizes": {}},
    }


async def test_a_web_server_is_ready_and_reachable_through_the_proxy(
    api, jp_root_dir, jp_http_port, jp_base_url
):
    (jp_root_dir / "hello.txt").write_text("served")
    port = free_port()
    command = f"{sys.executable} -m http.server {port} --bind 127.0.0.1"
    status, started = await api.call("POST", "api/process/start", {"command": command})
    assert status == 200
    status, events = await api.call(
        "POST",
        "api/port-watch",
        {"port": port, "path": "/hello.txt", "processId": started["processId"], "interval": 100},
    )
    assert status == 200
    watching, ready = events
    assert watching == {"type": "watching", "port": port}
    assert ready == {
        "type": "ready",
        "port": port,
        "statusCode": 200,
        "url": f"{jp_base_url}proxy/{port}/",
    }
    page = await AsyncHTTPClient().fetch(
        HTTPRequest(f"http://127.0.0.1:{jp_http_port}{ready['url']}hello.txt", headers=api.headers)
    )
    assert page.body == b"served"
    await api.call("DELETE", f"api/process/{started['processId']}")


async def test_a_process_that_exits_first_is_reported(api):
    status, started = await api.call("POST", "api/process/start", {"command": "sleep 0.2; exit 3"})
    port = free_port()
    body = {"port": port, "mode": "tcp", "processId": started["processId"], "interval": 100}
    status, events = await api.call("POST", "api/port-watch", body)
    assert events[-1] == {"type": "process_exited", "port": port, "exitCode": 3}


async def test_tcp_readiness_and_bad_requests(api):
    port = free_port()
    command = f"{sys.executable} -m http.server {port} --bind 127.0.0.1"
    await api.call("POST", "api/process/start", {"command": command})
    status, events = await api.call("POST", "api/port-watch", {"port": port, "mode": "tcp"})
    assert events[-1]["type"] == "ready" and "statusCode" not in events[-1]
    for body, code in [
        ({"port": 70000}, "VALIDATION_FAILED"),
        ({"port": 80, "mode": "udp"}, "VALIDATION_FAILED"),
        ({"port": 80, "path": "no-slash"}, "VALIDATION_FAILED"),
        ({"port": 80, "processId": "nope"}, "PROCESS_NOT_FOUND"),
    ]:
        status, answer = await api.call("POST", "api/port-watch", body)
        assert answer["code"] == code, (body, answer)
