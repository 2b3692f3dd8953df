"""Durable runs: a dropped connection loses nothing, and a run can be picked up again.

Connections are cut for real (the test's HTTP client closes its socket mid-stream) at random
but seeded points; the run goes on in the server, and a reader that comes back with the last
id it saw gets every later event exactly once, in order, ending with the terminal one."""

from __future__ import annotations

import asyncio
import gc
import json
import random
from typing import Any

import httpx
import pytest

from jupyter_interp_ext import metrics
from jupyter_interp_ext.handlers.base import SandboxHandler
from jupyter_interp_ext.mcp_endpoint.service import CLIENT_CAPABILITIES
from jupyter_interp_ext.protocol.events import ends_run
from jupyter_interp_ext.protocol.sse import EventStream
from jupyter_interp_ext.pytest_plugin import outputs, wait_until
from jupyter_interp_ext.testing import SSEParser, server_config

Numbered = list[tuple[int, dict[str, Any]]]


class Reader:
    """Reads runs' streams as a client would, able to drop its connection after a number of
    bytes (then the events it holds are those completed before the cut)."""

    def __init__(self, api) -> None:
        self.api = api
        self.client = httpx.AsyncClient(headers=api.headers, timeout=120)

    async def read(
        self,
        method: str,
        path: str,
        *,
        cut_after: int | None = None,
        headers: dict[str, str] | None = None,
        **kwargs: Any,
    ) -> tuple[httpx.Response, Numbered, bool]:
        """(the response, the (id, event) pairs read, whether the stream ended by itself)."""
        parser, events, received = SSEParser(strict=True), [], 0
        request = self.client.build_request(
            method, f"{self.api.url}/{path}", headers=headers, **kwargs
        )
        response = await self.client.send(request, stream=True)
        try:
            if response.headers.get("content-type", "").startswith("application/json"):
                await response.aread()
                return response, [], True
            async for chunk in response.aiter_raw():
                if cut_after is not None and received + len(chunk) > cut_after:
                    chunk = chunk[: cut_after - received]
                    events += parser.feed_numbered(chunk)
                    return response, events, False
                received += len(chunk)
                events += parser.feed_numbered(chunk)
            assert not parser.pending
            return response, events, True
        finally:
            await response.aclose()

    async def start(self, context_id: str, code: str, cut_after: int | None = None, **body):
        """POST a run; (its execution id, the events read, whether it ended)."""
        response, events, ended = await self.read(
            "POST",
            "api/execute/code",
            json={"context_id": context_id, "code": code, **body},
            cut_after=cut_after,
        )
        return response.headers.get("X-Execution-Id"), events, ended

    async def resume(self, execution_id: str, after: int, cut_after: int | None = None):
        """The run's events after `after`, by `Last-Event-ID`."""
        response, events, ended = await self.read(
            "GET",
            f"api/execute/code/{execution_id}/stream",
            headers={"Last-Event-ID": str(after)},
            cut_after=cut_after,
        )
        assert response.status_code == 200, response.text
        return events, ended

    async def close(self) -> None:
        await self.client.aclose()


@pytest.fixture
def store(jp_serverapp):
    """The server's kept runs."""
    return jp_serverapp.web_app.settings["interp_execution_manager"].executions


@pytest.fixture
def reader(api, jp_asyncio_loop):
    reading = Reader(api)
    yield reading
    jp_asyncio_loop.run_until_complete(reading.close())


async def read_with_cuts(
    reader: Reader, context_id: str, code: str, cuts: list[int]
) -> tuple[str, Numbered]:
    """Run `code`, cutting the connection after each number of bytes in `cuts` (counted per
    connection) and resuming from the last id seen; its id and every (id, event) received."""
    execution_id, got, ended = await reader.start(context_id, code, cut_after=cuts[0])
    assert execution_id
    for cut in [*cuts[1:], None]:
        if ended:
            break
        more, ended = await reader.resume(execution_id, got[-1][0] if got else 0, cut)
        got += more
    assert ended
    return execution_id, got


def assert_exactly_once(got: Numbered) -> None:
    ids = [event_id for event_id, _ in got]
    assert ids == list(range(1, len(ids) + 1)), ids
    assert [ends_run(event) for _, event in got].count(True) == 1
    assert ends_run(got[-1][1])


