"""What the Python client sends and how it reads answers, against `httpx.MockTransport`
(no server): routes, bodies, the token, error classes, streams and retries."""

from __future__ import annotations

import json

import httpx
import pytest

from jupyter_interp_ext.client import AsyncSandbox, Sandbox, SandboxStoppedError, get_sandbox
from jupyter_interp_ext.client.errors import AuthenticationException as Authentication
from jupyter_interp_ext.client.errors import InvalidArgumentException as InvalidArgument
from jupyter_interp_ext.client.errors import (
    NotFoundError,
    NotFoundException,
    PermissionDeniedError,
    SandboxException,
    SandboxTimeoutError,
    TimeoutException,
    TransportError,
    ValidationError,
)


class Server:
    """Answers requests from a table of (method, path) → handler, and records them."""

    def __init__(self, routes: dict[tuple[str, str], object]) -> None:
        self.routes = routes
        self.seen: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.seen.append(request)
        answer = self.routes[(request.method, request.url.path)]
        return answer(request) if callable(answer) else answer


def ok(**body) -> httpx.Response:
    return httpx.Response(200, json={"success": True, **body, "timestamp": "t"})


def events(*items: dict) -> httpx.Response:
    text = "".join(f"data: {json.dumps(item)}\n\n" for item in items)
    return httpx.Response(200, text=text, headers={"Content-Type": "text/event-stream"})


def sandbox(server: Server) -> Sandbox:
    return Sandbox("http://host:8888/base/", token="tok", transport=httpx.MockTransport(server))


def test_calls_go_to_the_prefix_with_the_token_and_their_body():
    server = Server(
        {
            ("POST", "/base/sandbox/api/contexts"): ok(contextId="k1", language="python", cwd="/r"),
            ("POST", "/base/sandbox/api/write"): ok(path="a.txt"),
            ("DELETE", "/base/sandbox/api/contexts/k1"): ok(contextId="k1"),
        }
    )
    with sandbox(server) as box:
        context = box.create_code_context(cwd="/r", language="python", envs={"A": "1"})
        box.files.write("a.txt", "héllo")
    assert context.id == "k1"
    create, write, delete = server.seen  # leaving the block deletes what it created
    assert (delete.method, delete.url.path) == ("DELETE", "/base/sandbox/api/contexts/k1")
    assert create.headers["Authorization"] == "token tok"
    assert json.loads(create.content) == {
        "language": "python",
        "cwd": "/r",
        "env_vars": {"A": "1"},
        "labels": {"sandbox": box.sandbox_id},  # how `Sandbox.connect` finds it again
    }
    assert json.loads(write.content)["content"] == "héllo"


def test_a_run_streams_into_an_execution_with_callbacks():
    server = Server(
        {
            # Another object of the same sandbox made no default context: one is created.
            ("GET", "/base/sandbox/api/contexts"): ok(contexts=[]),
            ("POST", "/base/sandbox/api/contexts"): ok(contextId="k1", language="python", cwd="/"),
            ("POST", "/base/sandbox/api/execute/code"): events(
                {"type": "stdout", "text": "hi\n", "timestamp": 1.0},
                {"type": "result", "text": "2", "json": 2, "isMainResult": True},
                {"type": "execution_complete", "execution_count": 1},
            ),
            ("DELETE", "/base/sandbox/api/contexts/k1"): ok(contextId="k1"),
        }
    )
    seen = []
    with sandbox(server) as box:
        execution = box.run_code("print('hi'); 2", on_stdout=seen.append, timeout=1.5)
        box.run_code("3")  # the same default context: created once
    assert [m.line for m in seen] == ["hi\n"]
    assert execution.text == "2" and execution.error is None
    as_json = json.loads(execution.to_json())  # E2B's shape: logs and error as JSON texts
    assert as_json["results"] == [{"text": "2", "json": 2}]
    assert json.loads(as_json["logs"]) == {"stdout": ["hi\n"], "stderr": []}
    assert as_json["error"] is None
    runs = [r for r in server.seen if r.url.path.endswith("/execute/code")]
    assert json.loads(runs[0].content) == {
        "context_id": "k1",
        "code": "print('hi'); 2",
        "timeout_ms": 1500.0,
    }
    made = [r for r in server.seen if r.url.path.endswith("/contexts") and r.method == "POST"]
    assert len(made) == 1


