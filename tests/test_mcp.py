"""The MCP endpoint, driven by the official MCP Python client over HTTP against a live server:
tools, results, tasks, resources, and who may call what."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any, Literal

import httpx2
import mcp_types as types
import pytest
from jupyter_server.auth.authorizer import Authorizer
from mcp.client import Client, ClientSession
from mcp.client.extension import ClaimContext, ClientExtension, ResultClaim
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from test_auth_and_misc import ROUTES

from jupyter_interp_ext.mcp_endpoint import service
from jupyter_interp_ext.mcp_endpoint.service import CLIENT_CAPABILITIES
from jupyter_interp_ext.mcp_endpoint.tasks import TASKS_EXTENSION
from jupyter_interp_ext.mcp_endpoint.tools import TOOLS
from jupyter_interp_ext.pytest_plugin import wait_until
from jupyter_interp_ext.testing import server_config

# A one-pixel PNG, shown by the kernel as an image result.
PNG = (
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJ"
    "RU5ErkJggg=="
)
EVERY_RIGHT = {
    (action, resource)
    for action in ("read", "write", "execute")
    for resource in ("kernels", "terminals", "contents", "api")
}


class Rights(Authorizer):
    """Refuses the rights in `denied`; records what was asked."""

    denied: set[tuple[str, str]] = set()
    asked: list[tuple[str, str]] = []

    def is_authorized(self, handler, user, action, resource) -> bool:
        self.asked.append((action, resource))
        return (action, resource) not in self.denied


@pytest.fixture
def jp_server_config() -> dict[str, Any]:
    Rights.denied, Rights.asked = set(), []
    return {
        "ServerApp": {
            "jpserver_extensions": {"jupyter_interp_ext": True},
            "authorizer_class": Rights,
        },
        # A run still going after this long answers as a task (for clients that take them).
        "InterpreterApp": {"mcp_task_after": 1.0},
    }


class CreateTaskResult(types.Result):
    """The tasks extension's answer to a call that became a task."""

    result_type: Literal["task"] = "task"
    task_id: str
    status: str


class TaskHandles(ClientExtension):
    """The tasks extension for the client: `call_tool` polls a task to its result;
    `session.call_tool(..., allow_claimed=True)` hands the task back."""

    identifier = TASKS_EXTENSION

    def claims(self) -> list[ResultClaim[Any]]:
        return [ResultClaim(result_type="task", model=CreateTaskResult, resolve=self.resolve)]

    @staticmethod
    async def resolve(created: CreateTaskResult, ctx: ClaimContext) -> types.CallToolResult:
        task = await poll(ctx.session, created.task_id, until={"completed"})
        return types.CallToolResult.model_validate(task.result)


class GetTask(types.Request[types.GetTaskRequestParams, Literal["tasks/get"]]):
    method: Literal["tasks/get"] = "tasks/get"
    params: types.GetTaskRequestParams
    name_param = "taskId"


class CancelTask(types.Request[types.CancelTaskRequestParams, Literal["tasks/cancel"]]):
    method: Literal["tasks/cancel"] = "tasks/cancel"
    params: types.CancelTaskRequestParams
    name_param = "taskId"


class Task(types.Result):
    task_id: str
    status: str
    result: dict[str, Any] | None = None
    ttl_ms: int | None = None


@asynccontextmanager
async def connect(
    server: dict[str, str],
    *,
    token: str | None = None,
    mode: str = "auto",
    tasks: bool = False,
) -> AsyncIterator[Client]:
    """The official client on the server's endpoint, with the server's token (or `token`)."""
    headers = {"Authorization": f"Bearer {token if token is not None else server['token']}"}
    http = httpx2.AsyncClient(headers=headers, timeout=httpx2.Timeout(60, read=300))
    transport = streamable_http_client(f"{server['server_url']}sandbox/mcp", http_client=http)
    extensions = [TaskHandles()] if tasks else None
    async with http, Client(transport, mode=mode, extensions=extensions) as client:  # type: ignore[arg-type]
        yield client


def texts(result: types.CallToolResult) -> str:
    return "".join(block.text for block in result.content if block.type == "text")