RUNS = {
    "stdout": (
        "import sys, time\n"
        "for i in range(40):\n"
        "    print(i, flush=True); print('e', i, file=sys.stderr, flush=True); time.sleep(0.01)",
        2000,
    ),
    "results": (
        "from IPython.display import display, HTML\n"
        "import time\n"
        "for i in range(25):\n"
        "    display(HTML(f'<b>{i}</b>')); time.sleep(0.01)\n"
        "'last'",
        4000,
    ),
    "error": (
        "import time\n"
        "for i in range(20):\n"
        "    print(i, flush=True); time.sleep(0.01)\n"
        "raise ValueError('at the end')",
        800,
    ),
}


@pytest.mark.parametrize("kind", sorted(RUNS))
@pytest.mark.parametrize("seed", [1, 2])
async def test_a_run_cut_at_random_points_arrives_exactly_once(reader, python_context, kind, seed):
    code, size = RUNS[kind]
    rng = random.Random(f"{kind}-{seed}")
    cuts = [rng.randrange(1, size) for _ in range(3)]
    execution_id, got = await read_with_cuts(reader, python_context, code, cuts)
    assert_exactly_once(got)
    events = [event for _, event in got]
    if kind == "stdout":
        assert outputs(events, "stdout") == "".join(f"{i}\n" for i in range(40))
        assert outputs(events, "stderr") == "".join(f"e {i}\n" for i in range(40))
    elif kind == "results":
        shown = [e["html"] for e in events if e["type"] == "result" and "html" in e]
        assert shown == [f"<b>{i}</b>" for i in range(25)]
        assert events[-2]["text"] == "'last'"
    else:
        assert outputs(events, "stdout") == "".join(f"{i}\n" for i in range(20))
        assert (events[-1]["ename"], events[-1]["evalue"]) == ("ValueError", "at the end")
    # A reader from the start gets the same events again, whole.
    again, ended = await reader.resume(execution_id, 0)
    assert ended and again == got


@pytest.mark.slow
async def test_a_50_mb_output_cut_three_times_arrives_whole(reader, python_context):
    code = "import sys\nfor i in range(50):\n    sys.stdout.write(str(i % 10) * 1_000_000)"
    cuts = [7_000_000, 19_000_000, 4_500_000]
    _, got = await read_with_cuts(reader, python_context, code, cuts)
    assert_exactly_once(got)
    text = outputs([event for _, event in got], "stdout")
    assert len(text) == 50_000_000
    assert all(
        text[i * 1_000_000 : (i + 1) * 1_000_000] == str(i % 10) * 1_000_000 for i in range(50)
    )


async def test_status_of_a_run_and_of_an_unknown_id(api, reader, python_context):
    execution_id, got, _ = await reader.start(python_context, "print('hi')\n6 * 7")
    status, state = await api.call("GET", f"api/execute/code/{execution_id}")
    assert status == 200
    assert state["executionId"] == execution_id
    assert state["contextId"] == python_context
    assert (state["status"], state["events"]) == ("completed", len(got))
    assert state["startedAt"] <= state["endedAt"]
    status, error = await api.call("GET", "api/execute/code/nope")
    assert (status, error["code"]) == (404, "EXECUTION_NOT_FOUND")
    status, error = await api.call("GET", "api/execute/code/nope/stream")
    assert (status, error["code"]) == (404, "EXECUTION_NOT_FOUND")
    response, _, _ = await reader.read(
        "GET", f"api/execute/code/{execution_id}/stream", headers={"Last-Event-ID": "x1"}
    )
    assert (response.status_code, response.json()["code"]) == (400, "VALIDATION_FAILED")
    # `?after=` works as Last-Event-ID does, and past the end there is nothing more.
    response, tail, ended = await reader.read(
        "GET", f"api/execute/code/{execution_id}/stream", params={"after": str(len(got) - 1)}
    )
    assert ended and tail == got[-1:]