@pytest.mark.parametrize(
    ("status", "body", "kind", "e2b_kind"),
    [
        (400, {"code": "VALIDATION_FAILED", "message": "bad"}, ValidationError, InvalidArgument),
        (403, {"code": "PERMISSION_DENIED"}, PermissionDeniedError, Authentication),
        (404, {"code": "FILE_NOT_FOUND", "message": "gone"}, NotFoundError, NotFoundException),
        (
            500,
            {"code": "COMMAND_EXECUTION_ERROR", "context": {"timedOut": True}},
            SandboxTimeoutError,
            TimeoutException,
        ),
    ],
)
def test_error_bodies_become_typed_errors_under_e2bs_names_too(status, body, kind, e2b_kind):
    server = Server({("POST", "/base/sandbox/api/read"): httpx.Response(status, json=body)})
    with sandbox(server) as box, pytest.raises(kind) as raised:
        box.files.read("x")
    assert isinstance(raised.value, e2b_kind) and isinstance(raised.value, SandboxException)
    assert (raised.value.status, raised.value.code) == (status, body["code"])


def test_only_requests_that_change_nothing_are_sent_again():
    attempts = {"ping": 0, "write": 0}

    def refuse(name: str):
        def answer(request: httpx.Request) -> httpx.Response:
            attempts[name] += 1
            if attempts[name] < 2:
                raise httpx.ConnectError("refused", request=request)
            return ok(message="pong", path="p")

        return answer

    server = Server(
        {
            ("GET", "/base/sandbox/api/ping"): refuse("ping"),
            ("POST", "/base/sandbox/api/write"): refuse("write"),
        }
    )
    with sandbox(server) as box:
        assert box.ping() == "pong"
        with pytest.raises(TransportError) as failed:
            box.files.write("p", "x")
        assert isinstance(failed.value, SandboxException)
    assert attempts == {"ping": 2, "write": 1}


async def test_the_async_client_sends_the_same_requests():
    server = Server({("GET", "/base/sandbox/api/ping"): ok(message="pong")})
    async with AsyncSandbox(
        "http://host:8888/base", token="tok", transport=httpx.MockTransport(server)
    ) as box:
        assert await box.ping() == "pong"
    assert [(r.method, str(r.url)) for r in server.seen] == [
        ("GET", "http://host:8888/base/sandbox/api/ping")
    ]


@pytest.mark.parametrize("url", ["http://host:8888/sandbox", "http://host:8888/base/sandbox/"])
def test_a_url_ending_with_the_api_prefix_is_refused_with_the_fix(url):
    with pytest.raises(InvalidArgument, match="drop /sandbox"):
        Sandbox(url, token="tok")


def test_a_caller_s_http_client_and_timeout_are_used_and_left_open():
    server = Server({("GET", "/base/sandbox/api/ping"): ok(message="pong")})
    mine = httpx.Client(transport=httpx.MockTransport(server), headers={"X-Mine": "1"})
    with Sandbox(
        "http://host:8888/base", token="tok", http_client=mine, timeout=httpx.Timeout(5.0)
    ) as box:
        assert box.ping() == "pong"
    [request] = server.seen
    assert (request.headers["X-Mine"], request.headers["Authorization"]) == ("1", "token tok")
    assert not mine.is_closed  # the caller's to close
    mine.close()


def test_ids_a_hub_cannot_name_are_refused_before_any_request():
    # No host answers at hub.invalid: a request would be a TransportError, not this.
    for bad in ("Upper", "9starts-with-a-digit", "ends-", "two--hyphens", "x" * 31, "a/b"):
        with pytest.raises(ValueError, match="is not a sandbox id on a Hub"):  # E2B: a ValueError
            Sandbox.connect(bad, hub_url="http://hub.invalid/", token="t")
        with pytest.raises(InvalidArgument):
            Sandbox.connect(bad, hub_url="http://hub.invalid/", token="t")
        with pytest.raises(InvalidArgument):
            get_sandbox("http://hub.invalid/", bad, token="t")


def test_a_redirect_or_a_hub_page_is_a_stopped_server_not_a_success():
    server = Server(
        {
            ("GET", "/base/sandbox/api/contexts"): httpx.Response(302, headers={"Location": "/x"}),
            ("POST", "/base/sandbox/api/contexts"): httpx.Response(
                403, text="<html>", headers={"X-JupyterHub-Version": "6.1.1"}
            ),
        }
    )
    box = sandbox(server)
    with pytest.raises(SandboxStoppedError):
        box.list_code_contexts()
    with pytest.raises(SandboxStoppedError, match="not running"):
        box.create_code_context()
    box.close()
