"""A pytest plugin for testing a Jupyter server with this extension.

Enable it with `pytest_plugins = ["pytest_jupyter.jupyter_server",
"jupyter_interp_ext.pytest_plugin"]`. The `api` fixture calls the extension over real HTTP and
checks every answer against the shipped OpenAPI description; the helpers read event streams and
wait for what a test cannot be told about directly. Needs the `test` extra.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import re
import time
from collections.abc import Callable
from typing import Any

import pytest
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012
from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest

from jupyter_interp_ext.handlers.openapi import document
from jupyter_interp_ext.protocol.events import ends_run
from jupyter_interp_ext.shells.process_tree import alive
from jupyter_interp_ext.testing import SSEParser, parse_sse

OPENAPI = document("/sandbox")
_REGISTRY = Registry().with_resource("urn:api", Resource.from_contents(OPENAPI, DRAFT202012))
_OPERATIONS = [
    (re.compile("^" + re.sub(r"\\{[^}]+\\}", "[^/]+", re.escape(path)) + "$"), path)
    for path in OPENAPI["paths"]
]


def check_against_openapi(
    method: str, path: str, status: int, content_type: str, body: Any
) -> None:
    """Every answer the tests see must match the shipped OpenAPI description."""
    path = "/" + path.strip("/")
    template: str | None = next((t for pattern, t in _OPERATIONS if pattern.match(path)), None)
    if template is None or method.lower() not in OPENAPI["paths"][template]:
        assert status == 404 or status == 405, f"{method} {path} is not described"
        pointer = "/components/schemas/Error"
    else:
        responses = OPENAPI["paths"][template][method.lower()]["responses"]
        code = str(status) if str(status) in responses else "default"
        media = (
            "text/event-stream"
            if content_type.startswith("text/event-stream")
            else ("application/json")
        )
        assert media in responses[code]["content"], f"{method} {path} {status} {media}"
        if media != "application/json":
            return
        pointer = "/paths/{}/{}/responses/{}/content/application~1json/schema".format(
            template.replace("~", "~0").replace("/", "~1"), method.lower(), code
        )
    Draft202012Validator({"$ref": f"urn:api#{pointer}"}, registry=_REGISTRY).validate(body)


class Api:
    """Calls the extension the way an HTTP client would, returning status and JSON."""

    def __init__(self, fetch, port: int, base_url: str, headers: dict[str, str]) -> None:
        self._fetch = fetch
        self.url = f"http://127.0.0.1:{port}{base_url}sandbox"
        self.headers = headers

    async def call(
        self, method: str, path: str, body: Any = None, *, raw: bytes | None = None, **kwargs
    ) -> tuple[int, Any]:
        if raw is None and body is not None:
            raw = json.dumps(body).encode()
        if raw is None and method == "POST":
            raw = b""
        try:
            response = await self._fetch(
                "sandbox",
                *path.strip("/").split("/"),
                method=method,
                body=raw,
                allow_nonstandard_methods=True,
                request_timeout=120,
                **kwargs,
            )
        except HTTPClientError as exc:
            assert exc.response is not None
            response = exc.response
        content_type = response.headers.get("Content-Type", "")
        if content_type.startswith("text/event-stream"):
            check_against_openapi(method, path, response.code, content_type, None)
            return response.code, parse_sse(response.body)
        body = json.loads(response.body) if response.body else None
        check_against_openapi(method, path, response.code, content_type, body)
        return response.code, body

    async def create(self, language: str = "python", **body: Any) -> dict[str, Any]:
        status, data = await self.call("POST", "api/contexts", {"language": language, **body})
        assert status == 200, data
        return data

    async def run(self, context_id: str, code: str, **body: Any) -> list[dict[str, Any]]:
        status, events = await self.call(
            "POST", "api/execute/code", {"context_id": context_id, "code": code, **body}
        )
        assert status == 200, events
        assert sum(map(ends_run, events)) == 1, events
        assert ends_run(events[-1]), events
        return events

    async def stream(self, context_id: str, code: str) -> list[tuple[float, dict[str, Any]]]:
        """Events with the time each arrived at the client, read as the server sends them."""
        arrivals: list[tuple[float, bytes]] = []
        request = HTTPRequest(
            self.url + "/api/execute/code",
            method="POST",
            headers=self.headers,
            body=json.dumps({"context_id": context_id, "code": code}),
            streaming_callback=lambda chunk: arrivals.append((time.monotonic(), chunk)),
            request_timeout=120,
        )
        await AsyncHTTPClient().fetch(request)
        parser = SSEParser(strict=True)
        return [(at, event) for at, chunk in arrivals for event in parser.feed(chunk)]


@pytest.fixture
def api(jp_serverapp, jp_fetch, jp_http_port, jp_base_url, jp_auth_header) -> Api:
    return Api(jp_fetch, jp_http_port, jp_base_url, jp_auth_header)


@pytest.fixture
def python_context(api: Api, jp_asyncio_loop: Any) -> str:
    """The id of a new Python context on the test's server."""
    return str(jp_asyncio_loop.run_until_complete(api.create("python"))["contextId"])


def outputs(events: list[dict[str, Any]], kind: str) -> str:
    """All text of one stream, joined as the official client's tests join it."""
    return "".join(e["text"] for e in events if e["type"] == kind)


def results(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e for e in events if e["type"] == "result"]


alive = alive  # whether a process exists and is not a zombie

# What a terminal shows last while an interactive bash waits at its prompt. A prompt exactly
# as wide as the terminal (or a multiple of it) ends with the " \r" readline writes to move to
# the next line, so the prompt's length (the test's directory's) does not matter.
SHELL_PROMPT = r"[#$] ( \r)?$"


async def wait_until(
    condition: Callable[[], Any], what: str, seconds: float = 20.0, interval: float = 0.02
) -> Any:
    """Poll a condition the test cannot be told about directly (a process exiting, a lock
    being taken) until it holds; it may be a coroutine function (asking the API). Its first
    true value is returned."""
    deadline = asyncio.get_running_loop().time() + seconds
    while True:
        value = condition()
        if inspect.isawaitable(value):
            value = await value
        if value:
            return value
        if asyncio.get_running_loop().time() >= deadline:
            raise AssertionError(f"timed out waiting until {what}")
        await asyncio.sleep(interval)


async def start_extension(serverapp: Any) -> Any:
    """Run the extension's start-up as a running server does once its loop runs (pytest-jupyter
    never does): the pool fill, the kernel-action listener, finding jupyter-collaboration."""
    app = serverapp.extension_manager.extension_points["jupyter_interp_ext"].app
    await app._start_jupyter_server_extension(serverapp)
    return app


async def start_endless_run(api, context_id: str, tmp_path, **body: Any) -> asyncio.Future:
    """Start a run that never ends and return once its code is running in the kernel.

    The code itself says so by creating a file: the server's `execution_state` is no signal, as
    the server's iopub watcher may join after the kernel announced `busy`, and a first run's
    prelude makes the kernel busy before the code starts.
    """
    marker = tmp_path / f"started-{time.monotonic_ns()}"
    code = f"import time\nopen({str(marker)!r}, 'w').close()\nwhile True: time.sleep(0.05)"
    running = asyncio.ensure_future(api.run(context_id, code, **body))
    await wait_until(lambda: marker.exists() or running.done(), "the run started")
    assert not running.done(), running.result()
    return running
