"""Waiting for a port: ready once a process's server answers (with its preview URL), or told
the process exited first; previews reach only sandbox processes' ports, without the caller's
credentials, in a sandboxed origin."""

from __future__ import annotations

import json
import sys
from http.server import BaseHTTPRequestHandler

import httpx
import pytest
from httpx_sse import aconnect_sse
from tornado.httpclient import AsyncHTTPClient, HTTPRequest

from jupyter_interp_ext.pytest_plugin import wait_until
from jupyter_interp_ext.testing import free_port, local_http_server


@pytest.fixture
def jp_server_config():
    return {
        "ServerApp": {
            "jpserver_extensions": {"jupyter_interp_ext": True, "jupyter_server_proxy": True}
        },
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
        "url": f"{jp_base_url}sandbox/preview/{port}/",
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


@pytest.mark.slow
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


ECHO_APP = """
import http.server, json, sys

class Echo(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = json.dumps(dict(self.headers)).encode()
        self.send_response(200)
        self.send_header("Set-Cookie", "planted=1; Path=/")
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass

http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), Echo).serve_forever()
"""


class Unrelated(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"not a sandbox process")

    def log_message(self, *args) -> None:
        pass


@pytest.mark.slow
async def test_previews_reach_only_sandbox_ports_without_the_caller_s_credentials(
    api, jp_root_dir, jp_http_port, jp_base_url
):
    (jp_root_dir / "echo.py").write_text(ECHO_APP)
    port = free_port()
    command = f"{sys.executable} echo.py {port}"
    status, started = await api.call("POST", "api/process/start", {"command": command})
    assert status == 200
    body = {"port": port, "processId": started["processId"], "interval": 100}
    status, (_, ready) = await api.call("POST", "api/port-watch", body)
    headers = {**api.headers, "Cookie": "session=the-person-s"}
    page = await AsyncHTTPClient().fetch(
        HTTPRequest(f"http://127.0.0.1:{jp_http_port}{ready['url']}", headers=headers)
    )
    seen = {name.lower() for name in json.loads(page.body)}
    assert not seen & {"cookie", "authorization"}, seen
    assert page.headers["Content-Security-Policy"].startswith("sandbox ")
    assert "allow-same-origin" not in page.headers["Content-Security-Policy"]
    # The app plants no cookie on the server's origin (Jupyter's own login cookie may come).
    assert not [c for c in page.headers.get_list("Set-Cookie") if "planted" in c]
    await api.call("DELETE", f"api/process/{started['processId']}")
    # A local service that no sandbox process runs is out of reach, as is a closed port.
    with local_http_server(Unrelated) as unrelated:
        for other in (unrelated.server_port, free_port()):
            answer = await AsyncHTTPClient().fetch(
                HTTPRequest(
                    f"http://127.0.0.1:{jp_http_port}{jp_base_url}sandbox/preview/{other}/",
                    headers=api.headers,
                ),
                raise_error=False,
            )
            assert answer.code == 404
            assert b"not a sandbox process" not in answer.body


async def test_port_watches_are_capped(api, jp_serverapp):
    processes = jp_serverapp.web_app.settings["interp_process_manager"]
    processes.max_port_watches = 1
    body = {"port": free_port(), "mode": "tcp", "interval": 100}
    async with (
        httpx.AsyncClient(base_url=api.url + "/", headers=api.headers, timeout=30) as http,
        aconnect_sse(http, "POST", "api/port-watch", json=body) as source,
    ):
        events = source.aiter_sse()  # held: a dropped iterator closes the stream when collected
        first = await anext(events)
        assert json.loads(first.data)["type"] == "watching"
        status, refused = await api.call("POST", "api/port-watch", body)
        assert (status, refused["code"]) == (429, "RESOURCE_LIMIT_REACHED")
        assert refused["context"]["setting"] == "ProcessManager.max_port_watches"
    await wait_until(lambda: processes._port_watches == 0, "the watch's slot was freed")