async def test_a_finished_request_is_freed_at_once_though_its_run_is_kept(
    store, api, python_context, jp_fetch
):
    """A run is kept for readers long after its response ended; the request that started it
    (handler, connection, stream, buffers) must go at once, by reference counting alone, and
    so must an MCP call's that waited a while for its run: the garbage collector is off here, so
    anything left in a cycle, or held by the kept run or a pending timer, stays visible.
    (What a request starts that lasts, a context's notebook writer or a session's shell, may
    keep that one request: a first run and command start them before the count.)"""

    def requests_alive() -> set[int]:
        return {id(o) for o in gc.get_objects() if isinstance(o, (SandboxHandler, EventStream))}

    command = {"command": "echo hi", "sessionId": "default", "timeout": 60_000}
    meta = {"io.modelcontextprotocol/protocolVersion": "2026-07-28", CLIENT_CAPABILITIES: {}}
    call = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "tools/call",
        "params": {"name": "run_code", "arguments": {"code": "6 * 7"}, "_meta": meta},
    }
    mcp_headers = {
        "Accept": "application/json, text/event-stream",
        "MCP-Protocol-Version": "2026-07-28",
        "Mcp-Method": "tools/call",
        "Mcp-Name": "run_code",
    }

    async def mcp_call() -> None:
        answer = await jp_fetch(
            "sandbox", "mcp", method="POST", body=json.dumps(call), headers=mcp_headers
        )
        assert b'"text":"42"' in answer.body

    await api.run(python_context, "1")
    await api.call("POST", "api/execute", command)
    await mcp_call()
    gc.collect()
    before = requests_alive()
    gc.disable()
    try:
        for code in ("1 + 1", "print('hi')", "1 / 0"):
            await api.run(python_context, code)
        status, done = await api.call("POST", "api/execute", command)
        assert (status, done["exitCode"]) == (200, 0)
        await mcp_call()
        assert len(store.executions) >= 5  # kept
        await wait_until(lambda: requests_alive() <= before, "every finished request is freed")
    finally:
        gc.enable()


async def test_several_readers_follow_one_run(store, reader, python_context, tmp_path):
    go = tmp_path / "go"
    code = (
        "import os, time\n"
        f"while not os.path.exists({str(go)!r}): time.sleep(0.01)\n"
        "for i in range(5): print(i, flush=True)"
    )
    first = asyncio.ensure_future(reader.start(python_context, code))
    execution = await wait_until(lambda: next(iter(store.executions.values()), None), "started")
    second = asyncio.ensure_future(reader.resume(execution.id, 0))
    await wait_until(lambda: len(execution.followers) == 2, "both follow")
    go.touch()
    _, got_first, _ = await first
    got_second, _ = await second
    assert got_first == got_second
    assert_exactly_once(got_first)


def within(config: dict[str, Any]):
    """Run a test on a server whose ExecutionManager has these settings."""
    return pytest.mark.parametrize("jp_server_config", [server_config(ExecutionManager=config)])


async def ended(store, execution_id: str):
    """Wait for a run's end, as the server sees it."""
    execution = store.get(execution_id)
    await asyncio.wait_for(asyncio.shield(execution.task), 60)
    return execution


@within({"reconnect_grace": 0.3})
async def test_a_run_nobody_comes_back_to_is_interrupted_after_the_grace(
    api, store, reader, python_context, tmp_path
):
    marker = tmp_path / "started"
    code = f"import time\nopen({str(marker)!r}, 'w').close()\nprint('begun')\ntime.sleep(600)"
    execution_id, got, finished = await reader.start(python_context, code, cut_after=1)
    assert not finished and got == []
    execution = await ended(store, execution_id)
    assert execution.status == "interrupted"
    again, _ = await reader.resume(execution_id, 0)
    terminal = again[-1][1]
    assert (terminal["ename"], terminal["reason"]) == ("ClientDisconnected", "disconnected")
    assert "its state is kept" in terminal["evalue"]
    assert marker.exists()
    assert (await api.run(python_context, "1 + 1"))[-1]["type"] == "execution_complete"


@within({"reconnect_grace": 2})
async def test_a_reader_back_within_the_grace_keeps_the_run_going(
    store, reader, python_context, tmp_path
):
    go = tmp_path / "go"
    code = (
        "import os, time\nprint('waiting', flush=True)\n"
        f"while not os.path.exists({str(go)!r}): time.sleep(0.01)\nprint('went')"
    )
    execution_id, got, _ = await reader.start(python_context, code, cut_after=1)
    execution = store.get(execution_id)
    await wait_until(lambda: execution._grace is not None, "the grace period began")
    back = asyncio.ensure_future(reader.resume(execution_id, 0))
    await wait_until(lambda: execution.followers, "the reader is back")
    assert execution._grace is None and not execution.stop.is_set()  # the stop was called off
    go.touch()
    events, finished = await back
    assert finished and events[-1][1]["type"] == "execution_complete"
    assert outputs([e for _, e in events], "stdout") == "waiting\nwent\n"