async def test_tools_run_code_with_an_image_and_a_chart_of_results(server):
    async with connect(server) as client:
        assert client.protocol_version == "2026-07-28"
        names = {tool.name for tool in (await client.list_tools()).tools}
        assert {t.name for t in TOOLS} <= names
        code = (
            "from IPython.display import Image, display\nimport base64\n"
            f"print('drawn')\ndisplay(Image(data=base64.b64decode('{PNG}')))\n6 * 7"
        )
        result = await client.call_tool("run_code", {"code": code})
    assert not result.is_error
    [image] = [block for block in result.content if block.type == "image"]
    assert (image.mime_type, image.data) == ("image/png", PNG)
    assert texts(result) == "drawn\n42"
    structured = result.structured_content
    assert structured["stdout"] == "drawn\n" and structured["error"] is None
    assert [r.get("text") for r in structured["results"]] == [
        "<IPython.core.display.Image object>",
        "42",
    ]


@pytest.fixture(scope="module")
def spans() -> Iterator[InMemorySpanExporter]:
    """A tracer provider that records spans, as under `opentelemetry-instrument` (set once for
    the whole process, as OpenTelemetry allows; it stops recording after this module)."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    yield exporter
    provider.shutdown()


async def test_calls_are_traced_when_opentelemetry_records_spans(spans, server):
    async with connect(server) as client:
        result = await client.call_tool("run_code", {"code": "1 + 1"})
    assert texts(result) == "2"
    [span] = [s for s in spans.get_finished_spans() if s.name == "tools/call run_code"]
    assert span.attributes["gen_ai.tool.name"] == "run_code"


async def test_the_earlier_streamable_http_revision_runs_code_too(server):
    async with connect(server, mode="legacy") as client:
        assert client.protocol_version != "2026-07-28"
        first = await client.call_tool("run_code", {"code": "kept = 40"})
        second = await client.call_tool("run_code", {"code": "kept + 2"})
    assert not first.is_error and texts(second) == "42"  # the language's context is kept


async def test_a_failing_run_is_a_tool_error_and_the_context_goes_on(server):
    async with connect(server) as client:
        context = await client.call_tool("create_context", {"language": "python"})
        context_id = context.structured_content["id"]
        failed = await client.call_tool(
            "run_code", {"code": "x = 1\n1 / 0", "context_id": context_id}
        )
        after = await client.call_tool("run_code", {"code": "x", "context_id": context_id})
    assert failed.is_error
    assert "ZeroDivisionError" in texts(failed)
    assert failed.structured_content["error"]["ename"] == "ZeroDivisionError"
    assert (after.is_error, texts(after)) == (False, "1")


async def test_output_arrives_as_progress_while_the_run_goes_on(server):
    seen: list[str] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        seen.append(message or "")

    code = "import time\nfor i in range(3):\n    print(i, flush=True)\n    time.sleep(0.05)"
    async with connect(server) as client:
        result = await client.call_tool("run_code", {"code": code}, progress_callback=on_progress)
    assert "".join(seen) == "0\n1\n2\n" == result.structured_content["stdout"]


async def test_commands_and_files(server, jp_root_dir):
    async with connect(server) as client:
        ran = await client.call_tool(
            "run_command", {"command": "bash -c 'echo out; echo err >&2; exit 3'"}
        )
        assert ran.is_error and ran.structured_content["exitCode"] == 3
        assert (ran.structured_content["stdout"], ran.structured_content["stderr"]) == (
            "out",
            "err",
        )
        ok = await client.call_tool("run_command", {"command": "echo $A", "env": {"A": "set"}})
        assert (ok.is_error, ok.structured_content["stdout"]) == (False, "set")

        wrote = await client.call_tool("write_file", {"path": "notes/a.txt", "content": "hé"})
        assert (wrote.is_error, (jp_root_dir / "notes" / "a.txt").read_text()) == (False, "hé")
        path = str(jp_root_dir / "notes" / "a.txt")
        assert texts(await client.call_tool("read_file", {"path": path})) == "hé"
        listed = await client.call_tool("list_files", {"path": "notes"})
        assert [f["name"] for f in listed.structured_content["files"]] == ["a.txt"]
        outside = await client.call_tool("read_file", {"path": "/etc/passwd"})
        assert outside.is_error and "outside the allowed roots" in texts(outside)
        png = str(jp_root_dir / "notes" / "dot.png")
        await client.call_tool("write_file", {"path": png, "content": PNG, "encoding": "base64"})
        [image] = (await client.call_tool("read_file", {"path": png})).content
        assert (image.type, image.data) == ("image", PNG)
        assert not (await client.call_tool("remove_file", {"path": path})).is_error
    assert not (jp_root_dir / "notes" / "a.txt").exists()


async def test_file_tools_reach_nothing_outside_the_roots(server, jp_root_dir, tmp_path):
    """As a caller holding only the file rights: by `..`, by an absolute path, or through a
    link planted inside the root, no file tool reads, lists, writes or deletes outside."""
    Rights.denied = EVERY_RIGHT - {("read", "contents"), ("write", "contents")}
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("hidden words")
    (jp_root_dir / "way-out").symlink_to(outside)
    ways_out = [str(outside / "secret.txt"), "../outside/secret.txt", "way-out/secret.txt"]
    async with connect(server) as client:
        inside = await client.call_tool("write_file", {"path": "in.txt", "content": "mine"})
        assert not inside.is_error and (jp_root_dir / "in.txt").read_text() == "mine"
        for path in ways_out:
            for tool, arguments in [
                ("read_file", {"path": path}),
                ("write_file", {"path": path, "content": "overwritten"}),
                ("remove_file", {"path": path}),
                ("list_files", {"path": path.rsplit("/", 1)[0] or "/"}),
            ]:
                answer = await client.call_tool(tool, arguments)
                assert answer.is_error, (tool, path)
                assert "not authorized" not in texts(answer), (tool, path)  # (the roots refuse)
                assert "hidden words" not in texts(answer), (tool, path)
    assert [p.name for p in outside.iterdir()] == ["secret.txt"]
    assert (outside / "secret.txt").read_text() == "hidden words"


async def test_processes(server):
    async with connect(server) as client:
        started = await client.call_tool(
            "start_process", {"command": "echo ready; sleep 60", "process_id": "sleeper"}
        )
        assert started.structured_content["processId"] == "sleeper"
        listed = await client.call_tool("list_processes", {})
        assert [p["id"] for p in listed.structured_content["processes"]] == ["sleeper"]
        for _ in range(200):
            logs = await client.call_tool("process_logs", {"process_id": "sleeper"})
            if logs.structured_content["stdout"]:
                break
            await asyncio.sleep(0.05)
        assert logs.structured_content["stdout"] == "ready\n"
        killed = await client.call_tool("kill_process", {"process_id": "sleeper"})
        assert killed.structured_content["killedPids"]


@pytest.mark.slow
async def test_a_client_that_takes_tasks_gets_a_long_runs_result_through_one(server):
    code = "import time\ntime.sleep(1.5)\nprint('slow')"
    async with connect(server, tasks=True) as client:
        result = await client.call_tool("run_code", {"code": code})
    assert (result.is_error, texts(result)) == (False, "slow\n")


@pytest.mark.slow
async def test_a_long_run_becomes_a_task_fetched_after_a_reconnect(server):
    code = "import time\nprint('started', flush=True)\ntime.sleep(2.5)\nprint('done')\n'result'"
    async with connect(server, tasks=True) as client:
        created = await client.session.call_tool("run_code", {"code": code}, allow_claimed=True)
    assert isinstance(created, CreateTaskResult) and created.status == "working"
    async with connect(server, tasks=True) as client:  # a new connection
        task = await poll(client.session, created.task_id, until={"completed"})
    assert task.result["structuredContent"]["stdout"] == "started\ndone\n"
    assert task.result["isError"] is False and task.ttl_ms is not None
    assert "'result'" in json.dumps(task.result["content"])


@pytest.mark.slow
async def test_a_cancelled_task_interrupts_the_kernel_and_keeps_its_context(server):
    async with connect(server, tasks=True) as client:
        context = await client.call_tool("create_context", {})
        context_id = context.structured_content["id"]
        await client.call_tool("run_code", {"code": "kept = 1", "context_id": context_id})
        endless = "import time\nwhile True: time.sleep(0.05)"
        created = await client.session.call_tool(
            "run_code",
            {"code": endless, "context_id": context_id},
            allow_claimed=True,
        )
        await client.session.send_request(
            CancelTask(params=types.CancelTaskRequestParams(task_id=created.task_id)), types.Result
        )
        task = await poll(client.session, created.task_id, until={"cancelled"})
        assert task.result is None
        after = await client.call_tool("run_code", {"code": "kept + 1", "context_id": context_id})
    assert texts(after) == "2"


async def test_task_methods_need_the_extension_and_a_known_task(server):
    async with connect(server) as client:
        with pytest.raises(MCPError) as refused:
            await get_task(client.session, "whatever")
    assert refused.value.code == -32021
    async with connect(server, tasks=True) as client:
        with pytest.raises(MCPError) as unknown:
            await get_task(client.session, "whatever")
    assert unknown.value.code == -32602


async def test_each_context_notebook_is_a_resource_that_opens_in_jupyterlab(server):
    async with connect(server) as client:
        await client.call_tool("run_code", {"code": "'in the notebook'"})
        [resource] = (await client.list_resources()).resources
        assert str(resource.uri).startswith(f"{server['server_url']}lab/tree/sandbox/")
        read = await client.read_resource(resource.uri)
    notebook = json.loads(read.contents[0].text)
    assert "'in the notebook'" in json.dumps(notebook["cells"])


async def test_no_token_or_a_wrong_one_is_401_with_the_scheme_to_use(server):
    url = f"{server['server_url']}sandbox/mcp"
    request = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}
    async with httpx2.AsyncClient() as http:
        for headers in ({}, {"Authorization": "Bearer wrong"}):
            answer = await http.post(url, json=request, headers=headers)
            assert answer.status_code == 401
            assert answer.headers["WWW-Authenticate"].startswith("Bearer")
            assert "token" in answer.json()["error"]["message"]
    try:
        async with connect(server, token="wrong") as client:
            await client.list_tools()
    except Exception as error:  # the client's task group wraps what it raised
        assert any(isinstance(e, MCPError) and "token" in str(e) for e in leaves(error))
    else:
        pytest.fail("a wrong token listed the tools")


def leaves(error: BaseException) -> list[BaseException]:
    """The exceptions inside (nested) exception groups; Python 3.10 has no group_contains."""
    inner = getattr(error, "exceptions", None)
    return [leaf for e in inner for leaf in leaves(e)] if inner else [error]


async def test_a_caller_without_execute_on_kernels_cannot_run_code(server, jp_serverapp):
    Rights.denied = {("execute", "kernels")}
    async with connect(server) as client:
        names = {tool.name for tool in (await client.list_tools()).tools}
        refused = await client.call_tool("run_code", {"code": "open('ran', 'w')"})
        command = await client.call_tool("run_command", {"command": "echo still allowed"})
    assert "run_code" not in names and "run_command" in names
    assert refused.is_error and refused.structured_content["code"] == "PERMISSION_DENIED"
    assert list(jp_serverapp.kernel_manager.list_kernel_ids()) == []
    assert command.structured_content["stdout"] == "still allowed"


REST_RIGHTS = {f"{method} {path}": right for method, path, right in ROUTES}


@pytest.mark.parametrize("tool", TOOLS, ids=lambda tool: tool.name)
async def test_each_tool_asks_exactly_its_rest_routes_right(server, tool):
    route = tool.route.replace("{id}", "some-id")
    assert tool.rights == (REST_RIGHTS[route],)
    arguments = {"code": "1", "command": "true", "path": "x", "content": "", "context_id": "c"}
    arguments |= {"process_id": "p"}
    async with connect(server) as client:
        Rights.denied = set(tool.rights)
        refused = await client.call_tool(tool.name, arguments)
        Rights.denied = EVERY_RIGHT - set(tool.rights)
        allowed = await client.call_tool(tool.name, arguments)
    assert refused.is_error and refused.structured_content["code"] == "PERMISSION_DENIED"
    assert (allowed.structured_content or {}).get("code") != "PERMISSION_DENIED"


async def get_task(session: ClientSession, task_id: str) -> Task:
    request = GetTask(params=types.GetTaskRequestParams(task_id=task_id))
    return await session.send_request(request, Task)


async def poll(session: ClientSession, task_id: str, until: set[str]) -> Task:
    """The task once its status is one of `until`."""
    while True:
        task = await get_task(session, task_id)
        if task.status in until:
            return task
        assert task.status == "working"
        await asyncio.sleep(0.1)


LEAVING = server_config(ExecutionManager={"reconnect_grace": 0.2})


@pytest.mark.slow
@pytest.mark.parametrize("jp_server_config", [LEAVING])
@pytest.mark.parametrize(
    ("version", "streaming"),
    [("2026-07-28", False), ("2026-07-28", True), ("2025-11-25", True)],
    ids=["before its answer began", "while its answer streams", "earlier revision"],
)
async def test_a_call_whose_client_leaves_lets_go_of_its_run(
    server, jp_serverapp, version, streaming, tmp_path
):
    """However far its answer had come, a client that hangs up mid-run leaves its run as a
    REST reader would: interrupted once the reconnect grace is over."""
    started = tmp_path / "started"
    code = f"import time\nprint('begun', flush=True)\nopen({str(started)!r}, 'w').close()\n"
    code += "time.sleep(600)"
    meta: dict[str, Any] = {"progressToken": 1} if streaming else {}
    if version == "2026-07-28":
        meta |= {"io.modelcontextprotocol/protocolVersion": version, CLIENT_CAPABILITIES: {}}
    body = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "tools/call",
        "params": {"name": "run_code", "arguments": {"code": code}, "_meta": meta},
    }
    headers = {
        "Authorization": f"Bearer {server['token']}",
        "Accept": "application/json, text/event-stream",
        "MCP-Protocol-Version": version,
        "Mcp-Method": "tools/call",
        "Mcp-Name": "run_code",
    }
    store = jp_serverapp.web_app.settings["interp_execution_manager"].executions

    async def call(http: httpx2.AsyncClient) -> bytes:
        url = f"{server['server_url']}sandbox/mcp"
        async with http.stream("POST", url, json=body, headers=headers) as response:
            assert response.status_code == 200
            async for chunk in response.aiter_bytes():
                return chunk  # the stream's first event: the run's output as progress
        return b""

    async with httpx2.AsyncClient(timeout=60) as http:
        calling = asyncio.ensure_future(call(http))
        await wait_until(started.exists, "the run began")
        if streaming:
            assert b"begun" in await asyncio.wait_for(calling, 60)
        else:
            calling.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await calling
    [execution] = store.executions.values()
    await asyncio.wait_for(asyncio.shield(execution.task), 60)
    assert execution.status == "interrupted" and not execution.detached


QUIET = server_config(InterpreterApp={"keepalive_seconds": 0.1})


@pytest.mark.parametrize("jp_server_config", [QUIET])
async def test_a_call_quiet_past_the_first_ping_streams_pings_then_its_answer(
    server, monkeypatch, tmp_path
):
    """A call that says nothing for as long as the SDK waits before pinging gets an event
    stream: pings keep a proxy from closing it, and the answer ends it."""
    monkeypatch.setattr(service, "STREAM_PING_SECONDS", 0.2)
    go = tmp_path / "go"
    code = f"import os, time\nwhile not os.path.exists({str(go)!r}): time.sleep(0.01)\n'done'"
    body = {
        "jsonrpc": "2.0",
        "id": 7,
        "method": "tools/call",
        "params": {
            "name": "run_code",
            "arguments": {"code": code},
            "_meta": {
                "io.modelcontextprotocol/protocolVersion": "2026-07-28",
                CLIENT_CAPABILITIES: {},
            },
        },
    }
    headers = {
        "Authorization": f"Bearer {server['token']}",
        "Accept": "application/json, text/event-stream",
        "MCP-Protocol-Version": "2026-07-28",
        "Mcp-Method": "tools/call",
        "Mcp-Name": "run_code",
    }
    received = b""
    async with (
        httpx2.AsyncClient(timeout=60) as http,
        http.stream(
            "POST", f"{server['server_url']}sandbox/mcp", json=body, headers=headers
        ) as response,
    ):
        assert response.headers["content-type"] == "text/event-stream"
        async for chunk in response.aiter_bytes():
            received += chunk
            if b": keepalive" in received:
                go.touch()  # pinged while quiet: now let the run end
    ping_at, answer_at = received.index(b": keepalive"), received.index(b"event: message")
    assert ping_at < answer_at
    data = received[answer_at:].split(b"data: ", 1)[1].split(b"\n", 1)[0]
    message = json.loads(data)
    assert message["id"] == 7
    assert message["result"]["content"] == [{"type": "text", "text": "'done'"}]