@within({"reconnect_grace": 0})
async def test_a_detached_run_completes_with_no_reader_and_keeps_its_events(
    store, reader, python_context
):
    code = "import time\nfor i in range(3):\n    time.sleep(0.1); print(i, flush=True)\n'done'"
    execution_id, _, _ = await reader.start(python_context, code, cut_after=1, detach=True)
    execution = await ended(store, execution_id)
    assert (execution.status, execution.detached) == ("completed", True)
    events, _ = await reader.resume(execution_id, 0)
    assert_exactly_once(events)
    assert outputs([e for _, e in events], "stdout") == "0\n1\n2\n"


async def test_the_same_idempotency_key_twice_runs_the_code_once(api, reader, python_context):
    key = {"Idempotency-Key": "retry-42"}
    body = {"context_id": python_context, "code": "n = globals().get('n', 0) + 1\nprint(n)"}
    first, got_first, _ = await reader.read("POST", "api/execute/code", json=body, headers=key)
    second, got_second, _ = await reader.read("POST", "api/execute/code", json=body, headers=key)
    assert first.headers["X-Execution-Id"] == second.headers["X-Execution-Id"]
    assert got_first == got_second
    assert outputs([e for _, e in got_first], "stdout") == "1\n"
    events = await api.run(python_context, "n")
    assert events[0]["text"] == "1"
    other = {**body, "code": "print('something else')"}
    response, _, _ = await reader.read("POST", "api/execute/code", json=other, headers=key)
    assert (response.status_code, response.json()["code"]) == (409, "IDEMPOTENCY_KEY_REUSED")
    response, _, _ = await reader.read(
        "POST", "api/execute/code", json=body, headers={"Idempotency-Key": "k" * 257}
    )
    assert response.status_code == 400


async def test_a_retry_while_the_run_goes_on_follows_it_live(reader, python_context, tmp_path):
    go = tmp_path / "go"
    code = (
        f"import os, time\nwhile not os.path.exists({str(go)!r}): time.sleep(0.01)\nprint('once')"
    )
    key = {"Idempotency-Key": "k"}
    body = {"context_id": python_context, "code": code}
    first = asyncio.ensure_future(reader.read("POST", "api/execute/code", json=body, headers=key))
    second = asyncio.ensure_future(reader.read("POST", "api/execute/code", json=body, headers=key))
    await asyncio.sleep(0)
    go.touch()
    (_, got_first, _), (_, got_second, _) = await asyncio.gather(first, second)
    assert got_first == got_second
    assert outputs([e for _, e in got_first], "stdout") == "once\n"


async def test_cancelling_a_run_interrupts_it_and_keeps_the_context(
    api, store, reader, python_context, tmp_path
):
    marker = tmp_path / "started"
    code = f"x = 'kept'\nimport time\nopen({str(marker)!r}, 'w').close()\ntime.sleep(600)"
    running = asyncio.ensure_future(reader.start(python_context, code))
    await wait_until(marker.exists, "the run started")
    (execution,) = [e for e in store.executions.values() if not e.ended()]
    status, state = await api.call("DELETE", f"api/execute/code/{execution.id}")
    assert (status, state["status"]) == (200, "interrupted")
    _, got, finished = await running
    terminal = got[-1][1]
    assert finished
    assert (terminal["ename"], terminal["reason"]) == ("ExecutionCancelled", "cancelled")
    assert (await api.run(python_context, "x"))[0]["text"] == "'kept'"
    # Cancelling an ended run changes nothing.
    status, state = await api.call("DELETE", f"api/execute/code/{execution.id}")
    assert (status, state["status"]) == (200, "interrupted")


@within({"retain_bytes_per_run": 20_000, "reconnect_grace": 0})
async def test_a_reader_asking_for_dropped_events_is_told_how_many(store, reader, python_context):
    code = "for i in range(100):\n    print(str(i).rjust(999, '.'), flush=True)"
    execution_id, _, _ = await reader.start(python_context, code, cut_after=1, detach=True)
    execution = await ended(store, execution_id)
    assert execution.bytes <= 20_000 + 1100  # the terminal event is always kept
    got, finished = await reader.resume(execution_id, 0)
    assert finished
    (lost_id, notice), (first_id, _) = got[0], got[1]
    assert notice["type"] == "events_lost"
    assert notice["count"] == lost_id == first_id - 1 > 0
    assert [i for i, _ in got[1:]] == list(range(first_id, execution.last_id + 1))
    lines = outputs([e for _, e in got[1:]], "stdout").splitlines()
    assert lines[-1] == "99".rjust(999, ".")


async def test_a_slow_reader_loses_nothing_while_the_run_holds_back(
    jp_serverapp, store, reader, python_context
):
    manager = jp_serverapp.web_app.settings["interp_execution_manager"]
    manager.retain_bytes_per_run = 10_000
    code = "for i in range(300):\n    print(str(i).rjust(499, '.'), flush=True)"
    execution_id, got, finished = await reader.start(python_context, code)
    assert finished
    assert_exactly_once(got)
    assert len(outputs([e for _, e in got], "stdout").splitlines()) == 300


@within({"retain_bytes": 30_000, "retain_runs": 3})
async def test_old_runs_are_forgotten_within_the_budgets(api, store, reader, python_context):
    expired = metrics.EXPIRED_EXECUTIONS.labels("bytes")._value.get()
    ids = []
    for _ in range(4):
        execution_id, _, _ = await reader.start(python_context, "print('x' * 10_000)")
        ids.append(execution_id)
    assert store.held <= 30_000
    status, _ = await api.call("GET", f"api/execute/code/{ids[0]}")
    assert status == 404
    status, state = await api.call("GET", f"api/execute/code/{ids[-1]}")
    assert (status, state["status"]) == (200, "completed")
    assert metrics.EXPIRED_EXECUTIONS.labels("bytes")._value.get() > expired
    for _ in range(4):
        await reader.start(python_context, "1")
    assert len(store.executions) <= 3


@within({"retain_seconds": 0.2})
async def test_an_ended_run_is_forgotten_after_its_time(api, store, reader, python_context):
    execution_id, _, _ = await reader.start(python_context, "1")
    await wait_until(lambda: execution_id not in store.executions, "it was forgotten")
    status, error = await api.call("GET", f"api/execute/code/{execution_id}")
    assert (status, error["code"]) == (404, "EXECUTION_NOT_FOUND")


async def test_resumes_and_replayed_events_are_counted(reader, python_context):
    resumes = metrics.RESUMES.labels("resume")._value.get()
    replayed = metrics.REPLAYED_EVENTS.labels("resume")._value.get()
    execution_id, got, _ = await reader.start(python_context, "print(1)\nprint(2)")
    await reader.resume(execution_id, 1)
    assert metrics.RESUMES.labels("resume")._value.get() == resumes + 1
    assert metrics.REPLAYED_EVENTS.labels("resume")._value.get() == replayed + len(got) - 1


async def test_a_process_stream_resumes_after_the_last_id_seen(api, reader, tmp_path):
    go = tmp_path / "go"
    command = (
        "for i in $(seq 1 30); do echo out $i; echo err $i >&2; sleep 0.005; done; "
        f"while [ ! -e {go} ]; do sleep 0.01; done; echo last"
    )
    status, proc = await api.call("POST", "api/process/start", {"command": command})
    path = f"api/process/{proc['processId']}/stream"
    response, first, finished = await reader.read("GET", path, cut_after=600)
    assert not finished and first[0][1]["type"] == "process_info"
    numbered = [(i, e) for i, e in first if i is not None]
    go.touch()
    response, rest, finished = await reader.read(
        "GET", path, headers={"Last-Event-ID": str(numbered[-1][0])}
    )
    assert finished
    events = numbered + rest
    ids = [i for i, _ in events]
    assert ids == sorted(set(ids))
    assert events[-1][1]["type"] == "exit"
    text = {
        kind: "".join(e["data"] for _, e in events if e["type"] == kind)
        for kind in ("stdout", "stderr")
    }
    assert text["stdout"] == "".join(f"out {i}\n" for i in range(1, 31)) + "last\n"
    assert text["stderr"] == "".join(f"err {i}\n" for i in range(1, 31))
